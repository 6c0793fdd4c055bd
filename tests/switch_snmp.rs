//! Switch control against real SNMP agents on loopback: net-snmp's snmpd with the
//! PoE switch emulator (v2c and v3 authPriv), and snmpsim for a vendor profile.

mod common;

use common::snmp::{
    Agent, Creds, Simulator, V3_AUTH, V3_PRIV, pirack_community, pirack_snmp, site_for,
};
use common::{have, text};
use std::process::Output;
use std::time::Instant;

/// Quick timings for tests: short timeouts, read-back and drain.
const FAST: &str = "snmp_timeout_ms: 400\nsnmp_retries: 1\npower: { drain_ms: 300, readback_ms: 1500, batch: 8, batch_interval_ms: 200 }";

fn have_snmpd(test: &str) -> bool {
    have(test, "snmpd") && have(test, "snmpget") && have(test, "python3")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "pirack failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A clean failure: exit 1 (not a panic's 101), and the message on stdout or stderr.
fn fails_with(out: &Output, needle: &str) {
    let all = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(!all.contains("panicked"), "{all}");
    assert!(all.contains(needle), "expected `{needle}` in:\n{all}");
}

/// The table row of a slot, as words: slot, port, admin, detection, draw.
fn row(out: &str, slot: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{slot} ")))
        .unwrap_or_else(|| panic!("no row {slot} in\n{out}"));
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An emulated 10-port switch and the example site pointed at it.
struct Rig {
    agent: Agent,
    dir: tempfile::TempDir,
    inv: String,
}

fn rig(vendor: Option<&str>, profile: &str, creds: Creds) -> Rig {
    let agent = Agent::start(10, 10, vendor);
    let dir = tempfile::tempdir().unwrap();
    let inv = site_for(dir.path(), agent.port, profile, creds, FAST);
    let inv = inv.to_str().unwrap().to_string();
    Rig { agent, dir, inv }
}

#[test]
fn power_single_slots_over_v2c() {
    if !have_snmpd("power_single_slots_over_v2c") {
        return;
    }
    let Rig {
        agent,
        dir: _dir,
        inv,
    } = rig(None, "generic", Creds::V2c);
    let inv = inv.as_str();

    let out = ok(&pirack_snmp(&[
        "power",
        "status",
        "--inventory",
        inv,
        "A-01",
        "sw-a/2",
    ]));
    assert!(row(&out, "A-01").contains("on delivering-power"), "{out}");
    assert!(row(&out, "A-02").contains("on delivering-power"), "{out}");
    assert!(out.contains("sw-a: the PSE draws"), "{out}");
    assert!(
        !out.contains("the PSE is"),
        "an on supply is not remarked: {out}"
    );
    // A failed supply: its state told, no port delivering power.
    agent.fault(&["pse=\"faulty\""]);
    let out = ok(&pirack_snmp(&[
        "power",
        "status",
        "--inventory",
        inv,
        "A-01",
    ]));
    assert!(out.contains("sw-a: the PSE is faulty"), "{out}");
    assert!(out.contains("sw-a: the PSE draws 0 W"), "{out}");
    assert!(row(&out, "A-01").contains("on other-fault"), "{out}");
    agent.fault(&["clear=1"]);

    let out = ok(&pirack_snmp(&["power", "off", "--inventory", inv, "A-01"]));
    assert!(row(&out, "A-01").contains("off disabled"), "{out}");
    assert_eq!(agent.admin(1), 2);
    assert_eq!(agent.admin(2), 1, "only the named slot changes");

    let out = ok(&pirack_snmp(&["power", "on", "--inventory", inv, "A-01"]));
    assert!(row(&out, "A-01").contains(" on "), "{out}");
    assert_eq!(agent.admin(1), 1);

    let before = agent.state()["enabled_at"]["2"].as_f64().unwrap();
    let started = Instant::now();
    let out = ok(&pirack_snmp(&[
        "power",
        "cycle",
        "--inventory",
        inv,
        "A-02",
        "--json",
    ]));
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["ok"], true, "{out}");
    assert_eq!(rows[0]["admin"], "on", "{out}");
    assert!(
        started.elapsed().as_millis() >= 300,
        "the port stays off for drain_ms"
    );
    let after = agent.state()["enabled_at"]["2"].as_f64().unwrap();
    assert!(
        after > before,
        "the port was really switched off and on again"
    );

    fails_with(
        &pirack_snmp(&["power", "on", "--inventory", inv, "Z-99"]),
        "no slot `Z-99`",
    );
}

#[test]
fn powering_a_shelf_on_is_staggered() {
    if !have_snmpd("powering_a_shelf_on_is_staggered") {
        return;
    }
    let Rig {
        agent,
        dir: _dir,
        inv,
    } = rig(None, "generic", Creds::V2c);
    let inv = inv.as_str();

    let out = ok(&pirack_snmp(&[
        "power",
        "off",
        "--inventory",
        inv,
        "--shelf",
        "a",
    ]));
    assert_eq!(
        out.lines().filter(|l| l.contains(" off ")).count(),
        8,
        "{out}"
    );
    assert!((1..=8).all(|p| agent.admin(p) == 2));
    assert_eq!(agent.admin(9), 1, "ports without a slot are left alone");

    let out = ok(&pirack_snmp(&[
        "power",
        "on",
        "--inventory",
        inv,
        "--all",
        "--batch",
        "3",
        "--interval-ms",
        "500",
    ]));
    assert_eq!(
        out.lines().filter(|l| l.contains(" on ")).count(),
        8,
        "{out}"
    );
    let state = agent.state();
    let at = |p: u16| state["enabled_at"][p.to_string()].as_f64().unwrap();
    for batch in [[1, 2, 3], [4, 5, 6]] {
        let spread = at(batch[2]) - at(batch[0]);
        assert!(
            spread < 0.35,
            "ports {batch:?} went on together, spread {spread}"
        );
    }
    for (a, b) in [(1, 4), (4, 7)] {
        let gap = at(b) - at(a);
        assert!(
            gap >= 0.45,
            "batches start 500 ms apart: ports {a}..{b} {gap}"
        );
    }

    // A cycle of the whole shelf: all off together, one drain, on in batches.
    let out = ok(&pirack_snmp(&[
        "power",
        "cycle",
        "--inventory",
        inv,
        "--all",
        "--no-stagger",
    ]));
    assert_eq!(
        out.lines().filter(|l| l.contains(" on ")).count(),
        8,
        "{out}"
    );
    let state = agent.state();
    let at = |p: u16| state["enabled_at"][p.to_string()].as_f64().unwrap();
    assert!(at(8) - at(1) < 0.35, "--no-stagger switches all on at once");
}

#[test]
fn power_over_v3_authpriv_and_its_credential_errors() {
    if !have_snmpd("power_over_v3_authpriv_and_its_credential_errors") {
        return;
    }
    let creds = Creds::V3 {
        auth: V3_AUTH,
        privacy: V3_PRIV,
    };
    let Rig {
        agent,
        dir: _dir,
        inv,
    } = rig(None, "generic", creds);
    let inv = inv.as_str();
    let out = ok(&pirack_community(
        &["power", "cycle", "--inventory", inv, "A-05"],
        "unused",
    ));
    assert!(row(&out, "A-05").contains(" on "), "{out}");
    ok(&pirack_community(
        &["power", "off", "--inventory", inv, "A-06"],
        "unused",
    ));
    assert_eq!(agent.admin(6), 2);

    let wrong_auth = tempfile::tempdir().unwrap();
    let creds = Creds::V3 {
        auth: "not-the-password",
        privacy: V3_PRIV,
    };
    let inv = site_for(wrong_auth.path(), agent.port, "generic", creds, FAST);
    fails_with(
        &pirack_snmp(&["power", "on", "--inventory", inv.to_str().unwrap(), "A-06"]),
        "SNMPv3 authentication failed for user `pirack`",
    );
    let wrong_priv = tempfile::tempdir().unwrap();
    let creds = Creds::V3 {
        auth: V3_AUTH,
        privacy: "not-the-password",
    };
    let inv = site_for(wrong_priv.path(), agent.port, "generic", creds, FAST);
    fails_with(
        &pirack_snmp(&["power", "on", "--inventory", inv.to_str().unwrap(), "A-06"]),
        "wrong privacy password",
    );
    assert_eq!(agent.admin(6), 2, "no credentials, no change");

    // A secret file anyone can read is refused before anything is sent.
    let secret = wrong_priv.path().join("hardware/sw-a.priv");
    let mut perms = std::fs::metadata(&secret).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&secret, perms).unwrap();
    fails_with(
        &pirack_snmp(&[
            "power",
            "status",
            "--inventory",
            inv.to_str().unwrap(),
            "A-06",
        ]),
        "is readable by everyone",
    );
}

