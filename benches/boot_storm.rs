//! Boot storm: N simulated Pi 3s of hardware/shelf-96.yaml power on together,
//! first against `pirack serve`, then against dnsmasq serving the same files to
//! the same namespaces (same 1 s reply delay; its TFTP limit at the default 50 and
//! raised), all in one run. Boot files: the real firmware from Debian's
//! raspi-firmware package and a kernel of realistic size, imported as an image
//! whose roots the slots boot. Then pirack again under load, each beside the storm
//! alone: wrk on `GET /v1/slots` (50 connections) throughout; 2,000 idle API
//! connections and 500 event streams held open, with fresh requests timed; and
//! one more slot's Pi flooding the TFTP port with 20,000 refused requests (the
//! store's rows for it counted afterwards). wrk runs twice: beside the storm as
//! is, and at nice 19, as a load generator on a machine of its own would take
//! nothing from the storm's CPU. Needs root and wrk.
//!
//!     cargo bench --bench boot_storm -- [--slots 96] [--kernel-mib 8] [--only TEXT]
//!
//! `--only` runs the storm alone and the variants whose names hold TEXT.

mod common;
mod load;

use common::{arg, sh};
use pirack_core::inventory::{self, Site};
use pirack_core::plan::{Ledger, Plan, plan};
use pirack_core::switch::Profiles;
use pirack_lab::sim::{self, Report};
use pirack_lab::testbed::netns::Netns;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

static NEVER: AtomicBool = AtomicBool::new(false);
/// The controller's API, inside the bench's controller namespace.
const API: &str = "127.0.0.1:18088";
const INVENTORY: &str = "hardware/shelf-96.yaml";
const IMAGE: &str = "bench-1";

struct Server {
    name: String,
    child: Child,
}

struct Row {
    name: String,
    /// What the load beside the storm measured.
    note: String,
    wall: f64,
    p50: f64,
    p99: f64,
    failed: usize,
    cpu: f64,
    /// Of which in the kernel (system time).
    sys: f64,
    rss_mib: f64,
}

