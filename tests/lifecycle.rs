//! The whole controller against simulated Pis that live on the emulated switch's
//! power: eight slots provisioned and powered on through the API boot to `up` over
//! DHCP, TFTP and NFS (a real ganesha); one hangs after bootcode.bin and is
//! recovered by the watchdog's power cycle; the controller is SIGKILLed during the
//! boot storm and restarted, and every Pi still ends up.

mod common;

use common::nsctl::Api;
use common::snmp::{Agent, Creds, site_for};
use common::{Child, can_use_netns, have, text};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SWITCH: &str = "snmp_timeout_ms: 1000\nsnmp_retries: 2\npower: { drain_ms: 500, readback_ms: 3000, batch: 8, batch_interval_ms: 200 }";
const WATCHDOG: &str = "\nwatchdog: { powering_on_s: 30, dhcp_s: 20, tftp_s: 8, kernel_loaded_s: 20, nfs_mounted_s: 20, max_recoveries: 2 }\n";

#[test]
fn pis_boot_to_up_survive_a_controller_kill_and_the_watchdog_recovers_a_stall() {
    let test = "lifecycle";
    if !can_use_netns(test)
        || !have(test, "snmpd")
        || !have(test, "ganesha.nfsd")
        || !have(test, "rpcbind")
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let ctl = common::netns("life");
    let api = Api {
        ns: &ctl,
        addr: "127.0.0.1:18080",
    };
    let agent = Agent::start_in(Some(ctl.name()), 10, 10, None);
    // Every port starts off, as a shelf waiting for pirack.
    for p in 1..=10 {
        let off = agent.net_snmp(
            "snmpset",
            &[&format!("1.3.6.1.2.1.105.1.1.1.3.1.{p}"), "i", "2"],
        );
        assert!(off.status.success(), "{}", text(&off.stderr));
    }
    let inventory = site_for(d, agent.port, "generic", Creds::V2c, SWITCH);
    let yaml = std::fs::read_to_string(&inventory).unwrap().replace(
        "export_root: /export",
        &format!("export_root: {}", d.join("export").display()),
    ) + WATCHDOG
        + &common::nfs::inventory_section(d);
    std::fs::write(&inventory, yaml).unwrap();
    common::tiny_image(&d.join("images"), "1", false);
    let boot = common::boot_files(1 << 20);
    let db = format!("sqlite://{}/state.db", d.display());
    let token = common::controller::token(&db, &["--name", "test", "--admin"]);
    common::controller::owners(&db, &["initech"]);

    // The Pis: alive whenever their port is on; A-03 hangs on its first boot.
    let mut sim = Child(
        Command::new(env!("CARGO_BIN_EXE_pirack"))
            .arg("sim")
            .arg("--inventory")
            .arg(&inventory)
            .args([
                "--controller-netns",
                ctl.name(),
                "--follow",
                "--stall",
                "A-03:1",
            ])
            .arg("--boot-files")
            .arg(boot.path())
            .arg("--images")
            .arg(d.join("images"))
            .args(["--image", "tiny-1"])
            .env("PIRACK_SW_A_COMMUNITY", common::snmp::COMMUNITY)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while !ctl
        .command("ip")
        .args(["link", "show", "eth0.17"])
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the simulator's links never came"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The NFS server, once the namespace has its addresses.
    let _ganesha = common::nfs::Ganesha::start(&ctl, d);

    let mut controller = api.serve(&inventory, d, boot.path());
    let owners = [
        "acme", "acme", "acme", "acme", "globex", "globex", "initech", "initech",
    ];
    let mut ops = Vec::new();
    for (i, owner) in owners.iter().enumerate() {
        let body = format!(
            r#"{{"image":"tiny-1","owner":"{owner}","slot":"A-0{}"}}"#,
            i + 1
        );
        ops.push(api.call(&token, "POST", "/v1/slots", Some(&body)));
    }
    let wait_op = |op: &serde_json::Value| {
        let id = op["id"].as_str().unwrap_or_else(|| panic!("{op}"));
        let started = Instant::now();
        loop {
            let now = api.call(&token, "GET", &format!("/v1/operations/{id}"), None);
            if now["status"] != "running" {
                return now;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "operation {id} hangs"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    for op in &ops {
        assert_eq!(wait_op(op)["status"], "succeeded", "{op}");
    }
    let powered: Vec<_> = (1..=8)
        .map(|i| {
            api.call(
                &token,
                "POST",
                &format!("/v1/slots/A-0{i}/power"),
                Some(r#"{"action":"on"}"#),
            )
        })
        .collect();
    for op in &powered {
        assert_eq!(wait_op(op)["status"], "succeeded", "{op}");
    }

    // Mid-storm, the controller dies without warning, and comes back.
    std::thread::sleep(Duration::from_millis(1500));
    controller.0.kill().unwrap(); // SIGKILL
    controller.0.wait().unwrap();
    controller = api.serve(&inventory, d, boot.path());

    let started = Instant::now();
    let slots = loop {
        let slots = api.call(&token, "GET", "/v1/slots", None);
        let states = common::strings(&slots, "state");
        if states.iter().all(|s| *s == "up") {
            break slots;
        }
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "not all up: {states:?}\n{}",
            std::fs::read_to_string(d.join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let a3 = &slots.as_array().unwrap()[2];
    assert_eq!(a3["position"], "A-03");
    assert_eq!(a3["recoveries"], 1, "{a3}");
    let events = api.call(&token, "GET", "/v1/events?slot=A-03&limit=1000", None);
    let recover = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "recover")
        .unwrap_or_else(|| panic!("no watchdog recovery in {events}"));
    assert!(
        recover["cause"]
            .as_str()
            .unwrap()
            .starts_with("watchdog: stalled in tftp"),
        "{recover}"
    );
    let kinds = common::strings(&events, "kind");
    for k in [
        "dhcp_seen",
        "tftp_seen",
        "kernel_served",
        "nfs_mounted",
        "reachable",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }

    // Per-stage timings of each Pi's boots, as the simulator saw them.
    // SIGTERM: the simulator stops its Pis and removes its namespaces.
    let pid = nix::unistd::Pid::from_raw(sim.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(
        sim.0.wait().unwrap().success(),
        "the simulator ends cleanly"
    );
    let lines: Vec<serde_json::Value> = BufReader::new(sim.0.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    for l in &lines {
        eprintln!(
            "{} boot {}: ok {} {} ms {}",
            l["position"], l["boot"], l["ok"], l["total_ms"], l["stages"]
        );
    }
    let a3_boots: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["position"] == "A-03").collect();
    assert!(
        a3_boots.len() >= 2,
        "A-03 hung once and booted again: {a3_boots:?}"
    );
    assert_eq!(a3_boots[0]["ok"], false);
    assert_eq!(a3_boots.last().unwrap()["ok"], true);
    drop(controller);
}