fn vlan_apply(creds: Creds, community: &str) {
    let Rig {
        agent,
        dir: _dir,
        inv,
    } = rig(None, "generic", creds);
    let inv = inv.as_str();
    let run = |extra: &[&str]| {
        let mut args = vec!["switch", "apply", "--inventory", inv];
        args.extend(extra);
        pirack_community(&args, community)
    };

    let factory = agent.state()["vlans"].clone();
    let out = ok(&run(&["--dry-run"]));
    assert!(out.contains("switch sw-a: 45 change(s)"), "{out}");
    assert!(out.contains("~ VLAN 1 egress ports: 1-10 -> 9-10"), "{out}");
    assert!(out.contains("+ VLAN 10: create"), "{out}");
    assert!(out.contains("~ port 8 PVID: 1 -> 17"), "{out}");
    assert!(out.contains("dry run, nothing written"), "{out}");
    assert_eq!(agent.state()["vlans"], factory, "a dry run writes nothing");

    let out = ok(&run(&[]));
    assert!(out.contains("no drift remains"), "{out}");
    let state = agent.state();
    assert_eq!(state["vlans"]["10"]["name"], "pirack-A-01");
    assert_eq!(
        state["vlans"]["10"]["egress"], "8040",
        "port 1 and the trunk, port 10"
    );
    assert_eq!(state["vlans"]["10"]["untagged"], "8000");
    assert_eq!(
        state["vlans"]["131"]["egress"], "ff40",
        "every Pi port and the trunk"
    );
    assert_eq!(
        state["vlans"]["131"]["untagged"], "0000",
        "the public VLAN is tagged"
    );
    assert_eq!(
        state["vlans"]["1"]["egress"], "00c0",
        "Pi ports leave the default VLAN"
    );
    assert_eq!(state["pvid"]["7"], 16);

    let out = ok(&run(&[]));
    assert_eq!(out.trim(), "switch sw-a: no drift", "idempotent");

    // Someone edits the switch by hand: port 3 into A-02's storage VLAN, port 5's
    // PVID back to 1, a VLAN renamed.
    for (oid, kind, value) in [
        ("1.3.6.1.2.1.17.7.1.4.3.1.2.11", "x", "6040"),
        ("1.3.6.1.2.1.17.7.1.4.5.1.1.5", "u", "1"),
        ("1.3.6.1.2.1.17.7.1.4.3.1.1.12", "s", "temp"),
    ] {
        let set = agent.net_snmp("snmpset", &[oid, kind, value]);
        assert!(set.status.success(), "{}", text(&set.stderr));
    }
    let out = ok(&run(&["--dry-run"]));
    assert!(out.contains("switch sw-a: 3 change(s)"), "{out}");
    assert!(
        out.contains("~ VLAN 11 egress ports: 2-3, 10 -> 2, 10"),
        "{out}"
    );
    assert!(out.contains("~ port 5 PVID: 1 -> 14"), "{out}");
    assert!(
        out.contains("~ VLAN 12 name: \"temp\" -> \"pirack-A-03\""),
        "{out}"
    );
    ok(&run(&[]));
    assert_eq!(agent.state()["vlans"]["11"]["egress"], "4040");
    assert_eq!(ok(&run(&[])).trim(), "switch sw-a: no drift");
}

