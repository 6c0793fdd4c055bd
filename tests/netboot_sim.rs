//! End to end: `pirack sim` boots all 8 slots of hardware/example-8.yaml against
//! `pirack serve`, each simulated Pi in its own namespace (needs root).

mod common;

use common::{boot_files, booting_site, can_use_netns, serve};
use std::io::{BufRead, BufReader};
use std::process::Command;

#[test]
fn simulator_boots_every_example_slot_against_serve() {
    if !can_use_netns("simulator_boots_every_example_slot_against_serve") {
        return;
    }
    let boot = boot_files(2 << 20);
    let ctl = common::netns("sim8");
    // serve starts before the slots' interfaces exist: it must wait for them.
    let d = tempfile::tempdir().unwrap();
    let all = [
        "A-01", "A-02", "A-03", "A-04", "A-05", "A-06", "A-07", "A-08",
    ];
    let (inventory, images) = booting_site(d.path(), "example-8", boot.path(), &all);
    let mut server = serve(&ctl, &inventory, boot.path(), &images);
    let mut lines = BufReader::new(server.child.0.stdout.take().unwrap()).lines();
    // Its first event: a slot interface it cannot serve yet. Then the Pis come.
    let first = lines.next().expect("serve reports events").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pirack"))
        .arg("sim")
        .arg("--inventory")
        .arg(&inventory)
        .args([
            "--json",
            "--power-on",
            "1.5",
            "--controller-netns",
            ctl.name(),
        ])
        .arg("--boot-files")
        .arg(boot.path())
        .arg("--images")
        .arg(&images)
        .args(["--image", "tiny-1"])
        .output()
        .unwrap();
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            common::text(&out.stdout),
            common::text(&out.stderr)
        )
    });
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), 8);
    for r in reports {
        assert_eq!(r["ok"], true, "{r}");
        let stages: Vec<&str> = r["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s[0].as_str().unwrap())
            .collect();
        assert_eq!(
            stages,
            [
                "rom_dhcp",
                "rom_tftp",
                "bootcode_dhcp",
                "bootcode_tftp",
                "start_elf_tftp",
                "linux_dhcp"
            ]
        );
        assert_eq!(
            r["files"], 8,
            "bootcode, config ×2, start, fixup, dtb, cmdline, kernel: {r}"
        );
    }
    assert!(out.status.success());
    assert!(
        Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout
            .windows(10)
            .all(|w| w != b"pirack-sim"),
        "the simulator removed its namespaces"
    );

    // The controller saw what happened: every slot's offer and its files.
    drop(ctl);
    server.child.0.kill().unwrap();
    let events: Vec<serde_json::Value> = std::iter::once(first)
        .chain(lines.map_while(Result::ok))
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    let count = |kind: &str| events.iter().filter(|e| e["kind"] == kind).count();
    assert!(
        count("interface_down") >= 8,
        "missing interfaces were reported"
    );
    assert!(count("dhcp_offer") >= 16 && count("dhcp_ack") >= 8);
    assert!(
        count("tftp_probed") >= 8 * 6,
        "the firmware's probes end at once"
    );
    assert_eq!(count("tftp_failed"), 0, "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "tftp_refused" && e["file"] == "bootsig.bin")
    );
}