/// (utime, stime) of a process, in seconds.
fn cpu_seconds(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, from field 3 (state): utime is field 14 and
    // stime field 15 of proc(5).
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let at = |field: usize| {
        f.get(field - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / hz
    };
    (at(14), at(15))
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Real firmware plus synthetic DTBs and a kernel of `kernel_mib`.
fn boot_files(kernel_mib: u64) -> PathBuf {
    let debian = Path::new("target/debian");
    sh(Command::new("images/debian-fetch")
        .arg(debian)
        .arg("raspi-firmware"));
    let dir = PathBuf::from("target/bench-boot");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["bootcode.bin", "start.elf", "fixup.dat"] {
        std::fs::copy(
            debian.join("raspi-firmware/usr/lib/raspi-firmware").join(f),
            dir.join(f),
        )
        .unwrap();
    }
    let mut noise = common::noise();
    std::fs::write(dir.join("bcm2710-rpi-3-b.dtb"), noise(24_621)).unwrap();
    std::fs::write(dir.join("bcm2710-rpi-3-b-plus.dtb"), noise(25_196)).unwrap();
    std::fs::write(dir.join("kernel8.img"), noise((kernel_mib << 20) as usize)).unwrap();
    dir
}

/// A copy of the shelf whose export root is under target/, the image `bench-1`
/// (boot files `boot`) in its store, and the roots of the first `n` slots built
/// from it (offline, as `pirack root build` does); the inventory and the store.
fn booting_site(boot: &Path, n: usize, plan: &Plan) -> (PathBuf, PathBuf) {
    let dir = std::path::absolute("target/bench-site").unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["hardware", "switch-profiles"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for f in std::fs::read_dir("switch-profiles").unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::copy(&f, dir.join("switch-profiles").join(f.file_name().unwrap())).unwrap();
        }
    }
    let ledger = Ledger::path_for(Path::new(INVENTORY));
    std::fs::copy(&ledger, dir.join(&ledger)).unwrap();
    let inventory = dir.join(INVENTORY);
    let yaml = std::fs::read_to_string(INVENTORY).unwrap().replace(
        "export_root: /export",
        &format!("export_root: {}", dir.join("export").display()),
    );
    std::fs::write(&inventory, yaml).unwrap();
    let store = dir.join("images");
    common::bench_image(&store, &dir, boot);
    sh(Command::new(env!("CARGO_BIN_EXE_pirack"))
        .arg("root")
        .arg("--inventory")
        .arg(&inventory)
        .arg("--store")
        .arg(&store)
        .arg("--db")
        .arg(format!("sqlite://{}/build.db", dir.display()))
        .args(["--no-export", "build", "--image", IMAGE])
        .args(plan.slots.iter().take(n).map(|s| &s.position)));
    (inventory, store)
}

/// dnsmasq's TFTP root: bootcode.bin at the top, a directory per serial holding
/// links to the image's boot files and the slot's cmdline.txt and config.txt as
/// pirack renders them for it.
fn dnsmasq_root(site: &Site, plan: &Plan, store: &Path, n: usize) -> PathBuf {
    let root = PathBuf::from("target/bench-dnsmasq-root");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let boot = std::fs::canonicalize(store.join(IMAGE).join("boot")).unwrap();
    std::os::unix::fs::symlink(boot.join("bootcode.bin"), root.join("bootcode.bin")).unwrap();
    for s in plan.slots.iter().take(n) {
        let dir = root.join(&s.board.as_ref().unwrap().serial);
        std::fs::create_dir_all(&dir).unwrap();
        for f in [
            "start.elf",
            "fixup.dat",
            "bcm2710-rpi-3-b.dtb",
            "bcm2710-rpi-3-b-plus.dtb",
            "kernel8.img",
        ] {
            std::os::unix::fs::symlink(boot.join(f), dir.join(f)).unwrap();
        }
        let ours = pirack_controller::boot::of(site, s, store, IMAGE).unwrap();
        std::fs::write(dir.join("cmdline.txt"), &ours.cmdline).unwrap();
        std::fs::write(dir.join("config.txt"), &ours.config).unwrap();
    }
    std::fs::canonicalize(root).unwrap()
}

fn dnsmasq_conf(plan: &Plan, root: &Path, n: usize, tftp_max: Option<u32>, delay: bool) -> PathBuf {
    let mut c =
        String::from("port=0\nbind-interfaces\nleasefile-ro\nno-ping\nuser=root\nenable-tftp\n");
    c += "pxe-service=0,\"Raspberry Pi Boot   \"\n";
    if delay {
        c += "dhcp-reply-delay=1\n";
    }
    c += &format!("tftp-root={}\n", root.display());
    if let Some(m) = tftp_max {
        c += &format!("tftp-max={m}\n");
    }
    for s in plan.slots.iter().take(n) {
        let b = s.board.as_ref().unwrap();
        c += &format!(
            "interface={}\ndhcp-range={},static,{},12h\ndhcp-host={},{}\n",
            s.interface,
            s.pi_ip,
            s.netmask(),
            b.mac,
            s.pi_ip
        );
    }
    let path = PathBuf::from(format!(
        "target/bench-dnsmasq-{}.conf",
        tftp_max.unwrap_or(50)
    ));
    std::fs::write(&path, c).unwrap();
    path
}

/// Load put on the controller during a storm: started before the Pis power on,
/// ended (with what it measured) once they are done.
type Load<'a> = Box<dyn FnOnce() -> Box<dyn FnOnce() -> String> + 'a>;

fn run_one(
    site: &Site,
    plan: &Plan,
    opts: &sim::Options,
    start: impl FnOnce() -> Server,
    load: Option<Load<'_>>,
) -> Row {
    let prepared = sim::prepare(site, plan, opts).expect("simulator network");
    let mut server = start();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = server.child.id();
    let cpu0 = cpu_seconds(pid);
    let end = load.map(|l| l());
    let reports: Vec<Report> = prepared.boot(&NEVER);
    let note = end.map(|e| e()).unwrap_or_default();
    let (user1, sys1) = cpu_seconds(pid);
    let (cpu, sys) = (user1 + sys1 - cpu0.0 - cpu0.1, sys1 - cpu0.1);
    let rss = peak_rss_mib(pid);
    let _ = server.child.kill();
    let _ = server.child.wait();
    let mut done: Vec<f64> = reports
        .iter()
        .filter(|r| r.ok)
        .map(|r| {
            let upto: u64 = r
                .stages
                .iter()
                .take_while(|(s, _)| s != "linux_dhcp")
                .map(|(_, ms)| ms)
                .sum();
            upto as f64 / 1000.0
        })
        .collect();
    done.sort_by(f64::total_cmp);
    // Wall time until every Pi has all its files (the end of its TFTP stages; all
    // Pis power on together).
    let wall = done.last().copied().unwrap_or(f64::NAN);
    let failed: Vec<&Report> = reports.iter().filter(|r| !r.ok).collect();
    if let Some(f) = failed.first() {
        eprintln!(
            "  {}: {} failed, e.g. {}: {}",
            server.name,
            failed.len(),
            f.position,
            f.error.as_deref().unwrap_or("")
        );
    }
    Row {
        name: std::mem::take(&mut server.name),
        note,
        wall,
        p50: percentile(&done, 0.5),
        p99: percentile(&done, 0.99),
        failed: failed.len(),
        cpu,
        sys,
        rss_mib: rss,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !common::is_root("boot_storm") {
        return;
    }
    let n = arg("--slots", 96) as usize;
    let kernel_mib = arg("--kernel-mib", 8);
    let profiles = Profiles::load_dir(Path::new("switch-profiles")).unwrap();
    let ledger = Ledger::load(&Ledger::path_for(Path::new(INVENTORY))).unwrap();
    let boot = boot_files(kernel_mib);
    let (shelf, _) = plan(
        &inventory::load(Path::new(INVENTORY), &profiles.names()).unwrap(),
        &ledger,
    )
    .unwrap();
    let (inventory, store) = booting_site(&boot, n, &shelf);
    let site = inventory::load(&inventory, &profiles.names()).unwrap();
    let (plan, _) = plan(&site, &ledger).unwrap();
    let root = dnsmasq_root(&site, &plan, &store, n);
    let ctl = Netns::new(&format!("pirack-bench-{}", std::process::id())).unwrap();
    let opts = sim::Options {
        controller_netns: Some(ctl.name().to_string()),
        boot_files: boot.clone(),
        images: store.clone(),
        image: Some(IMAGE.into()),
        only: plan
            .slots
            .iter()
            .take(n)
            .map(|s| s.position.clone())
            .collect(),
        prefix: format!("pirack-storm-{}", std::process::id()),
        power_on: Duration::from_secs(1),
    };
    let spawn = |name: &str, program: &str, args: &[&str]| Server {
        name: name.to_string(),
        child: ctl
            .command(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("server starts"),
    };
    println!("boot storm: {n} Pi 3s, kernel {kernel_mib} MiB, firmware from raspi-firmware");
    let mut rows = Vec::new();
    let db = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}/state.db", db.path().display());
    let token = sh(Command::new(env!("CARGO_BIN_EXE_pirack")).args([
        "token", "create", "--db", &db_url, "--name", "bench", "--admin",
    ]))
    .trim()
    .to_string();
    let pirack = |name: &str| {
        spawn(
            name,
            env!("CARGO_BIN_EXE_pirack"),
            &[
                "serve",
                "--inventory",
                inventory.to_str().unwrap(),
                "--boot-files",
                boot.to_str().unwrap(),
                "--images",
                store.to_str().unwrap(),
                "--db",
                &db_url,
                "--api",
                API,
                "--no-export",
                "--streams-per-token",
                "1000",
            ],
        )
    };
    let only: Option<String> = std::env::args().skip_while(|a| a != "--only").nth(1);
    let wanted = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    rows.push(run_one(&site, &plan, &opts, || pirack("pirack"), None));
    let mut loads: Vec<(&str, Load)> = vec![
        (
            "pirack + wrk on the API",
            Box::new(|| load::wrk(&ctl, &token, 0)),
        ),
        (
            "pirack + wrk at nice 19",
            Box::new(|| load::wrk(&ctl, &token, 19)),
        ),
        (
            "pirack + 2,500 idle/streams",
            Box::new(|| load::idle(ctl.name(), &token, 2000, 500)),
        ),
    ];
    if let Some(flooder) = plan.slots.get(n) {
        loads.push((
            "pirack + a TFTP flood",
            Box::new(|| load::flood(ctl.name(), flooder, 20_000, &db_url)),
        ));
    }
    for (name, l) in loads.into_iter().filter(|(name, _)| wanted(name)) {
        rows.push(run_one(&site, &plan, &opts, || pirack(name), Some(l)));
    }
    // dnsmasq's reply delay blocks its whole event loop for each reply, so the
    // last variant leaves it out to compare TFTP work alone.
    for (max, delay) in [(None, true), (Some(1000), true), (Some(1000), false)] {
        if !wanted("dnsmasq") {
            break;
        }
        let conf = dnsmasq_conf(&plan, &root, n, max, delay);
        let name = format!(
            "dnsmasq tftp-max={}{}",
            max.unwrap_or(50),
            if delay { "" } else { " no-delay" }
        );
        rows.push(run_one(
            &site,
            &plan,
            &opts,
            || {
                spawn(
                    &name,
                    "dnsmasq",
                    &["--no-daemon", &format!("--conf-file={}", conf.display())],
                )
            },
            None,
        ));
    }
    drop(ctl);

    println!(
        "{:<24} {:>8} {:>8} {:>8} {:>7} {:>9} {:>9} {:>9}",
        "server", "wall s", "p50 s", "p99 s", "failed", "CPU s", "(sys s)", "RSS MiB"
    );
    for r in &rows {
        println!(
            "{:<32} {:>8.1} {:>8.1} {:>8.1} {:>7} {:>9.2} {:>9.2} {:>9.1}",
            r.name, r.wall, r.p50, r.p99, r.failed, r.cpu, r.sys, r.rss_mib
        );
    }
    let alone = &rows[0];
    for loaded in rows.iter().filter(|r| r.name.starts_with("pirack +")) {
        println!(
            "{}: storm wall {:.2}x the storm alone, {} failed; {}",
            loaded.name,
            loaded.wall / alone.wall,
            loaded.failed,
            loaded.note
        );
    }
    let ours = &rows[0];
    for theirs in rows.iter().filter(|r| r.name.starts_with("dnsmasq")) {
        println!(
            "pirack / {}: wall {:.2}x, CPU {:.2}x, failed {} vs {}",
            theirs.name,
            ours.wall / theirs.wall,
            ours.cpu / theirs.cpu.max(0.001),
            ours.failed,
            theirs.failed
        );
    }
}
