//! `pirack hil run` as a user's CI job runs it: an image that is not pirack's own
//! (the HIL image's root and its boot files without the initramfs, which the
//! runner must add from the kernel's modules) booted on a virtual Pi 3, with
//! console expectations that pass and one that fails: exit status, table and
//! JUnit report checked. Then an image whose kernel does not boot: a failing
//! verdict with the console's end, within the timeout.

mod common;

use common::{can_use_netns, have_all, text};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The HIL recipe's image as a user would hand it over: its root tarball and
/// its boot files less the initramfs.
fn user_image(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let built = dir.join("built");
    let out = Command::new("images/hil/recipe")
        .arg(&built)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let boot = dir.join("boot");
    let out = Command::new("cp")
        .arg("-a")
        .arg(built.join("boot"))
        .arg(&boot)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::remove_file(boot.join("initrd.img")).unwrap();
    (built.join("root.tar.gz"), boot)
}

fn hil_run(dir: &Path, root: &Path, boot: &Path, extra: &[&str]) -> (bool, String, Duration) {
    let port = common::controller::free_tcp_port().to_string();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args(["hil", "run", "--no-install", "--port", &port, "--image"])
        .arg(root)
        .arg("--boot")
        .arg(boot)
        .arg("--dir")
        .arg(dir.join("run"))
        .args(extra)
        .output()
        .unwrap();
    let said = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    eprintln!("{said}");
    (out.status.success(), said, started.elapsed())
}

#[test]
fn a_users_image_is_booted_checked_and_judged() {
    let test = "hil_run";
    if !can_use_netns(test) || !have_all(test, common::VIRTUAL_PI_PEERS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (root, boot) = user_image(d);
    let (junit, logs) = (d.join("report.xml"), d.join("logs"));
    let (ok, said, _) = hil_run(
        d,
        &root,
        &boot,
        &[
            "--timeout",
            "150",
            "--expect",
            "pirack: up: example-a-01",
            "--expect",
            "Kernel command line: .*nfsroot=",
            "--expect",
            "never said by any Pi",
            "--junit",
            junit.to_str().unwrap(),
            "--keep-logs",
            logs.to_str().unwrap(),
        ],
    );
    assert!(!ok, "a failing --expect fails the run:\n{said}");
    assert!(
        said.contains("A-01     FAIL ") && said.contains("  2/3  "),
        "two of three checks pass:\n{said}"
    );
    assert!(
        said.contains("A-01: expect /never said by any Pi/ failed:\nnot on the console"),
        "{said}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"4\" failures=\"1\""),
        "a boot and three checks, one failed:\n{xml}"
    );
    assert!(xml.contains("name=\"expect /pirack: up: example-a-01/\""));
    assert!(xml.contains("<failure message=\"expect /never said by any Pi/ failed\">"));
    let console = std::fs::read_to_string(logs.join("A-01.console.log")).unwrap();
    assert!(console.contains("pirack: up: example-a-01"), "{console}");
    assert!(logs.join("controller.log").exists());

    // The same checks less the failing one pass.
    let (ok, said, _) = hil_run(
        d,
        &root,
        &boot,
        &["--timeout", "150", "--expect", "pirack: up: "],
    );
    assert!(ok, "{said}");
    assert!(
        said.contains("HIL run passed: 1 of 1 virtual Pis passed"),
        "{said}"
    );

    // A kernel that does not boot (its first page overwritten): judged failed,
    // with what its console said, by the timeout and not long after.
    let broken = d.join("broken-boot");
    let out = Command::new("cp")
        .arg("-a")
        .arg(&boot)
        .arg(&broken)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut kernel = std::fs::read(broken.join("kernel8.img")).unwrap();
    kernel[..4096].fill(0);
    std::fs::write(broken.join("kernel8.img"), kernel).unwrap();
    let (ok, said, took) = hil_run(d, &root, &broken, &["--timeout", "60"]);
    assert!(!ok, "{said}");
    assert!(
        said.contains("A-01: did not reach up"),
        "a verdict for the Pi:\n{said}"
    );
    assert!(
        said.contains("[pirack] "),
        "with its console's end:\n{said}"
    );
    assert!(
        took < Duration::from_secs(180),
        "no hang past the timeout: {took:?}"
    );
}