#[test]
fn vlan_apply_over_v2c_reads_drift_and_is_idempotent() {
    if have_snmpd("vlan_apply_over_v2c_reads_drift_and_is_idempotent") {
        vlan_apply(Creds::V2c, common::snmp::COMMUNITY);
    }
}

#[test]
fn vlan_apply_over_v3() {
    if have_snmpd("vlan_apply_over_v3") {
        let creds = Creds::V3 {
            auth: V3_AUTH,
            privacy: V3_PRIV,
        };
        vlan_apply(creds, "unused");
    }
}

#[test]
fn vlan_apply_refuses_a_profile_without_vlan_control() {
    if !have_snmpd("vlan_apply_refuses_a_profile_without_vlan_control") {
        return;
    }
    let Rig {
        inv,
        agent: _agent,
        dir: _dir,
    } = rig(Some("cisco"), "cisco-catalyst", Creds::V2c);
    fails_with(
        &pirack_snmp(&["switch", "apply", "--inventory", &inv]),
        "profile `cisco-catalyst` sets no VLANs over SNMP",
    );
    // Its power and per-port draw work (CISCO-POWER-ETHERNET-EXT-MIB column).
    let out = ok(&pirack_snmp(&[
        "power",
        "status",
        "--inventory",
        &inv,
        "A-03",
    ]));
    assert!(row(&out, "A-03").ends_with("2.35 W"), "{out}");
}

