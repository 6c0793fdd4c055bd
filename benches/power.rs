//! Power-cycling a whole shelf: all 96 ports of the emulated PoE switch (net-snmp's
//! snmpd running switch-profiles/emulator/poe-switch), with pirack's staggering off and on, beside
//! the same cycle done the way an operator's script does it with net-snmp's own
//! snmpset/snmpget, in one run: total time, time spent on SNMP (the drain and the
//! stagger pauses taken out), and SNMP requests per port cycle.
//!
//!     cargo bench --bench power -- [--ports 96] [--drain-ms 5000]

mod common;

use common::arg;
use pirack_controller::switch::many::{self, Action, Options, PortRef};
use pirack_controller::switch::power::Fleet;
use pirack_core::inventory;
use pirack_core::switch::Profiles;
use pirack_lab::testbed::switch::{PoeSwitch, Spec};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const COMMUNITY: &str = "private";

/// The emulated switch (the testbed's), `ports` PoE ports and a trunk.
fn start_agent(dir: &Path, ports: u16) -> PoeSwitch {
    let agent = PoeSwitch::start(&Spec {
        netns: None,
        dir,
        emulator: Path::new("switch-profiles/emulator/poe-switch"),
        port: pirack_lab::testbed::free_udp_port().unwrap(),
        ports: ports + 1,
        poe_ports: Some(ports),
        vendor: None,
        power_off: false,
        community: COMMUNITY,
        read_only: None,
        v3: None,
    })
    .expect("snmpd (apt-get install snmpd snmp)");
    for _ in 0..100 {
        if snmp(&agent, "snmpget", &["1.3.6.1.2.1.105.1.1.1.3.1.1"]).is_some() {
            return agent;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("snmpd did not come up");
}

fn snmp(agent: &PoeSwitch, tool: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(tool)
        .args(["-v2c", "-c", COMMUNITY, "-Oqv"])
        .arg(format!("127.0.0.1:{}", agent.port))
        .args(args)
        .env("MIBS", "")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A copy of the 96-slot shelf pointed at the agent over v2c.
fn site(dir: &Path, agent: &PoeSwitch, drain_ms: u64) -> inventory::Site {
    let mut yaml = std::fs::read_to_string("hardware/shelf-96.yaml").unwrap();
    let start = yaml.find("    snmp:\n").unwrap();
    let end = yaml[start..].find("    ports:").unwrap() + start;
    yaml.replace_range(
        start..end,
        "    snmp:\n      version: v2c\n      community: { env: PIRACK_BENCH_COMMUNITY }\n",
    );
    yaml = yaml.replace("snmp_port: 16162", &format!("snmp_port: {}", agent.port));
    yaml = yaml.replace(
        "    trunk_port: 97\n",
        &format!("    trunk_port: 97\n    power: {{ drain_ms: {drain_ms} }}\n"),
    );
    let path = dir.join("shelf-96.yaml");
    std::fs::write(&path, yaml).unwrap();
    let profiles = Profiles::load_dir(Path::new("switch-profiles")).unwrap();
    inventory::load(&path, &profiles.names()).unwrap()
}

struct Run {
    name: String,
    total: Duration,
    waits: Duration,
    requests: f64,
}

fn pirack_cycle(site: &inventory::Site, opts: Options, name: &str, waits: Duration) -> Run {
    let profiles = Profiles::load_dir(Path::new("switch-profiles")).unwrap();
    let fleet = Fleet::new(site, &profiles).unwrap();
    let targets: Vec<PortRef> = site
        .slots
        .iter()
        .map(|s| PortRef {
            slot: s.position.clone(),
            switch: s.key.switch.clone(),
            port: s.key.port,
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let outcomes = rt.block_on(many::run(
        &fleet,
        &targets,
        Action::Cycle,
        &opts,
        Arc::new(|_: &many::Outcome| {}),
    ));
    let total = started.elapsed();
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    assert_eq!(failed, 0, "{name}: {failed} ports failed");
    let sw = fleet.switches().next().unwrap();
    let requests = rt.block_on(sw.session().lock()).requests();
    Run {
        name: name.into(),
        total,
        waits,
        requests: requests as f64 / targets.len() as f64,
    }
}

/// The script way: per port an snmpset and an snmpget to check, off for every port,
/// one drain, then on for every port.
fn net_snmp_cycle(agent: &PoeSwitch, ports: u16, drain: Duration) -> Run {
    let admin = |p: u16| format!("1.3.6.1.2.1.105.1.1.1.3.1.{p}");
    let started = Instant::now();
    let mut requests = 0;
    for (value, then_wait) in [("2", true), ("1", false)] {
        for p in 1..=ports {
            snmp(agent, "snmpset", &[&admin(p), "i", value]).expect("snmpset");
            let got = snmp(agent, "snmpget", &[&admin(p)]).expect("snmpget");
            assert_eq!(got, value, "port {p}");
            requests += 2;
        }
        if then_wait {
            std::thread::sleep(drain);
        }
    }
    Run {
        name: "net-snmp snmpset+snmpget per port".into(),
        total: started.elapsed(),
        waits: drain,
        requests: requests as f64 / f64::from(ports),
    }
}

fn main() {
    let ports = arg("--ports", 96) as u16;
    let drain = Duration::from_millis(arg("--drain-ms", 5000));
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(&dir.path().join("switch"), ports);
    // SAFETY: set before any thread of ours starts.
    unsafe { std::env::set_var("PIRACK_BENCH_COMMUNITY", COMMUNITY) };
    let site = site(dir.path(), &agent, drain.as_millis() as u64);
    assert_eq!(site.slots.len(), usize::from(ports), "one slot per port");

    let (batch, interval) = (8usize, Duration::from_secs(2));
    let stagger_waits = drain + interval * (u32::from(ports).div_ceil(batch as u32) - 1);
    let runs = [
        pirack_cycle(
            &site,
            Options {
                no_stagger: true,
                ..Options::default()
            },
            "pirack, staggering off",
            drain,
        ),
        pirack_cycle(
            &site,
            Options {
                batch: Some(batch),
                interval: Some(interval),
                ..Options::default()
            },
            "pirack, batches of 8 every 2 s",
            stagger_waits,
        ),
        net_snmp_cycle(&agent, ports, drain),
    ];
    println!(
        "\npower-cycle {ports} ports, drain {:.1} s (snmpd + pass_persist emulator on loopback)\n",
        drain.as_secs_f64()
    );
    println!(
        "{:<36} {:>9} {:>10} {:>14}",
        "", "total s", "SNMP s", "requests/port"
    );
    for r in &runs {
        println!(
            "{:<36} {:>9.2} {:>10.2} {:>14.1}",
            r.name,
            r.total.as_secs_f64(),
            (r.total - r.waits).as_secs_f64(),
            r.requests
        );
    }
    let snmp_s = |r: &Run| (r.total - r.waits).as_secs_f64();
    println!(
        "\nSNMP time, pirack (staggering off) / net-snmp tools: {:.2}x",
        snmp_s(&runs[0]) / snmp_s(&runs[2])
    );
}
