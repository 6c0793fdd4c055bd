//! A 1,000-slot site: ten shelves of 100 simulated Pi 3s with small boot files,
//! served first by one controller (`--role all` on SQLite, the one box, one
//! fileserver), then by a cluster on PostgreSQL: the same slots on two
//! fileservers of five shelves each, a rack controller for each (A and C, each
//! in its own network namespace as on its own machine), rack controller B
//! standing by for A's fileserver, and region controller R serving the API. For
//! each: the provisioning rate (every slot provisioned through the API, 16
//! callers), the boot storm of every Pi (the shelves powered on `--stagger-ms`
//! apart, 6 s by default) with events per second into the store, and the API's
//! latency under that load (8 callers reading the rack view's listing of every
//! slot throughout). Then the cluster's failover: A
//! SIGKILLed, timed until B answers a Pi's DHCP DISCOVER (B sees A's lease lapse
//! as a standby on another machine would: its own hostname, in a UTS namespace).
//! Needs root and a PostgreSQL as `.ci/run` sets up (PIRACK_TEST_POSTGRES).
//!
//!     cargo bench --bench cluster -- [--slots 1000] [--lease-s 15] [--stagger-ms 6000]

mod common;

use common::{arg, request, sh};
use pirack_core::inventory::{self, Site};
use pirack_core::plan::{Ledger, Plan, SlotPlan, plan};
use pirack_core::switch::Profiles;
use pirack_lab::sim::{self, frames, lab, link::RawLink, pi};
use pirack_lab::testbed::netns::{self, Netns};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static NEVER: AtomicBool = AtomicBool::new(false);
const IMAGE: &str = "bench-1";
/// The APIs, inside the controllers' namespace: the one box's or the rack
/// controllers', and the region controller's.
const API: &str = "127.0.0.1:18088";
const REGION_API: &str = "127.0.0.1:18089";

/// What one set-up measured.
#[derive(Default)]
struct Figures {
    provision_s: f64,
    storm_s: f64,
    booted: usize,
    events: i64,
    /// From the storm's start to the store's last event of it.
    events_s: f64,
    api_p50_ms: f64,
    api_p99_ms: f64,
    api_calls: usize,
}

/// The site: `n` slots in shelves of 100 (two rows of 50 each), one switch per
/// shelf, every slot with a Pi 3B whose MAC follows its serial; the shelves
/// split evenly between `fileservers` (name, export root), each with its own
/// pool and VLANs.
fn site_yaml(n: usize, fileservers: &[(&str, &Path)]) -> String {
    let shelves = n.div_ceil(100);
    let per = shelves.div_ceil(fileservers.len());
    let mut y = format!(
        "site:\n  name: site{n}\n  domain: pi.example.net\n  unknown_board: hold\nfileservers:\n"
    );
    for (i, (name, export)) in fileservers.iter().enumerate() {
        y += &format!(
            "  - name: {name}\n    trunk_interface: eth0\n    storage_pool: 10.{}.0.0/16\n    \
             storage_vlans: {{ first: {}, last: {} }}\n    export_root: {}\n    root_name: \"{{pi_ip}}\"\n",
            32 + i,
            10 + i * n,
            9 + (i + 1) * n,
            export.display()
        );
    }
    y += "shelves:\n";
    for k in 0..shelves {
        y += &format!(
            "  - name: s{k}\n    fileserver: {}\n    public_vlan: {}\n    ipv6:\n      \
             prefix: 2001:db8:0:{:x}:1000:1::/96\n      on_link: 64\n      gateway: 2001:db8:0:{:x}::1\n",
            fileservers[k / per].0,
            3000 + k,
            0x100 + k,
            0x100 + k
        );
    }
    y += "switches:\n";
    for k in 0..shelves {
        y += &format!(
            "  - name: sw-{k}\n    shelf: s{k}\n    address: 127.0.0.1\n    snmp_port: 16162\n    \
             profile: generic\n    snmp: {{ version: v2c, community: {{ env: PIRACK_BENCH_COMMUNITY }} }}\n    \
             ports: 104\n    trunk_port: 101\n"
        );
    }
    y += "owners:\n  - name: acme\n    contact: ops@acme.example\nslots:\n";
    let mut boards = String::from("boards:\n");
    for i in 0..n {
        let (k, at) = (i / 100, i % 100);
        let row = (b'A' + (2 * k + at / 50) as u8) as char;
        let position = format!("{row}-{:02}", at % 50 + 1);
        y += &format!(
            "  - {{ position: {position}, switch: sw-{k}, port: {} }}\n",
            at + 1
        );
        let serial = 0x5a00_0000u32 + i as u32 + 1;
        let b = serial.to_be_bytes();
        boards += &format!(
            "  - {{ serial: \"{serial:08x}\", mac: \"b8:27:eb:{:02x}:{:02x}:{:02x}\", model: 3B, slot: {position} }}\n",
            b[1], b[2], b[3]
        );
    }
    y + &boards
}

