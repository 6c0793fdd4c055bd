//! What watching a 1,000-slot site costs the controller: `pirack serve` on ten
//! shelves of 100 slots (ten emulated PoE switches, snmpd each), every slot
//! `up` and answering at its planned public address (namespaces), checked
//! every 10 s (ICMPv6 echo and TCP port 22) with each switch polled for its
//! ports' draw. The controller's CPU is read from /proc over a steady window,
//! with the `monitor:` section and, in the same run, without it; the
//! difference is the monitor's whole cost: probes, verdicts, faults, SNMP
//! polls and metrics. Needs root, snmpd and fping.
//!
//!     cargo bench --bench monitor_site -- [--shelves 10] [--seconds 60]

mod common;

use common::targets::targets;
use common::{arg, free_addr, have, is_root, request, serve, sh};
use pirack_controller::store::Store;
use pirack_controller::store::slots::Changes;
use pirack_core::inventory;
use pirack_core::lifecycle::Trigger;
use pirack_core::plan::{self, ledger::Ledger};
use pirack_core::switch::Profiles;
use pirack_lab::testbed::switch::{PoeSwitch, Spec};
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

const PER_SHELF: usize = 100;
const COMMUNITY: &str = "private";

/// The site: `shelves` shelves of 100 slots, each shelf on its own switch
/// (`agents`' ports) and its own /64, every slot acme's.
fn inventory(d: &Path, agents: &[PoeSwitch], monitor: bool) -> String {
    let n = agents.len() * PER_SHELF;
    let mut y = format!(
        "site: {{ name: watch, domain: pi.example.net, unknown_board: hold }}\n\
         fileserver:\n  trunk_interface: lo\n  storage_pool: 10.64.0.0/20\n  \
         storage_vlans: {{ first: 10, last: {} }}\n  export_root: {}\n  root_name: \"{{pi_ip}}\"\n\
         netboot: {{ boot_files: {} }}\nshelves:\n",
        9 + n,
        d.join("export").display(),
        d.join("boot").display()
    );
    for (s, _) in agents.iter().enumerate() {
        writeln!(
            y,
            "  - {{ name: s{s}, public_vlan: {}, ipv6: {{ prefix: 'fd00:b0:{s:x}:0:1000:1::/96', on_link: 64, gateway: 'fd00:b0:{s:x}::1' }} }}",
            2000 + s
        )
        .unwrap();
    }
    y += "switches:\n";
    for (s, a) in agents.iter().enumerate() {
        writeln!(
            y,
            "  - {{ name: sw-{s}, shelf: s{s}, address: 127.0.0.1, snmp_port: {}, profile: generic, \
             snmp: {{ version: v2c, community: {{ env: BENCH_COMMUNITY }} }}, ports: {}, trunk_port: {} }}",
            a.port,
            PER_SHELF + 1,
            PER_SHELF + 1
        )
        .unwrap();
    }
    y += "owners:\n  - name: acme\nslots:\n";
    for s in 0..agents.len() {
        for p in 1..=PER_SHELF {
            writeln!(
                y,
                "  - {{ position: S{s}-{p:03}, switch: sw-{s}, port: {p}, owner: acme }}"
            )
            .unwrap();
        }
    }
    if monitor {
        y += "monitor:\n  checks: { interval_s: 10, timeout_ms: 1000, down_after: 3, up_after: 2, ping: true, ports: [22] }\n";
    }
    y
}

/// A store at `db` with every slot of `site` `up`, and its plan's addresses.
fn seeded(
    rt: &tokio::runtime::Runtime,
    site: &inventory::Site,
    db: &str,
) -> Vec<std::net::Ipv6Addr> {
    rt.block_on(async {
        let store = Store::open(db).await.expect("the store");
        let (plan, ledger) = plan::plan(site, &Ledger::default()).expect("a plan");
        store.record_ledger(&ledger).await.expect("the ledger");
        store.sync_inventory(site).await.expect("the slots");
        for s in &plan.slots {
            let mut row = store
                .claim("acme", "tiny-1", Some(&s.position))
                .await
                .expect("claimed");
            for t in [
                Trigger::RootBuilt,
                Trigger::PowerOn,
                Trigger::DhcpSeen,
                Trigger::TftpSeen,
                Trigger::KernelServed,
                Trigger::NfsMounted,
                Trigger::Reachable,
            ] {
                row = store
                    .transition(&row, t, "bench", Changes::default())
                    .await
                    .expect("a step to up");
            }
        }
        plan.slots.iter().map(|s| s.ipv6).collect()
    })
}

