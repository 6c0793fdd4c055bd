//! Root building: an image of about 381 MB with a Debian-like spread of file sizes,
//! then roots made from it with every method each filesystem offers (btrfs and XFS
//! on loop devices), all in one run: seconds and extra disk per root, the ratio to a
//! full copy, and a whole customised root (SSH keys included). Needs root.
//!
//!     cargo bench --bench roots -- [--roots 96] [--copies 4]

mod common;

use common::{arg, sh};
use pirack_controller::roots::{Method, clone, customise};
use pirack_core::inventory;
use pirack_core::plan::{Ledger, plan};
use pirack_core::switch::Profiles;
use pirack_lab::testbed::loopfs::LoopFs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// A 6 GiB filesystem on a loop device under target/ (the testbed's).
fn loop_fs(kind: &str, mkfs: &[&str]) -> LoopFs {
    LoopFs::new(
        Path::new(&format!("target/bench-roots-{kind}")),
        6 << 30,
        mkfs,
    )
    .unwrap()
}

struct Row {
    fs: &'static str,
    method: Method,
    roots: u64,
    secs_per_root: f64,
    extra_per_root: f64,
}

fn bench_method(fs: &LoopFs, name: &'static str, image: &Path, method: Method, n: u64) -> Row {
    let roots = fs.path().join(format!("roots-{method:?}"));
    std::fs::create_dir_all(&roots).unwrap();
    let before = fs.used();
    let t = Instant::now();
    for i in 0..n {
        clone::clone_tree(image, &roots.join(format!("r{i}")), method).unwrap();
    }
    let secs = t.elapsed().as_secs_f64() / n as f64;
    let extra = fs.used().saturating_sub(before) as f64 / n as f64;
    for i in 0..n {
        clone::remove_tree(&roots.join(format!("r{i}"))).unwrap();
    }
    Row {
        fs: name,
        method,
        roots: n,
        secs_per_root: secs,
        extra_per_root: extra,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !common::is_root("roots") {
        return;
    }
    let n = arg("--roots", 96);
    let copies = arg("--copies", 4);
    let profiles = Profiles::load_dir(Path::new("switch-profiles")).unwrap();
    let site = inventory::load(Path::new("hardware/shelf-96.yaml"), &profiles.names()).unwrap();
    let (p, _) = plan(
        &site,
        &Ledger::load(Path::new("hardware/shelf-96.ledger.yaml")).unwrap(),
    )
    .unwrap();

    let mut rows = Vec::new();
    let mut whole = Vec::new();
    for (name, mkfs) in [
        ("btrfs", &["mkfs.btrfs", "-q", "-f"][..]),
        ("xfs", &["mkfs.xfs", "-q", "-f", "-m", "reflink=1"][..]),
    ] {
        let fs = loop_fs(name, mkfs);
        let image = fs.path().join("image");
        if name == "btrfs" {
            sh(Command::new("btrfs")
                .args(["-q", "subvolume", "create"])
                .arg(&image));
        }
        let (files, bytes) = common::image::make(&image, false);
        if name == "btrfs" {
            println!("image: {files} files, {:.0} MB", bytes as f64 / 1e6);
        }
        let methods: &[Method] = if name == "btrfs" {
            &[Method::Snapshot, Method::Reflink, Method::Copy]
        } else {
            &[Method::Reflink, Method::Copy]
        };
        for &m in methods {
            rows.push(bench_method(
                &fs,
                name,
                &image,
                m,
                if m == Method::Copy { copies } else { n },
            ));
        }
        // A whole customised root: the best method plus the slot's files and keys.
        let best = clone::best_method(&image, &fs.path());
        let t = Instant::now();
        for s in p.slots.iter().take(4) {
            let dst = fs.path().join(format!("slot-{}", s.position));
            clone::clone_tree(&image, &dst, best).unwrap();
            customise(&dst, &site, s).unwrap();
        }
        whole.push((name, best, t.elapsed().as_secs_f64() / 4.0));
    }

    println!(
        "{:<6} {:<15} {:>6} {:>13} {:>15} {:>12}",
        "fs", "method", "roots", "s per root", "extra MB/root", "vs copy"
    );
    for r in &rows {
        let copy = rows
            .iter()
            .find(|c| c.fs == r.fs && c.method == Method::Copy)
            .expect("copy measured");
        println!(
            "{:<6} {:<15} {:>6} {:>13.3} {:>15.2} {:>11.3}x",
            r.fs,
            r.method.to_string(),
            r.roots,
            r.secs_per_root,
            r.extra_per_root / 1e6,
            r.secs_per_root / copy.secs_per_root
        );
    }
    for (fs, m, s) in whole {
        println!("{fs}: a whole customised root ({m} + files + SSH keys): {s:.3} s");
    }
}