/// One set-up's site: its inventory, the site and its plan.
struct Layout {
    inventory: PathBuf,
    site: Site,
    plan: Plan,
}

impl Layout {
    /// Its slots served by fileserver `fs`.
    fn of(&self, fs: &str) -> Plan {
        self.only(|s| s.fileserver == fs)
    }

    fn only(&self, keep: impl Fn(&SlotPlan) -> bool) -> Plan {
        Plan {
            site: self.plan.site.clone(),
            slots: self
                .plan
                .slots
                .iter()
                .filter(|s| keep(s))
                .cloned()
                .collect(),
        }
    }

    /// The storm's simulators, a shelf each: shelf k powered on `stagger` × k
    /// after the first (as a PoE switch's power-up sequencing spreads them),
    /// its Pis wired to the namespace of its fileserver's controller (`ns`).
    fn shelves(
        &self,
        stagger: Duration,
        ns: impl Fn(&str) -> String,
        opts: impl Fn(String, String, Duration) -> sim::Options,
    ) -> Vec<(Plan, sim::Options)> {
        (self.site.shelves.iter().enumerate())
            .map(|(k, shelf)| {
                let plan = self.only(|s| s.shelf == shelf.name);
                let fs = &self.site.fileservers[shelf.fileserver].name;
                let at = Duration::from_secs(1) + stagger * k as u32;
                (plan, opts(ns(fs), shelf.name.clone(), at))
            })
            .collect()
    }
}

/// Small boot files (pseudo-random bytes of a Pi's files' kind of sizes, the
/// kernel cut to 512 KiB) as image `bench-1`, and the site twice: on one
/// fileserver (`one/`) and on two (`two/`, fs-a and fs-b); the working
/// directory and the image store.
fn prepare(n: usize) -> (PathBuf, PathBuf, Layout, Layout) {
    let dir = std::path::absolute("target/bench-cluster").unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["one", "two", "boot", "export", "export-a", "export-b"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let mut noise = common::noise();
    for (f, size) in [
        ("bootcode.bin", 52_456),
        ("start.elf", 120_000),
        ("fixup.dat", 7_300),
        ("bcm2710-rpi-3-b.dtb", 24_621),
        ("bcm2710-rpi-3-b-plus.dtb", 25_196),
        ("kernel8.img", 512 << 10),
    ] {
        std::fs::write(dir.join("boot").join(f), noise(size)).unwrap();
    }
    let store = dir.join("images");
    common::bench_image(&store, &dir, &dir.join("boot"));
    let profiles = Profiles::load_dir(Path::new("switch-profiles")).unwrap();
    let layout = |sub: &str, fileservers: &[(&str, &Path)]| {
        let inventory = dir.join(sub).join("site.yaml");
        std::fs::write(&inventory, site_yaml(n, fileservers)).unwrap();
        let site = inventory::load(&inventory, &profiles.names()).unwrap();
        let (plan, _) = plan(&site, &Ledger::default()).unwrap();
        Layout {
            inventory,
            site,
            plan,
        }
    };
    let one = layout("one", &[("fs1", &dir.join("export"))]);
    let (a, b) = (dir.join("export-a"), dir.join("export-b"));
    let two = layout("two", &[("fs-a", &a), ("fs-b", &b)]);
    (dir, store, one, two)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `work` on `threads` threads inside namespace `ns`, each taking the next
/// item of `items` until none is left.
fn in_parallel<T: Send + Sync>(ns: &str, threads: usize, items: &[T], work: impl Fn(&T) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                netns::enter(ns).unwrap();
                while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                    work(item);
                }
            });
        }
    });
}

