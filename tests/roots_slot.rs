//! Slots' roots end to end through the CLI on an XFS loop filesystem: build,
//! reimage only when the Pi is off, rollback, refusal to remove an image in use,
//! delete; and SIGKILL at many points of a reimage never leaves a half-built root
//! in service (needs root and xfsprogs).

mod common;

use common::{LoopFs, pirack, text};
use pirack_controller::roots::image::{self, Import};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Site {
    _dir: tempfile::TempDir,
    inventory: String,
    store: String,
    export: PathBuf,
}

/// example-8 with its export root and an image store (images tiny-1, tiny-2) on `fs`.
fn site(fs: &LoopFs) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let export = fs.path().join("export");
    let inventory = common::example_site_in(dir.path(), Some(&export), "");
    let store = fs.path().join("images");
    let boot = common::boot_files(64 * 1024);
    for v in ["1", "2"] {
        let root = dir.path().join(format!("tree-{v}"));
        fs::create_dir_all(root.join("etc/ssh")).unwrap();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        fs::write(root.join("etc/image-version"), v).unwrap();
        fs::write(
            root.join("usr/lib/libbig.so"),
            vec![v.as_bytes()[0]; 8 << 20],
        )
        .unwrap();
        let what = Import {
            name: "tiny".into(),
            version: v.into(),
            root,
            boot: boot.path().into(),
            cmdline: String::new(),
        };
        image::import(&store, &what, &|_, _| {}).unwrap();
    }
    Site {
        _dir: dir,
        inventory: inventory.to_str().unwrap().into(),
        store: store.to_str().unwrap().into(),
        export,
    }
}

fn root_cmd(s: &Site, args: &[&str]) -> std::process::Output {
    let mut all = vec![
        "root",
        "--inventory",
        &s.inventory,
        "--store",
        &s.store,
        "--no-export",
    ];
    all.extend(args);
    pirack(&all)
}

/// The image version a slot root holds, checking it is whole: customised, with
/// its big file at full size.
fn served(root: &Path) -> Option<String> {
    if !root.exists() {
        return None;
    }
    let v = fs::read_to_string(root.join("etc/image-version")).expect("a served root is whole");
    assert_eq!(
        fs::metadata(root.join("usr/lib/libbig.so")).unwrap().len(),
        8 << 20,
        "whole file"
    );
    assert!(
        root.join("etc/ssh/ssh_host_ed25519_key").exists(),
        "customised"
    );
    assert!(root.join("etc/hostname").exists(), "customised");
    Some(v)
}

fn ready(test: &str) -> bool {
    common::can_use_netns(test) && common::have_all(test, &["losetup", "mkfs.xfs", "ssh-keygen"])
}

