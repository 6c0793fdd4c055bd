//! What fails halfway leaves nothing half-done: exports written by one writer for
//! a storm of provisions, an export that fails marks its slot failed and says so,
//! and a root build that never ends does not hold its slot for ever (needs root).

mod common;

use common::controller::{Rig, owners, start_exporting};
use common::http::{get, post};
use common::nfs::Ganesha;
use std::time::{Duration, Instant};

fn is_root(test: &str) -> bool {
    common::can_use_netns(test)
}

/// A namespace with an address for ganesha (it starts only with one), and
/// ganesha serving the exports file of `dir`.
fn nfs_server(dir: &std::path::Path) -> (common::Netns, Ganesha) {
    let ns = common::netns("pfnfs");
    // This kernel has no dummy links: a veth pair within the namespace will do.
    ns.ip(&[
        "link", "add", "nfs0", "type", "veth", "peer", "name", "nfs1",
    ])
    .unwrap();
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "nfs0"])
        .unwrap();
    ns.ip(&["link", "set", "nfs0", "up"]).unwrap();
    ns.ip(&["link", "set", "nfs1", "up"]).unwrap();
    let ganesha = Ganesha::start(&ns, dir);
    (ns, ganesha)
}

/// Waits for every slot of `rig` named in `ops`' operations to end; their answers.
fn wait_all(rig: &Rig, ops: &[serde_json::Value]) -> Vec<serde_json::Value> {
    ops.iter().map(|op| rig.wait(op)).collect()
}

#[test]
fn ninety_six_provisions_at_once_with_exports_on_all_finish_exported() {
    if !is_root("ninety_six_provisions_at_once_with_exports_on_all_finish_exported") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let nfs = dir.join("nfs");
    std::fs::create_dir_all(&nfs).unwrap();
    let (_ns, _ganesha) = nfs_server(&nfs);
    let inventory = common::site_in(
        &dir,
        "shelf-96",
        None,
        &common::nfs::inventory_section(&nfs),
    );
    let yaml = std::fs::read_to_string(&inventory).unwrap();
    std::fs::write(&inventory, yaml.replace(", owner: acme }", " }")).unwrap();
    let rig = start_exporting(tmp, &inventory, false, Vec::new());
    owners(&rig.db, &["customer-0", "customer-1", "customer-2"]);
    let calls: Vec<_> = (0..96)
        .map(|i| {
            let (addr, token) = (rig.addr, rig.admin.clone());
            std::thread::spawn(move || {
                let body = format!(r#"{{"image":"tiny-1","owner":"customer-{}"}}"#, i % 3);
                post(addr, "/v1/slots", Some(&token), &body)
            })
        })
        .collect();
    let ops: Vec<serde_json::Value> = calls
        .into_iter()
        .map(|c| {
            let r = c.join().unwrap();
            assert_eq!(r.status, 202, "{}", r.body);
            r.json()
        })
        .collect();
    let started = Instant::now();
    for done in wait_all(&rig, &ops) {
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    eprintln!("96 provisions exported in {:?}", started.elapsed());
    let slots = get(rig.addr, "/v1/slots", Some(&rig.admin)).json();
    assert!(
        slots
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "ready"),
        "{slots}"
    );
    // One file, every root in it, each to its own Pi.
    let exports = std::fs::read_to_string(nfs.join("pirack-exports.conf")).unwrap();
    assert_eq!(exports.matches("Export_Id").count(), 96, "{exports}");
    let leftovers: Vec<_> = std::fs::read_dir(&nfs)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary file left: {leftovers:?}"
    );
}

#[test]
fn a_failed_export_fails_its_slot_with_an_alert() {
    if !is_root("a_failed_export_fails_its_slot_with_an_alert") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    // The NFS server's pid file names a process that is not ganesha.
    let nfs = dir.join("nfs");
    std::fs::create_dir_all(&nfs).unwrap();
    std::fs::write(nfs.join("ganesha.pid"), "1\n").unwrap();
    let inventory = common::example_site_in(&dir, None, &common::nfs::inventory_section(&nfs));
    let rig = start_exporting(tmp, &inventory, false, Vec::new());
    let op = post(
        rig.addr,
        "/v1/slots",
        Some(&rig.admin),
        r#"{"image":"tiny-1","owner":"initech","slot":"A-07"}"#,
    );
    let done = rig.wait(&op.json());
    assert_eq!(
        (done["status"].as_str(), done["error"].as_str()),
        (Some("failed"), Some("export_failed")),
        "{done}"
    );
    assert_eq!(
        rig.slot("A-07")["state"],
        "failed",
        "not left building_root"
    );
    let events = get(rig.addr, "/v1/events?slot=A-07", Some(&rig.admin)).json();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "alert" && e["detail"].as_str().unwrap().contains("not ganesha")),
        "{events}"
    );
}

#[test]
fn a_root_build_that_never_ends_is_failed_by_the_watchdog() {
    if !is_root("a_root_build_that_never_ends_is_failed_by_the_watchdog") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    // Host key generation hangs, as a starved entropy pool or a stuck disk would.
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let keygen = bin.join("ssh-keygen");
    std::fs::write(&keygen, "#!/bin/sh\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(&keygen, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let inventory = common::example_site_in(&dir, None, "\nwatchdog: { root_build_s: 2 }\n");
    let rig =
        common::controller::start_exporting(tmp, &inventory, true, vec![("PATH".into(), path)]);
    let op = post(
        rig.addr,
        "/v1/slots",
        Some(&rig.admin),
        r#"{"image":"tiny-1","owner":"initech","slot":"A-07"}"#,
    );
    assert_eq!(op.status, 202, "{}", op.body);
    let started = Instant::now();
    while rig.slot("A-07")["state"] != "failed" {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still {}",
            rig.slot("A-07")["state"]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let events = get(rig.addr, "/v1/events?slot=A-07", Some(&rig.admin)).json();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "alert"
                && e["detail"]
                    .as_str()
                    .unwrap()
                    .contains("the root build never ended")),
        "{events}"
    );
}