/// Provisions every slot through `api` (16 callers, each waiting for its
/// operation before the next); the seconds it took.
fn provision(ns: &str, api: SocketAddr, token: &str, plan: &Plan) -> f64 {
    let started = Instant::now();
    in_parallel(ns, 16, &plan.slots, |s| {
        let body = format!(
            r#"{{"image":"{IMAGE}","owner":"acme","slot":"{}"}}"#,
            s.position
        );
        let (status, op) = request(api, "POST", "/v1/slots", token, &body);
        assert_eq!(status, 202, "{}: {op}", s.position);
        let op: serde_json::Value = serde_json::from_str(&op).unwrap();
        let path = format!("/v1/operations/{}", op["id"].as_str().unwrap());
        loop {
            let (_, now) = request(api, "GET", &path, token, "");
            let now: serde_json::Value = serde_json::from_str(&now).unwrap();
            match now["status"].as_str() {
                Some("running") => std::thread::sleep(Duration::from_millis(50)),
                Some("succeeded") => break,
                _ => panic!("{}: {now}", s.position),
            }
        }
    });
    started.elapsed().as_secs_f64()
}

/// Every Pi booted, each shelf's on its own (`sims`: its slots and the
/// simulator's options, when it powers on among them), while 8 callers in
/// namespace `ns` read `GET /v1/slots` from `api`; fills the storm's figures.
fn storm(
    site: &Site,
    sims: &[(Plan, sim::Options)],
    ns: &str,
    api: SocketAddr,
    token: &str,
    db: &str,
    f: &mut Figures,
) {
    let prepared: Vec<_> = (sims.iter())
        .map(|(plan, opts)| sim::prepare(site, plan, opts).expect("simulator network"))
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt
        .block_on(pirack_controller::store::Store::open(db))
        .unwrap();
    let before = rt.block_on(store.last_event_id()).unwrap();
    let done = AtomicBool::new(false);
    let latencies = Mutex::new(Vec::new());
    let started = Instant::now();
    let reports = std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                netns::enter(ns).unwrap();
                let mut mine = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let (status, _) = request(api, "GET", "/v1/slots", token, "");
                    assert_eq!(status, 200);
                    mine.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                latencies.lock().unwrap().extend(mine);
            });
        }
        let booting: Vec<_> = (prepared.into_iter())
            .map(|p| s.spawn(move || p.boot(&NEVER)))
            .collect();
        let reports: Vec<_> = booting
            .into_iter()
            .flat_map(|b| b.join().unwrap())
            .collect();
        done.store(true, Ordering::Relaxed);
        reports
    });
    f.storm_s = started.elapsed().as_secs_f64();
    f.booted = reports.iter().filter(|r| r.ok).count();
    if let Some(r) = reports.iter().find(|r| !r.ok) {
        eprintln!(
            "  e.g. {} failed: {}",
            r.position,
            r.error.as_deref().unwrap_or("")
        );
    }
    // The storm's events may still be on their way: counted until the store
    // has taken none for two seconds.
    let (mut last, mut changed) = (before, started.elapsed());
    loop {
        let now = rt.block_on(store.last_event_id()).unwrap();
        if now != last {
            (last, changed) = (now, started.elapsed());
        } else if started.elapsed() - changed >= Duration::from_secs(2) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (f.events, f.events_s) = (last - before, changed.as_secs_f64());
    rt.block_on(store.pool().close());
    let mut l = latencies.into_inner().unwrap();
    l.sort_by(f64::total_cmp);
    (f.api_p50_ms, f.api_p99_ms, f.api_calls) =
        (percentile(&l, 0.5), percentile(&l, 0.99), l.len());
}