#[test]
fn build_reimage_rollback_and_delete() {
    if !ready("build_reimage_rollback_and_delete") {
        return;
    }
    let fs = LoopFs::new(&["mkfs.xfs", "-q", "-f", "-m", "reflink=1"]);
    let s = site(&fs);
    let a01 = s.export.join("10.46.189.2");
    let a02 = s.export.join("10.46.189.6");

    let out = root_cmd(&s, &["build", "--image", "tiny-1", "A-01", "A-02"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(served(&a01).as_deref(), Some("1"));
    assert_eq!(
        fs::read_to_string(a02.join("etc/hostname")).unwrap(),
        "example-a-02\n"
    );
    assert!(
        text(&out.stdout).contains("reflink copy"),
        "{}",
        text(&out.stdout)
    );

    let out = root_cmd(&s, &["build", "--image", "tiny-2", "A-01"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("slot A-01 is powered on"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        served(&a01).as_deref(),
        Some("1"),
        "refused means untouched"
    );

    let out = root_cmd(&s, &["build", "--image", "tiny-2", "--powered-off", "A-01"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(served(&a01).as_deref(), Some("2"));

    let out = pirack(&[
        "image",
        "--store",
        &s.store,
        "remove",
        "--inventory",
        &s.inventory,
        "tiny-1",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("image tiny-1 is in use by slot(s) A-01, A-02"),
        "{}",
        text(&out.stderr)
    );

    assert!(
        root_cmd(&s, &["rollback", "--powered-off", "A-01"])
            .status
            .success()
    );
    assert_eq!(served(&a01).as_deref(), Some("1"));
    assert!(
        root_cmd(&s, &["rollback", "--powered-off", "A-01"])
            .status
            .success()
    );
    assert_eq!(served(&a01).as_deref(), Some("2"), "a rollback rolls back");
    let show = text(&root_cmd(&s, &["show"]).stdout);
    assert!(
        show.lines()
            .any(|l| l.starts_with("A-01") && l.contains("tiny-2") && l.ends_with("1 kept")),
        "{show}"
    );

    assert!(
        root_cmd(&s, &["delete", "--powered-off", "A-02"])
            .status
            .success()
    );
    assert!(!a02.exists());
    assert!(
        root_cmd(&s, &["delete", "--powered-off", "A-01"])
            .status
            .success()
    );
    let out = pirack(&[
        "image",
        "--store",
        &s.store,
        "remove",
        "--inventory",
        &s.inventory,
        "tiny-1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let leftovers: Vec<_> = fs::read_dir(&s.export)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers,
        [".pirack"],
        "nothing left but the records directory"
    );
}

#[test]
fn sigkill_during_a_reimage_never_serves_half_a_root() {
    if !ready("sigkill_during_a_reimage_never_serves_half_a_root") {
        return;
    }
    let fs = LoopFs::new(&["mkfs.xfs", "-q", "-f", "-m", "reflink=1"]);
    let s = site(&fs);
    let a03 = s.export.join("10.46.189.10");
    // How long a build takes here, so the timed kills spread over one.
    let started = std::time::Instant::now();
    assert!(
        root_cmd(&s, &["build", "--powered-off", "--image", "tiny-2", "A-03"])
            .status
            .success()
    );
    let whole = started.elapsed();
    let mut seen_old = 0;
    let mut seen_new = 0;
    for i in 0..16u32 {
        let image = if i % 2 == 0 { "tiny-1" } else { "tiny-2" };
        let before = served(&a03);
        let mut child = Command::new(env!("CARGO_BIN_EXE_pirack"))
            .args([
                "root",
                "--inventory",
                &s.inventory,
                "--store",
                &s.store,
                "--no-export",
                "build",
                "--powered-off",
                "--image",
                image,
                "A-03",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if i < 8 {
            // Timed kills spread over the build.
            std::thread::sleep(whole * i / 6);
        } else {
            // Kills just after the swap, during the old root's clean-up: timed kills
            // alone may all land before it on a loaded machine.
            let version = a03.join("etc/image-version");
            while fs::read_to_string(&version).ok().as_ref() == before.as_ref()
                && child.try_wait().unwrap().is_none()
            {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            std::thread::sleep(std::time::Duration::from_millis(u64::from(i - 8) * 3));
        }
        let _ = child.kill();
        let _ = child.wait();
        let after = served(&a03);
        let want = image.trim_start_matches("tiny-").to_string();
        assert!(
            after == before || after.as_deref() == Some(&want),
            "kill {i}: {before:?} -> {after:?}"
        );
        if after == before {
            seen_old += 1
        } else {
            seen_new += 1
        }
        // The next build, after any kill, works.
        let out = root_cmd(&s, &["build", "--powered-off", "--image", image, "A-03"]);
        assert!(
            out.status.success(),
            "after kill {i}: {}",
            text(&out.stderr)
        );
        assert_eq!(served(&a03), Some(want));
    }
    assert!(
        seen_old > 0 && seen_new > 0,
        "kills landed both before and after the switch: {seen_old} {seen_new}"
    );
}
