//! Backups of a shelf: 96 roots made from one image of about 381 MB (btrfs
//! snapshots on a loop device, each customised as its slot's), backed up by
//! pirack (a read-only snapshot of the root, then restic) and, in the same
//! run and order, by bare `restic backup` of the same kind of snapshot into a
//! repository of its own, the filesystem synced before each; first backups,
//! then backups of unchanged roots.
//! Prints wall times, pirack's overhead over bare restic, the slowest
//! unchanged root, and how much each further root adds to the repository.
//! Needs root, restic and btrfs-progs.
//!
//!     cargo bench --bench backup -- [--roots 96]

mod common;

use common::{arg, sh};
use pirack_controller::roots::{Method, clone, customise};
use pirack_core::inventory;
use pirack_core::plan::{Ledger, SlotPlan, plan};
use pirack_core::switch::Profiles;
use pirack_lab::testbed::loopfs::LoopFs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Bytes under `dir`.
fn size(dir: &Path) -> u64 {
    sh(Command::new("du").args(["-sb"]).arg(dir))
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Writes out the filesystem's dirty data (untimed), so neither side's
/// timing pays for the other's writes: a btrfs snapshot commits them.
fn settle(on: &Path) {
    sh(Command::new("sync").arg("-f").arg(on));
}

/// Bare restic: the slot's root as a read-only snapshot at a path of its
/// own (made and removed outside the timing), backed up to `repo`.
struct Bare {
    repo: PathBuf,
    key: PathBuf,
    cache: PathBuf,
    stills: PathBuf,
}

impl Bare {
    fn restic(&self) -> Command {
        let mut c = Command::new("restic");
        c.env("RESTIC_REPOSITORY", &self.repo)
            .env("RESTIC_PASSWORD_FILE", &self.key)
            .env("RESTIC_CACHE_DIR", &self.cache);
        c
    }

    /// Seconds of `restic backup` of the slot's snapshot.
    fn backup(&self, slot: &SlotPlan) -> f64 {
        let still = self.stills.join(&slot.position);
        sh(Command::new("btrfs")
            .args(["-q", "subvolume", "snapshot", "-r", &slot.root])
            .arg(&still));
        settle(&self.stills);
        let t = Instant::now();
        sh(self
            .restic()
            .args([
                "backup",
                "--json",
                "--quiet",
                "--host",
                &slot.position,
                "--one-file-system",
                "--tag",
                "bare",
            ])
            .arg(&still));
        let secs = t.elapsed().as_secs_f64();
        sh(Command::new("btrfs")
            .args(["-q", "subvolume", "delete"])
            .arg(&still));
        secs
    }
}

/// One pass over the roots: each root's seconds by pirack and by bare restic,
/// the one that goes first alternating; `after_first` sees pirack's
/// repository once its first root is in.
fn pass(
    site: &inventory::Site,
    slots: &[SlotPlan],
    bare: &Bare,
    mut after_first: impl FnMut(),
) -> (Vec<f64>, Vec<f64>) {
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for (i, s) in slots.iter().enumerate() {
        let pirack = || {
            settle(Path::new(&s.root));
            let t = Instant::now();
            let (_, outcomes) =
                pirack_controller::backup::run(site, s, Some("acme"), &[], &mut |_, _| {}).unwrap();
            for o in outcomes {
                o.result.unwrap();
            }
            t.elapsed().as_secs_f64()
        };
        if i % 2 == 0 {
            ours.push(pirack());
            theirs.push(bare.backup(s));
        } else {
            theirs.push(bare.backup(s));
            ours.push(pirack());
        }
        if i == 0 {
            after_first();
        }
    }
    (ours, theirs)
}

fn report(what: &str, ours: &[f64], theirs: &[f64]) {
    let (a, b): (f64, f64) = (ours.iter().sum(), theirs.iter().sum());
    let slowest = ours.iter().cloned().fold(0.0, f64::max);
    println!(
        "{what:<16} {:>5} {:>11.1} {:>11.1} {:>9.3} {:>+9.1} % {:>10.2}",
        ours.len(),
        a,
        b,
        a / b,
        (a / b - 1.0) * 100.0,
        slowest
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !common::is_root("backup") || !common::have("backup", &["restic", "mkfs.btrfs"]) {
        return;
    }
    let n = arg("--roots", 96) as usize;
    let fs = LoopFs::new(
        Path::new("target/bench-backup"),
        8 << 30,
        &["mkfs.btrfs", "-q", "-f"],
    )
    .unwrap();
    let top = std::fs::canonicalize(fs.path()).unwrap();
    let export = top.join("export");
    std::fs::create_dir_all(&export).unwrap();
    let yaml = std::fs::read_to_string("hardware/shelf-96.yaml")
        .unwrap()
        .replace(
            "export_root: /export",
            &format!("export_root: {}", export.display()),
        )
        + &format!(
            "\nbackup:\n  keys: {}\n  targets: [ {{ name: local, path: {} }} ]\n",
            top.join("keys").display(),
            top.join("repo").display()
        );
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("shelf-96.yaml");
    std::fs::write(&inv, yaml).unwrap();
    let profiles = Profiles::load_dir(Path::new("switch-profiles")).unwrap();
    let site = inventory::load(&inv, &profiles.names()).unwrap();
    let ledger = Ledger::load(Path::new("hardware/shelf-96.ledger.yaml")).unwrap();
    let (p, _) = plan(&site, &ledger).unwrap();
    let slots: Vec<SlotPlan> = p.slots.into_iter().take(n).collect();

    let image = top.join("image");
    sh(Command::new("btrfs")
        .args(["-q", "subvolume", "create"])
        .arg(&image));
    let (files, bytes) = common::image::make(&image, true);
    let t = Instant::now();
    for s in &slots {
        let root = Path::new(&s.root);
        clone::clone_tree(&image, root, Method::Snapshot).unwrap();
        customise(root, &site, s).unwrap();
    }
    println!(
        "image: {files} files, {:.0} MB; {} roots as btrfs snapshots, customised, in {:.1} s",
        bytes as f64 / 1e6,
        slots.len(),
        t.elapsed().as_secs_f64()
    );

    let bare = Bare {
        repo: top.join("bare-repo"),
        key: top.join("bare.key"),
        cache: top.join("bare-cache"),
        stills: top.join("bare-stills"),
    };
    std::fs::create_dir_all(&bare.stills).unwrap();
    std::fs::write(&bare.key, "a bench's own key\n").unwrap();
    sh(bare.restic().args(["init", "--quiet"]));

    let repo = top.join("repo/acme");
    let mut first_root = 0;
    let (ours1, theirs1) = pass(&site, &slots, &bare, || first_root = size(&repo));
    let (all_roots, bare_size) = (size(&repo), size(&bare.repo));
    let (ours2, theirs2) = pass(&site, &slots, &bare, || {});

    println!(
        "{:<16} {:>5} {:>11} {:>11} {:>9} {:>11} {:>10}",
        "backup", "roots", "pirack s", "restic s", "ratio", "overhead", "slowest s"
    );
    // The first root's pirack backup makes the repository and its key too.
    report("first root", &ours1[..1], &theirs1[..1]);
    if slots.len() > 1 {
        report("further roots", &ours1[1..], &theirs1[1..]);
    }
    report("unchanged roots", &ours2, &theirs2);
    println!(
        "repository: {:.1} MB after the first root, {:.1} MB after {}; {:.0} KB per further root \
         (bare restic's repository: {:.1} MB)",
        first_root as f64 / 1e6,
        all_roots as f64 / 1e6,
        slots.len(),
        all_roots.saturating_sub(first_root) as f64 / 1e3 / (slots.len().max(2) - 1) as f64,
        bare_size as f64 / 1e6
    );
}