/// One `pirack serve` in namespace `ctl` with `args`, its log in `log`;
/// `host`: as if on another machine of that name (a UTS namespace).
fn serve(ctl: &Netns, common: &[String], args: &[&str], log: &Path, host: Option<&str>) -> Child {
    let mut cmd = match host {
        Some(h) => {
            let mut c = ctl.command("unshare");
            c.args([
                "--uts",
                "sh",
                "-c",
                &format!("hostname {h} && exec \"$@\""),
                "sh",
            ]);
            c.arg(env!("CARGO_BIN_EXE_pirack"));
            c
        }
        None => ctl.command(env!("CARGO_BIN_EXE_pirack")),
    };
    cmd.arg("serve")
        .args(common)
        .args(args)
        .env("PIRACK_BENCH_COMMUNITY", "public")
        .env(
            "RUST_LOG",
            std::env::var("PIRACK_BENCH_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("pirack serve starts")
}

/// Waits for `api` (inside `ns`) to answer.
fn answering(ns: &str, api: SocketAddr, log: &Path) {
    let started = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            netns::enter(ns).unwrap();
            while std::net::TcpStream::connect(api).is_err() {
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "{api} did not answer:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        });
    });
}

/// A Pi's link for `slot`, and its board: DISCOVERs from its boot ROM until
/// one is offered; the time that took.
fn until_offered(slot: &pirack_core::plan::SlotPlan, ctl: &str, prefix: &str) -> Duration {
    let board = pi::Board::of(slot).unwrap();
    let link = lab::PiLink {
        netns: format!("{prefix}-probe"),
        controller_if: slot.interface.clone(),
        fileserver_cidr: format!("{}/{}", slot.fileserver_ip, slot.storage.prefix_len()),
        mac: board.mac.to_string(),
        public: slot.ipv6.to_string(),
    };
    let _lab = lab::Lab::build(std::slice::from_ref(&link), Some(ctl)).unwrap();
    let started = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            netns::enter(&link.netns).unwrap();
            let raw = RawLink::open("eth0").unwrap();
            let frame =
                frames::loader_discover(frames::Asker::Rom(board.model), board.mac, board.serial);
            loop {
                raw.send(&frame).unwrap();
                let got = raw
                    .recv_until(Duration::from_millis(200), &NEVER, |f| {
                        let r = frames::parse_reply(f)?;
                        (r.msg.chaddr().get(..6) == Some(&board.mac.0[..])).then_some(())
                    })
                    .unwrap();
                if got.is_some() {
                    return;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "no DHCP offer"
                );
            }
        });
    });
    started.elapsed()
}

