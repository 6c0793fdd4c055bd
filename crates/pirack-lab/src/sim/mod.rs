//! `pirack sim`: Pi 3 boards booting from the network, for tests, the demo and the
//! boot-storm benchmark. Each simulated Pi has its own network namespace, joined by
//! a veth pair to the controller's per-slot interface, and a thread that plays the
//! boot ROM, bootcode.bin and start.elf against whatever server answers there.

pub mod follow;
pub mod frames;
pub mod lab;
pub mod link;
pub mod pi;
pub mod tftp_client;

pub use lab::{Lab, PiLink};
pub use pi::Report;

use pirack_core::inventory::Site;
use pirack_core::plan::Plan;
use pirack_netboot::boots::SlotBoot;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Options {
    /// Namespace the controller runs in (`None`: this process's).
    pub controller_netns: Option<String>,
    /// The site's boot files: where the controller's `bootcode.bin` comes from
    /// (else the newest image in `images`).
    pub boot_files: PathBuf,
    /// The image store, and the image every simulated slot boots: what arrives is
    /// checked against it, rendered for each slot as the controller renders it.
    pub images: PathBuf,
    pub image: Option<String>,
    /// Positions to boot; empty: every slot with a board.
    pub only: Vec<String>,
    /// Namespace name prefix, unique per run.
    pub prefix: String,
    /// Wait between link-up and the first DISCOVER (a real Pi 3 takes about 5 s).
    pub power_on: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("slot {0} is not in the inventory")]
    UnknownSlot(String),
    #[error("slot {0} has no board to simulate")]
    NoBoard(String),
    #[error("reading boot files {}: {source}", path.display())]
    BootFiles { path: PathBuf, source: io::Error },
    #[error("the image to boot: {0}")]
    Image(String),
    #[error("building the simulator's network")]
    Lab(#[source] crate::testbed::TestbedError),
    #[error("simulated power from the switch: {0}")]
    Power(String),
}

/// Every regular file under `dir` (links to files followed), by its
/// `/`-separated relative path.
pub fn read_tree(dir: &Path) -> io::Result<BTreeMap<String, Arc<[u8]>>> {
    let mut out = BTreeMap::new();
    for rel in pirack_controller::walk::files(dir).map_err(|e| e.source)? {
        let path = dir.join(&rel);
        if std::fs::metadata(&path)?.is_file() {
            out.insert(rel, std::fs::read(&path)?.into());
        }
    }
    Ok(out)
}

/// What a Pi should receive over TFTP: `bootcode.bin`, and what its slot boots
/// (its image's boot files with the slot's cmdline.txt and config.txt), when it
/// boots anything.
pub fn expected(boot: Option<&SlotBoot>, bootcode: Option<&Path>) -> io::Result<pi::Expected> {
    let mut expected = match boot {
        Some(b) => {
            let mut files = read_tree(&b.dir)?;
            files.insert("cmdline.txt".into(), b.cmdline.clone());
            files.insert("config.txt".into(), b.config.clone());
            files
        }
        None => BTreeMap::new(),
    };
    match bootcode {
        Some(path) => expected.insert("bootcode.bin".into(), std::fs::read(path)?.into()),
        None => expected.remove("bootcode.bin"),
    };
    Ok(Arc::new(expected))
}

/// The simulated Pis of a run, their network built, not yet powered on.
pub struct Prepared {
    lab: Lab,
    pis: Vec<(String, pi::Board, pi::Expected)>,
    power_on: Duration,
}

/// Builds the network for the chosen slots (all with a board when `opts.only` is
/// empty) and what each Pi should receive.
pub fn prepare(site: &Site, plan: &Plan, opts: &Options) -> Result<Prepared, SimError> {
    for p in &opts.only {
        if !plan.slots.iter().any(|s| &s.position == p) {
            return Err(SimError::UnknownSlot(p.clone()));
        }
    }
    let chosen: Vec<_> = plan
        .slots
        .iter()
        .filter(|s| opts.only.is_empty() || opts.only.contains(&s.position))
        .filter(|s| !opts.only.is_empty() || s.board.is_some())
        .collect();
    let bootcode = pirack_controller::boot::bootcode(&opts.boot_files, &opts.images);
    let mut pis = Vec::new();
    let mut links = Vec::new();
    for (i, slot) in chosen.iter().enumerate() {
        let board = pi::Board::of(slot).ok_or_else(|| SimError::NoBoard(slot.position.clone()))?;
        let netns = format!("{}-{i}", opts.prefix);
        links.push(PiLink {
            netns: netns.clone(),
            controller_if: slot.interface.clone(),
            fileserver_cidr: format!("{}/{}", slot.fileserver_ip, slot.storage.prefix_len()),
            mac: board.mac.to_string(),
            public: slot.ipv6.to_string(),
        });
        let boot = match &opts.image {
            Some(id) => Some(
                pirack_controller::boot::of(site, slot, &opts.images, id)
                    .map_err(|e| SimError::Image(e.to_string()))?,
            ),
            None => None,
        };
        let files =
            expected(boot.as_ref(), bootcode.as_deref()).map_err(|source| SimError::BootFiles {
                path: boot
                    .as_ref()
                    .map_or(opts.boot_files.clone(), |b| b.dir.clone()),
                source,
            })?;
        pis.push((netns, board, files));
    }
    let lab = Lab::build(&links, opts.controller_netns.as_deref()).map_err(SimError::Lab)?;
    Ok(Prepared {
        lab,
        pis,
        power_on: opts.power_on,
    })
}

impl Prepared {
    /// Powers every Pi on at once and reports on each; stops early when `stop` is
    /// set. The network is removed when this returns.
    pub fn boot(self, stop: &'static AtomicBool) -> Vec<Report> {
        std::thread::sleep(self.power_on);
        let threads: Vec<_> = self
            .pis
            .into_iter()
            .map(|(netns, board, expected)| {
                std::thread::spawn(move || match crate::testbed::netns::enter(&netns) {
                    Ok(()) => pi::boot(&board, &expected, stop),
                    Err(e) => Report::failed(&board, format!("entering namespace {netns}: {e}")),
                })
            })
            .collect();
        let reports = threads
            .into_iter()
            .map(|t| t.join().expect("a simulated Pi panicked"))
            .collect();
        drop(self.lab);
        reports
    }
}

/// Builds the network, boots the chosen slots and removes the network again.
pub fn run(
    site: &Site,
    plan: &Plan,
    opts: &Options,
    stop: &'static AtomicBool,
) -> Result<Vec<Report>, SimError> {
    Ok(prepare(site, plan, opts)?.boot(stop))
}
