//! Copy-on-write roots on real filesystems: btrfs and XFS (reflink=1) made on loop
//! devices, every method each offers, checked for a faithful copy and for the disk
//! it costs (needs root, btrfs-progs and xfsprogs).

mod common;

use common::LoopFs;
use pirack_controller::roots::{Method, best_method, clone_tree, remove_tree};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A small root: a big file, a hard link pair, a symlink, a setuid binary, a
/// private directory, a file owned by someone else and a file capability.
fn make_root(dir: &Path) -> u64 {
    fs::create_dir_all(dir.join("usr/bin")).unwrap();
    fs::create_dir_all(dir.join("root")).unwrap();
    fs::set_permissions(dir.join("root"), fs::Permissions::from_mode(0o700)).unwrap();
    let big: Vec<u8> = (0..40u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(dir.join("usr/bin/busybox"), &big).unwrap();
    fs::hard_link(dir.join("usr/bin/busybox"), dir.join("usr/bin/sh")).unwrap();
    symlink("busybox", dir.join("usr/bin/ls")).unwrap();
    fs::write(dir.join("usr/bin/su"), b"setuid").unwrap();
    fs::set_permissions(dir.join("usr/bin/su"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::write(dir.join("home-file"), b"pi's").unwrap();
    nix::unistd::chown(&dir.join("home-file"), Some(1000.into()), Some(1000.into())).unwrap();
    fs::write(dir.join("usr/bin/ping"), b"ping").unwrap();
    let cap = Command::new("setcap")
        .args(["cap_net_raw+ep"])
        .arg(dir.join("usr/bin/ping"))
        .status();
    assert!(cap.is_ok_and(|s| s.success()), "setcap");
    big.len() as u64
}

/// Every entry of a tree with what a root depends on.
fn describe(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let rel = rel.join(e.file_name());
            let path = root.join(&rel);
            let m = fs::symlink_metadata(&path).unwrap();
            let what = if m.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&path).unwrap().display())
            } else if m.is_dir() {
                stack.push(rel.clone());
                "dir".into()
            } else {
                let caps = Command::new("getcap").arg(&path).output().unwrap();
                format!(
                    "{} bytes, {} links, {:x?}, {}",
                    m.len(),
                    m.nlink(),
                    fs::read(&path).unwrap().iter().take(8).collect::<Vec<_>>(),
                    common::text(&caps.stdout)
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("-")
                )
            };
            out.push(format!(
                "{} {:o} {}:{} {what}",
                rel.display(),
                m.mode(),
                m.uid(),
                m.gid()
            ));
        }
    }
    out.sort();
    out
}

fn check_clone(fs: &LoopFs, src: &Path, method: Method, max_extra: u64) {
    let dst = fs.path().join(format!("roots/{method:?}"));
    fs::create_dir_all(dst.parent().unwrap()).unwrap();
    let before = fs.used();
    clone_tree(src, &dst, method).unwrap_or_else(|e| panic!("{method}: {e}"));
    let extra = fs.used().saturating_sub(before);
    assert_eq!(describe(&dst), describe(src), "{method} copies faithfully");
    let a = fs::metadata(dst.join("usr/bin/busybox")).unwrap();
    let b = fs::metadata(dst.join("usr/bin/sh")).unwrap();
    assert_eq!(a.ino(), b.ino(), "{method} keeps hard links");
    assert!(
        extra <= max_extra,
        "{method} cost {extra} bytes, expected at most {max_extra}"
    );
    // Built beside and renamed: no partial tree left, and no second copy on top.
    assert!(
        fs::read_dir(dst.parent().unwrap()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("partial"))
    );
    assert!(
        clone_tree(src, &dst, method).is_err(),
        "an existing root is never overwritten"
    );
    remove_tree(&dst).unwrap();
    assert!(!dst.exists());
}

fn ready(test: &str) -> bool {
    common::can_use_netns(test)
        && common::have_all(
            test,
            &[
                "losetup",
                "mkfs.btrfs",
                "mkfs.xfs",
                "btrfs",
                "setcap",
                "getcap",
            ],
        )
}

#[test]
fn btrfs_offers_snapshot_reflink_and_copy() {
    if !ready("btrfs_offers_snapshot_reflink_and_copy") {
        return;
    }
    let fs = LoopFs::new(&["mkfs.btrfs", "-q", "-f"]);
    let image = fs.path().join("image");
    let ok = Command::new("btrfs")
        .args(["-q", "subvolume", "create"])
        .arg(&image)
        .status()
        .unwrap();
    assert!(ok.success());
    let size = make_root(&image);
    let plain = fs.path().join("plain-image");
    clone_tree(&image, &plain, Method::Copy).unwrap();
    fs::create_dir_all(fs.path().join("roots")).unwrap();
    assert_eq!(
        best_method(&image, &fs.path().join("roots")),
        Method::Snapshot
    );
    assert_eq!(
        best_method(&plain, &fs.path().join("roots")),
        Method::Reflink,
        "a plain directory cannot be snapshotted"
    );
    check_clone(&fs, &image, Method::Snapshot, 1 << 20);
    check_clone(&fs, &image, Method::Reflink, 1 << 20);
    check_clone(&fs, &image, Method::Copy, 2 * size);
    assert!(fs.used() > 0);
}

#[test]
fn xfs_offers_reflink_and_copy() {
    if !ready("xfs_offers_reflink_and_copy") {
        return;
    }
    let fs = LoopFs::new(&["mkfs.xfs", "-q", "-f", "-m", "reflink=1"]);
    let image = fs.path().join("image");
    let size = make_root(&image);
    fs::create_dir_all(fs.path().join("roots")).unwrap();
    assert_eq!(
        best_method(&image, &fs.path().join("roots")),
        Method::Reflink
    );
    assert!(
        clone_tree(&image, &fs.path().join("roots/snap"), Method::Snapshot).is_err(),
        "no snapshots on XFS"
    );
    check_clone(&fs, &image, Method::Reflink, 1 << 20);
    let before = fs.used();
    check_clone(&fs, &image, Method::Copy, 2 * size);
    assert!(fs.used() >= before, "{before}");
    // Across filesystems only a copy works.
    let other = tempfile::tempdir().unwrap();
    assert_eq!(best_method(&image, other.path()), Method::Copy);
}