fn main() {
    if std::env::args().any(|a| a == "--list") || !common::is_root("cluster") {
        return;
    }
    let Ok(admin) = std::env::var("PIRACK_TEST_POSTGRES") else {
        eprintln!("cluster needs PIRACK_TEST_POSTGRES (a PostgreSQL as .ci/run sets up); skipped");
        return;
    };
    let n = arg("--slots", 1000) as usize;
    let lease_s = arg("--lease-s", 15);
    let (dir, images, one, two) = prepare(n);
    let pid = std::process::id();
    // Fileserver fs-a's machines (and the one box before them), and fs-b's.
    let ns_a = Netns::new(&format!("pirack-cla-{pid}")).unwrap();
    let ns_b = Netns::new(&format!("pirack-clb-{pid}")).unwrap();
    let opts = |ns: String, prefix: String, power_on: Duration| sim::Options {
        controller_netns: Some(ns),
        boot_files: dir.join("boot"),
        images: images.clone(),
        image: Some(IMAGE.into()),
        only: Vec::new(),
        prefix: format!("pirack-cl{pid}{prefix}"),
        power_on,
    };
    let stagger = Duration::from_millis(arg("--stagger-ms", 6000));
    let common = |layout: &Layout| -> Vec<String> {
        [
            "--inventory",
            layout.inventory.to_str().unwrap(),
            "--images",
            images.to_str().unwrap(),
            "--boot-files",
            dir.join("boot").to_str().unwrap(),
            "--no-export",
            "--no-proxy",
            "--streams-per-token",
            "1000",
        ]
        .map(String::from)
        .to_vec()
    };
    let token = |db: &str| {
        sh(Command::new(env!("CARGO_BIN_EXE_pirack"))
            .args(["token", "create", "--db", db, "--name", "bench", "--admin"]))
        .trim()
        .to_string()
    };
    let (api, region_api): (SocketAddr, SocketAddr) =
        (API.parse().unwrap(), REGION_API.parse().unwrap());
    println!("{n} slots in {} shelves; small boot files", n.div_ceil(100));

    // The one box.
    let sqlite = format!("sqlite://{}/state.db", dir.display());
    let t = token(&sqlite);
    let mut one_f = Figures::default();
    {
        let log = dir.join("one-box.log");
        let args = ["--db", &sqlite, "--api", API];
        let mut c = serve(&ns_a, &common(&one), &args, &log, None);
        answering(ns_a.name(), api, &log);
        one_f.provision_s = provision(ns_a.name(), api, &t, &one.plan);
        let sims = one.shelves(
            stagger,
            |_| ns_a.name().into(),
            |ns, shelf, at| opts(ns, format!("o{shelf}"), at),
        );
        storm(&one.site, &sims, ns_a.name(), api, &t, &sqlite, &mut one_f);
        let _ = c.kill();
        let _ = c.wait();
    }

    // The cluster.
    let name = format!("pirack_bench_cluster_{pid}");
    let psql =
        |sql: &str| sh(Command::new("su").args(["postgres", "-c", &format!("psql -qc '{sql}'")]));
    psql(&format!("DROP DATABASE IF EXISTS {name}"));
    psql(&format!("CREATE DATABASE {name} OWNER pirack"));
    let pg = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let host = pg.rsplit_once('@').unwrap().1.split('/').next().unwrap();
    let pg_addr: SocketAddr = match host.contains(':') {
        true => host.parse().unwrap(),
        false => format!("{host}:5432").parse().unwrap(),
    };
    for ns in [&ns_a, &ns_b] {
        pirack_lab::forward::out_of(ns.name(), pg_addr).unwrap();
    }
    let t = token(&pg);
    let mut cl = Figures::default();
    let lease = lease_s.to_string();
    let rack = |api: &str, fs: &str| -> Vec<String> {
        [
            "--db",
            &pg,
            "--api",
            api,
            "--role",
            "rack",
            "--fileserver",
            fs,
        ]
        .into_iter()
        .chain(["--lease-s", &lease])
        .map(String::from)
        .collect()
    };
    let log = |name: &str| dir.join(format!("{name}.log"));
    let args = rack(API, "fs-a");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut a = serve(&ns_a, &common(&two), &args, &log("rack-a"), None);
    answering(ns_a.name(), api, &log("rack-a"));
    let args = rack(API, "fs-b");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut c = serve(&ns_b, &common(&two), &args, &log("rack-c"), None);
    answering(ns_b.name(), api, &log("rack-c"));
    let mut b_args = rack("127.0.0.1:18090", "fs-a");
    b_args.push("--standby".into());
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let mut b = serve(
        &ns_a,
        &common(&two),
        &b_args,
        &log("rack-b"),
        Some("rack-b"),
    );
    let r_args = [
        "--db",
        &pg,
        "--api",
        REGION_API,
        "--role",
        "region",
        "--lease-s",
        &lease,
    ];
    let mut r = serve(&ns_a, &common(&two), &r_args, &log("region"), None);
    answering(ns_a.name(), region_api, &log("region"));
    cl.provision_s = provision(ns_a.name(), region_api, &t, &two.plan);
    let ns_of = |fs: &str| match fs {
        "fs-a" => ns_a.name().to_string(),
        _ => ns_b.name().to_string(),
    };
    let sims = two.shelves(stagger, ns_of, |ns, shelf, at| {
        opts(ns, format!("c{shelf}"), at)
    });
    storm(&two.site, &sims, ns_a.name(), region_api, &t, &pg, &mut cl);
    // Failover: A killed, B (another machine's standby) timed to a DHCP offer.
    let first = &two.of("fs-a").slots[0];
    let probe = format!("pirack-cl{pid}p");
    let warm = until_offered(first, ns_a.name(), &probe);
    let _ = a.kill();
    let killed = Instant::now();
    let _ = a.wait();
    let offered = until_offered(first, ns_a.name(), &probe);
    let failover = killed.elapsed();
    for p in [&mut b, &mut c, &mut r] {
        let _ = p.kill();
        let _ = p.wait();
    }
    psql(&format!("DROP DATABASE {name} WITH (FORCE)"));
    drop((ns_a, ns_b));
    let one = one_f;

    println!(
        "{:<34} {:>12} {:>12} {:>7}",
        "", "one box", "cluster", "ratio"
    );
    let row = |what: &str, one: f64, cl: f64| {
        println!("{what:<34} {one:>12.1} {cl:>12.1} {:>6.2}x", cl / one);
    };
    row(
        "provisioning, slots/s",
        n as f64 / one.provision_s,
        n as f64 / cl.provision_s,
    );
    row("storm wall, s", one.storm_s, cl.storm_s);
    row(
        "events into the store, /s",
        one.events as f64 / one.events_s,
        cl.events as f64 / cl.events_s,
    );
    row(
        "GET /v1/slots p50 under load, ms",
        one.api_p50_ms,
        cl.api_p50_ms,
    );
    row(
        "GET /v1/slots p99 under load, ms",
        one.api_p99_ms,
        cl.api_p99_ms,
    );
    println!(
        "booted: one box {}/{n}, cluster {}/{n}; events {} and {}; API calls {} and {}",
        one.booted, cl.booted, one.events, cl.events, one.api_calls, cl.api_calls
    );
    println!(
        "failover: SIGKILL of rack controller A to B's first DHCP offer {:.1} s \
         (lease {lease_s} s; an offer from A before the kill took {:.1} s, the ROM's reply delay; the probe itself {:.1} s)",
        failover.as_secs_f64(),
        warm.as_secs_f64(),
        offered.as_secs_f64()
    );
}
