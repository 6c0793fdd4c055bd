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
use pirack_core::plan::render::slot as rendered;
use pirack_core::plan::{Plan, SlotPlan};
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
    /// The boot files the controller serves, to check what arrives against.
    pub boot_files: PathBuf,
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

/// What `slot`'s Pi should receive over TFTP: the boot files `files`, with the
/// slot's own cmdline.txt and config.txt.
pub fn expected(site: &Site, slot: &SlotPlan, files: &BTreeMap<String, Arc<[u8]>>) -> pi::Expected {
    let mut expected = files.clone();
    expected.insert(
        "cmdline.txt".into(),
        rendered::cmdline(site, slot).into_bytes().into(),
    );
    expected.insert(
        "config.txt".into(),
        rendered::config_txt(site, slot).into_bytes().into(),
    );
    Arc::new(expected)
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
    let files = read_tree(&opts.boot_files).map_err(|source| SimError::BootFiles {
        path: opts.boot_files.clone(),
        source,
    })?;
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
        pis.push((netns, board, expected(site, slot, &files)));
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