#[test]
fn every_fault_is_a_clear_error_and_changes_nothing_reported() {
    if !have_snmpd("every_fault_is_a_clear_error_and_changes_nothing_reported") {
        return;
    }
    let Rig {
        agent,
        dir: _dir,
        inv,
    } = rig(Some("hp"), "aruba-procurve", Creds::V2c);
    let inv = inv.as_str();
    let status = |slot: &str| pirack_snmp(&["power", "status", "--inventory", inv, slot]);

    let out = ok(&status("A-04"));
    assert!(
        row(&out, "A-04").ends_with("2.37 W"),
        "HP-ICF-POE-MIB draw: {out}"
    );

    // Slower than the timeout, every time.
    agent.fault(&["delay_ms=900"]);
    fails_with(&status("A-04"), "no reply to 2 attempt(s) of 400ms each");
    // One request lost: the retry gets through.
    agent.fault(&["clear=1"]);
    std::thread::sleep(std::time::Duration::from_secs(2)); // the slow replies drain
    agent.fault(&["stall_next=1", "stall_ms=450"]);
    ok(&status("A-04"));

    fails_with(
        &pirack_community(&["power", "status", "--inventory", inv, "A-04"], "wrong"),
        "wrong community",
    );
    fails_with(
        &pirack_community(&["power", "off", "--inventory", inv, "A-04"], "public"),
        "agent refused the request: noAccess(6)",
    );
    assert_eq!(agent.admin(4), 1);

    agent.fault(&["wrong_type=true"]);
    fails_with(
        &status("A-04"),
        "POWER-ETHERNET-MIB::pethPsePortAdminEnable (1.3.6.1.2.1.105.1.1.1.3.1.4): expected an INTEGER or Gauge32, got STRING \"on\"",
    );
    agent.fault(&["clear=1", "set_error=\"wrong-value\""]);
    fails_with(
        &pirack_snmp(&["power", "off", "--inventory", inv, "A-04"]),
        "agent refused the request: wrongValue(10) at 1.3.6.1.2.1.105.1.1.1.3.1.4",
    );
    assert_eq!(agent.admin(4), 1);

    // The port accepts the SET but stays on: reported as failed, never as done.
    agent.fault(&["clear=1", "stuck_ports=[3]"]);
    let out = pirack_snmp(&["power", "off", "--inventory", inv, "A-03", "A-04", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["ok"], false);
    let error = rows[0]["error"].as_str().unwrap();
    assert!(error.contains("port 3: set off, but after"), "{error}");
    assert!(
        error.contains("reads admin on, delivering-power"),
        "{error}"
    );
    assert_eq!(rows[1]["ok"], true, "the other port is switched");
    assert_eq!(rows[1]["admin"], "off");
    agent.fault(&["clear=1"]);

    // No agent at all.
    let down = tempfile::tempdir().unwrap();
    let port = common::snmp::free_udp_port();
    let inv = site_for(down.path(), port, "generic", Creds::V2c, FAST);
    fails_with(
        &pirack_snmp(&[
            "power",
            "cycle",
            "--inventory",
            inv.to_str().unwrap(),
            "A-01",
        ]),
        "agent unreachable",
    );
}

#[test]
fn garbage_replies_are_errors_not_panics() {
    use std::net::UdpSocket;
    let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = agent.local_addr().unwrap().port();
    let replier = std::thread::spawn(move || {
        agent
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 1500];
        let mut seed = 0x9e37_79b9_u32;
        // Replies of every shape: random bytes, a truncated copy, a mangled copy.
        while let Ok((n, peer)) = agent.recv_from(&mut buf) {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let reply: Vec<u8> = match seed % 3 {
                0 => (0..(seed % 200))
                    .map(|i| (seed >> (i % 24)) as u8)
                    .collect(),
                1 => buf[..n / 2].to_vec(),
                _ => buf[..n].iter().map(|b| b ^ (seed as u8 | 1)).collect(),
            };
            let _ = agent.send_to(&reply, peer);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let inv = site_for(dir.path(), port, "generic", Creds::V2c, FAST);
    for _ in 0..6 {
        let out = pirack_snmp(&[
            "power",
            "status",
            "--inventory",
            inv.to_str().unwrap(),
            "--all",
        ]);
        let all = text(&out.stdout) + &text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(!all.contains("panicked"), "{all}");
    }
    replier.join().unwrap();
}

#[test]
fn reads_a_vendor_switch_recorded_in_snmpsim() {
    if !have("reads_a_vendor_switch_recorded_in_snmpsim", "snmpsimd")
        || !have("reads_a_vendor_switch_recorded_in_snmpsim", "snmpget")
    {
        return;
    }
    // A Catalyst with a Pi on every port but 5, which found nothing to power.
    let mut records = Vec::new();
    for p in 1..=10u32 {
        let powered = p != 5;
        records.push((
            vec![1, 3, 6, 1, 2, 1, 105, 1, 1, 1, 3, 1, p],
            "2",
            "1".to_string(),
        ));
        let detection = if powered { "3" } else { "2" };
        records.push((
            vec![1, 3, 6, 1, 2, 1, 105, 1, 1, 1, 6, 1, p],
            "2",
            detection.into(),
        ));
        let mw = if powered { 2900 + 10 * p } else { 0 };
        records.push((
            vec![1, 3, 6, 1, 4, 1, 9, 9, 402, 1, 2, 1, 9, 1, p],
            "66",
            mw.to_string(),
        ));
    }
    records.push((
        vec![1, 3, 6, 1, 2, 1, 105, 1, 3, 1, 1, 4, 1],
        "66",
        "27".into(),
    ));
    records.sort();
    let text_records: String = records
        .iter()
        .map(|(oid, tag, v)| {
            let oid: Vec<String> = oid.iter().map(u32::to_string).collect();
            format!("{}|{tag}|{v}\n", oid.join("."))
        })
        .collect();
    let sim = Simulator::start(&text_records);
    let dir = tempfile::tempdir().unwrap();
    let inv = site_for(dir.path(), sim.port, "cisco-catalyst", Creds::V2c, FAST);
    let inv = inv.to_str().unwrap();
    let out = ok(&pirack_community(
        &["power", "status", "--inventory", inv, "--all"],
        "public",
    ));
    assert!(
        row(&out, "A-01").ends_with("on delivering-power 2.91 W"),
        "{out}"
    );
    assert!(row(&out, "A-05").ends_with("on searching 0.00 W"), "{out}");
    assert!(row(&out, "A-08").ends_with("2.98 W"), "{out}");
    assert!(out.contains("sw-a: the PSE draws 27 W in all"), "{out}");
    // snmpsim keeps recordings read-only: the SET is refused and nothing is reported
    // as switched.
    fails_with(
        &pirack_community(&["power", "off", "--inventory", inv, "A-01"], "public"),
        "noSuchInstance",
    );
}

#[test]
fn one_operation_per_port_at_a_time() {
    use pirack_controller::switch::power::Fleet;
    use pirack_core::switch::port::Admin;
    use std::time::Duration;
    if !have_snmpd("one_operation_per_port_at_a_time") {
        return;
    }
    let Rig { agent, dir, inv } = rig(None, "generic", Creds::V2c);
    // The community from a file: this process's environment is shared by parallel tests.
    let secret = dir.path().join("hardware/sw-a.community");
    std::fs::write(&secret, common::snmp::COMMUNITY).unwrap();
    let mut perms = std::fs::metadata(&secret).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&secret, perms).unwrap();
    let yaml = std::fs::read_to_string(&inv)
        .unwrap()
        .replace("{ env: PIRACK_SW_A_COMMUNITY }", "{ file: sw-a.community }");
    std::fs::write(&inv, yaml).unwrap();
    let profiles =
        pirack_core::switch::Profiles::load_dir(&dir.path().join("switch-profiles")).unwrap();
    let site = pirack_core::inventory::load(inv.as_ref(), &profiles.names()).unwrap();
    let fleet = Fleet::new(&site, &profiles).unwrap();
    let sw = fleet.get("sw-a").unwrap().clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let drain = Duration::from_millis(300);
    rt.block_on(async {
        let (a, b, c) = tokio::join!(
            sw.cycle(3, drain),
            sw.cycle(3, drain),
            sw.set(3, Admin::Off)
        );
        a.unwrap();
        b.unwrap();
        c.unwrap();
    });
    let history: Vec<i64> = agent.state()["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0] == 3)
        .map(|h| h[1].as_i64().unwrap())
        .collect();
    assert_eq!(
        history,
        [2, 1, 2, 1, 2],
        "whole cycles, one after the other"
    );
    assert_eq!(agent.admin(3), 2);
}

#[test]
fn a_set_without_a_reply_is_read_back_before_it_is_sent_again() {
    if !have_snmpd("a_set_without_a_reply_is_read_back_before_it_is_sent_again") {
        return;
    }
    let Rig {
        agent,
        dir: _dir,
        inv,
    } = rig(None, "generic", Creds::V2c);
    let inv = inv.as_str();
    let sets_on = |port: i64| {
        agent.state()["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h[0] == port)
            .count()
    };
    // The agent applies the SET at once but answers after the timeout (400 ms):
    // read back, it is off, and it is not sent again.
    agent.fault(&["stall_next=1", "stall_ms=600"]);
    let out = ok(&pirack_snmp(&["power", "off", "--inventory", inv, "A-05"]));
    assert!(row(&out, "A-05").contains("off"), "{out}");
    assert_eq!(sets_on(5), 1, "one SET reached the port");

    // Slower than the timeout every time: the SET is reported as unknown, with
    // the warning that the switch may still apply it.
    agent.fault(&["delay_ms=900"]);
    fails_with(
        &pirack_snmp(&["power", "on", "--inventory", inv, "A-06"]),
        "the switch may still apply it",
    );
    agent.fault(&["clear=1"]);
}

#[test]
fn a_vlan_apply_that_fails_part_way_is_undone_and_says_what_it_did() {
    if !have_snmpd("a_vlan_apply_that_fails_part_way_is_undone_and_says_what_it_did") {
        return;
    }
    let Rig { agent, dir, inv } = rig(None, "generic", Creds::V2c);
    let apply = |inv: &str| pirack_snmp(&["switch", "apply", "--inventory", inv]);
    let factory = agent.state();
    // A switch whose VLAN names cannot be written, under a profile that says they can.
    agent.fault(&["vlan_names=\"read-only\""]);
    let out = apply(&inv);
    let all = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("writing `~ VLAN 10 name"), "{all}");
    assert!(
        all.contains("written before it:\n  + VLAN 10: create"),
        "{all}"
    );
    assert!(all.contains("restored, as it was before:"), "{all}");
    assert!(all.contains("- VLAN 10: destroy"), "{all}");
    let now = agent.state();
    assert_eq!(now["vlans"], factory["vlans"], "every VLAN as it was");
    assert_eq!(now["pvid"], factory["pvid"], "every PVID as it was");

    // The profile says names are not written: the plan goes on, names aside.
    let profiles = dir.path().join("switch-profiles");
    let generic = std::fs::read_to_string(profiles.join("generic.yaml")).unwrap();
    std::fs::write(
        profiles.join("unnamed.yaml"),
        generic.replace("name: generic", "name: unnamed") + "vlan_names: false\n",
    )
    .unwrap();
    let yaml = std::fs::read_to_string(&inv)
        .unwrap()
        .replace("profile: generic", "profile: unnamed");
    std::fs::write(&inv, &yaml).unwrap();
    let out = ok(&apply(&inv));
    assert!(out.contains("no drift remains"), "{out}");
    assert!(!out.contains("name:"), "no name written: {out}");
    assert_eq!(agent.state()["vlans"]["10"]["untagged"], "8000");

    // A switch that holds fewer rows than the plan needs: refused before any write.
    let (dir2, agent2) = (tempfile::tempdir().unwrap(), Agent::start(10, 10, None));
    let inv2 = site_for(dir2.path(), agent2.port, "generic", Creds::V2c, FAST);
    agent2.fault(&["max_vlans=3"]);
    let sets = agent2.state()["sets"].clone();
    fails_with(
        &apply(inv2.to_str().unwrap()),
        "it holds at most 3 VLANs and has 1: the plan needs 9 more",
    );
    assert_eq!(agent2.state()["sets"], sets, "nothing was written");
}
