//! Hardware-in-loop: `pirack hil --slots 2` boots two virtual Pi 3s (QEMU raspi3b
//! with Debian's kernel) from the controller, from power-off to `up`: the firmware
//! stage over DHCP and TFTP, the kernel's NFS root from ganesha, the public address
//! answering. It checks each root is its own, power-cycles one, reimages the other,
//! has the watchdog recover one whose QEMU died mid-boot, and prints every Pi's
//! stage timings (`cargo test --test hil -- --nocapture`). The reimage is to an
//! image with its own kernel and command line, which the Pi boots, and a rollback
//! boots the old image's again.

mod common;

use common::{can_use_netns, have_all, text};
use std::process::Command;

#[test]
fn two_virtual_pis_boot_to_up_and_power_cycles_a_reimage_and_the_watchdog_boot_them_again() {
    let test = "hil";
    if !can_use_netns(test) || !have_all(test, common::VIRTUAL_PI_PEERS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = common::controller::free_tcp_port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args([
            "hil",
            "--slots",
            "2",
            "--no-install",
            "--timeout",
            "300",
            "--port",
            &port,
        ])
        .arg("--dir")
        .arg(tmp.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "pirack hil failed:\n{stdout}\n{stderr}"
    );
    for line in [
        "every virtual Pi is up",
        "each Pi wrote to its own root only",
        "A-01 booted again after its power cycle",
        "A-02 booted its new image (hil-2: kernel vmlinuz-hil-2, its command line) after a reimage and power-on",
        "A-02 booted hil-1 again after a rollback: its kernel, command line and root",
        "A-01 was power-cycled by the watchdog and booted again",
        "HIL passed: 2 virtual Pi 3s",
    ] {
        assert!(stdout.contains(line), "no `{line}` in:\n{stdout}");
    }
    // Per-stage timings of each boot: the firmware's DHCP and TFTP, the kernel
    // served, the NFS root mounted, the public address answering.
    let timings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("reachable "))
        .collect();
    assert_eq!(
        timings.len(),
        6,
        "two first boots, the cycled one, the reimaged one, the rolled back one, the recovered one: {stdout}"
    );
    for t in timings {
        for stage in [
            "dhcp_seen",
            "tftp_seen",
            "kernel_served",
            "nfs_mounted",
            "reachable",
        ] {
            assert!(t.contains(stage), "{stage} missing from {t}");
        }
    }
    // Nothing left behind: no QEMU, no namespaces of this run.
    let qemus = Command::new("pgrep")
        .args(["-f", "qemu-system-aarch64 -M raspi3b"])
        .output()
        .unwrap();
    assert!(
        qemus.stdout.is_empty(),
        "QEMU left running: {}",
        text(&qemus.stdout)
    );
    let spaces = text(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(!spaces.contains("pirack-hil-"), "namespaces left: {spaces}");
}