/// CPU seconds (user and system) process `pid` has used.
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the controller runs");
    // The fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th of the line.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// A sample of the controller's metric `name` summed over its series.
fn metric(addr: std::net::SocketAddr, token: &str, name: &str) -> f64 {
    let (_, body) = request(addr, "GET", "/metrics", token, "");
    body.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

struct Run {
    share: f64,
    probes_s: f64,
    up: f64,
}

/// `pirack serve` on a freshly seeded store: CPU share over `seconds` once
/// the checks have settled (every check up, with the monitor).
fn run(
    rt: &tokio::runtime::Runtime,
    d: &Path,
    agents: &[PoeSwitch],
    monitor: bool,
    seconds: u64,
) -> Run {
    let tag = if monitor { "with" } else { "without" };
    let path = d.join(format!("site-{tag}.yaml"));
    std::fs::write(&path, inventory(d, agents, monitor)).unwrap();
    let profiles = Profiles::load_dir(Path::new("switch-profiles")).expect("the profiles");
    let site = inventory::load(&path, &profiles.names()).expect("the bench's inventory");
    let db = format!("sqlite://{}/state-{tag}.db", d.display());
    let addrs = seeded(rt, &site, &db);
    let _spaces = targets(&addrs);
    let admin = token(&db);
    let addr = free_addr();
    let profiles_dir = std::fs::canonicalize("switch-profiles").unwrap();
    let ctl = serve(
        &path,
        d,
        &db,
        addr,
        &["--profiles", profiles_dir.to_str().unwrap()],
    );
    let pid = ctl.0.id();
    let count = addrs.len() as f64;
    if monitor {
        let started = Instant::now();
        while metric(addr, &admin, "pirack_slot_check_up{") < 2.0 * count {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the checks did not all come up"
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    } else {
        std::thread::sleep(Duration::from_secs(20));
    }
    let probes0 = metric(addr, &admin, "pirack_check_probes_total{");
    let (cpu0, t0) = (cpu_s(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(seconds));
    let share = (cpu_s(pid) - cpu0) / t0.elapsed().as_secs_f64();
    let probes = metric(addr, &admin, "pirack_check_probes_total{") - probes0;
    Run {
        share,
        probes_s: probes / t0.elapsed().as_secs_f64(),
        up: metric(addr, &admin, "pirack_slot_check_up{"),
    }
}

/// An admin token in the store at `db`.
fn token(db: &str) -> String {
    sh(std::process::Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args(["token", "create", "--db", db, "--name", "bench", "--admin"]))
    .trim()
    .to_string()
}

fn main() {
    if !is_root("monitor_site bench") || !have("monitor_site bench", &["fping", "snmpd", "ip"]) {
        return;
    }
    let shelves = arg("--shelves", 10) as usize;
    let seconds = arg("--seconds", 60);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("images")).unwrap();
    std::fs::create_dir_all(d.join("boot")).unwrap();
    // SAFETY: set before any thread of this process reads the environment.
    unsafe { std::env::set_var("BENCH_COMMUNITY", COMMUNITY) };
    let agents: Vec<PoeSwitch> = (0..shelves)
        .map(|s| {
            PoeSwitch::start(&Spec {
                netns: None,
                dir: &d.join(format!("sw-{s}")),
                emulator: Path::new("switch-profiles/emulator/poe-switch"),
                port: pirack_lab::testbed::free_udp_port().unwrap(),
                ports: PER_SHELF as u16 + 1,
                poe_ports: Some(PER_SHELF as u16),
                vendor: None,
                power_off: false,
                community: COMMUNITY,
                read_only: None,
                v3: None,
            })
            .expect("snmpd (apt-get install snmpd snmp)")
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let slots = shelves * PER_SHELF;
    println!(
        "monitor_site: pirack serve with {slots} slots up on {shelves} emulated switches, \
         checked every 10 s (ping + TCP 22, each switch polled), {seconds} s windows"
    );
    let with = run(&rt, d, &agents, true, seconds);
    let without = run(&rt, d, &agents, false, seconds);
    println!(
        "{:<22} {:>14} {:>10} {:>12}",
        "", "% of one core", "probes/s", "checks up"
    );
    println!(
        "{:<22} {:>14.2} {:>10.1} {:>12}",
        "with monitor:",
        with.share * 100.0,
        with.probes_s,
        with.up
    );
    println!(
        "{:<22} {:>14.2} {:>10} {:>12}",
        "without monitor:",
        without.share * 100.0,
        "-",
        "-"
    );
    println!(
        "the monitor's cost: {:.2} % of one core for {slots} slots (goal: under 5 %)",
        (with.share - without.share) * 100.0
    );
}
