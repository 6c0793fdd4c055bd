//! `pirack hil`: virtual Pi 3s (`kind: qemu-raspi3b`) booting a real kernel from a
//! controller on this machine, from power-off to `up`, for CI. Builds the HIL image
//! (`images/hil/recipe`), and in a namespace of its own runs NFS-Ganesha and the
//! controller; each virtual slot's storage network is a bridge (standing in for its
//! VLAN) joining the controller's interface, the tap of the slot's QEMU and the veth
//! of its firmware namespace. It then checks what a hosting company needs of a
//! virtual shelf: every Pi up over DHCP, TFTP and NFS, each root its own (the boot
//! each guest records lands in its root only), a power cycle and a reimage booting
//! a Pi again, and the watchdog recovering one that hangs mid-boot; it prints each
//! Pi's stage timings, and the consoles when a step fails.

use crate::setup::{Controller, Lab, LabImage, Options, step};
use crate::signals::STOP;
use anyhow::{Context, Result, bail};
use bed::timings;
use pirack_controller::api::client::Client;
use pirack_controller::roots::image as roots_image;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

mod bed;
pub(crate) mod exec;
mod image;
mod report;
pub mod run;

const IMAGE: &str = "hil-1";
/// The image a reimage moves to, and a rollback away from.
const SECOND: &str = "hil-2";
const SECOND_KERNEL: &str = "vmlinuz-hil-2";
const SECOND_MARK: &str = "pirack.image=hil-2";
/// The switch community's variable in the HIL labs' environment.
const COMMUNITY_ENV: &str = "PIRACK_HIL_COMMUNITY";

#[derive(clap::Args)]
pub struct HilArgs {
    /// How many virtual Pis (the first slots of hardware/example-8.yaml).
    #[arg(long, default_value_t = 2)]
    pub slots: usize,
    /// Seconds each step may take (every Pi up; a cycled, reimaged or recovered one up again).
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Where the image cache, the controller's state, the roots and the consoles go.
    #[arg(long, default_value = "target/hil")]
    pub dir: PathBuf,
    /// Loopback port for the rack view and API (another is taken if it is busy).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// After the checks, keep the Pis running until Ctrl-C.
    #[arg(long)]
    pub keep: bool,
    /// Fail instead of installing missing packages with apt-get.
    #[arg(long)]
    pub no_install: bool,
    /// The pirack checkout: image recipes, example inventories, switch
    /// profiles and the switch emulator.
    #[arg(long, default_value = ".")]
    pub source: PathBuf,
}

/// Polls the slots until `done` holds for every one of `positions` (an error
/// when one fails, time runs out or the run is stopped), saying each change.
fn wait_for(
    api: &Client,
    positions: &[String],
    within: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Result<Vec<Value>> {
    let started = Instant::now();
    let mut last: Vec<String> = vec![String::new(); positions.len()];
    loop {
        if STOP.load(Ordering::Relaxed) {
            bail!("stopped");
        }
        let slots = api.call("GET", "/v1/slots", None)?;
        let mine: Vec<Value> = positions
            .iter()
            .filter_map(|p| {
                slots
                    .as_array()?
                    .iter()
                    .find(|s| s["position"] == p.as_str())
                    .cloned()
            })
            .collect();
        for (i, s) in mine.iter().enumerate() {
            let state = s["state"].as_str().unwrap_or("?").to_string();
            if state != last[i] {
                println!(
                    "{:>6.1} s  {}: {state}",
                    started.elapsed().as_secs_f64(),
                    positions[i]
                );
                last[i] = state;
            }
            if s["state"] == "failed" {
                bail!("{} failed while {what}", positions[i]);
            }
        }
        if mine.len() == positions.len() && mine.iter().all(&done) {
            return Ok(mine);
        }
        if started.elapsed() > within {
            bail!("not done {what} after {} s", within.as_secs());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Kills (SIGKILL) the QEMU whose NIC is on `tap`, as a Pi that hangs, waiting up
/// to 30 s for it to start (after the firmware stage has its files); its pid.
fn kill_qemu(tap: &str) -> Result<i32> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Some(pid) = find_qemu(tap)? {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            )?;
            return Ok(pid);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("no QEMU on {tap} within 30 s")
}

fn find_qemu(tap: &str) -> Result<Option<i32>> {
    let needle = format!("ifname={tap},");
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.starts_with("qemu-system-aarch64") && cmdline.contains(&needle) {
            return Ok(Some(pid));
        }
    }
    Ok(None)
}

/// The boots a virtual Pi recorded in its own root: (hostname, boot id) lines.
fn boots(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join("var/lib/pirack/boots"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Imports [`SECOND`] once per image cache: the HIL image's root and boot files
/// with its kernel gzip-compressed as [`SECOND_KERNEL`] (other bytes under
/// another name; QEMU unpacks it as the Pi's firmware does) and [`SECOND_MARK`]
/// in its command line, so each boot shows whose kernel and command line it ran.
fn second_image(lab: &Lab) -> Result<()> {
    if roots_image::show(&lab.store, SECOND).is_ok() {
        return Ok(());
    }
    let built = lab.boot.parent().context("the image's build directory")?;
    let boot = built.join("boot-2");
    if boot.exists() {
        std::fs::remove_dir_all(&boot)?;
    }
    std::fs::create_dir_all(&boot)?;
    for f in std::fs::read_dir(&lab.boot)? {
        let f = f?;
        if f.file_name() != "kernel8.img" && f.file_type()?.is_file() {
            std::fs::copy(f.path(), boot.join(f.file_name()))?;
        }
    }
    let gzipped = std::fs::File::create(boot.join(SECOND_KERNEL))?;
    let status = std::process::Command::new("gzip")
        .args(["-1", "-c"])
        .arg(lab.boot.join("kernel8.img"))
        .stdout(gzipped)
        .status()
        .context("gzip")?;
    if !status.success() {
        bail!("gzip of the kernel: {status}");
    }
    let import = roots_image::Import {
        name: "hil".into(),
        version: "2".into(),
        root: built.join("root.tar.gz"),
        boot,
        cmdline: format!("console=ttyAMA0,115200 {SECOND_MARK}"),
    };
    step(
        &format!("importing {SECOND} (its own kernel and command line)"),
        || {
            roots_image::import(&lab.store, &import, &|_, _| {})?;
            Ok(())
        },
    )
}

/// Checks the slot's last boot ran `image`: the kernel served (as the lifecycle
/// saw it) and the kernel start.elf loaded are `kernel`, and the command line the
/// kernel booted with has [`SECOND_MARK`] exactly when `image` is [`SECOND`].
fn booted_image(
    api: &Client,
    console: &Path,
    position: &str,
    image: &str,
    kernel: &str,
) -> Result<()> {
    let events = api.call(
        "GET",
        &format!("/v1/events?slot={position}&limit=1000"),
        None,
    )?;
    let served = events
        .as_array()
        // Newest first: the first is the latest boot's.
        .and_then(|e| e.iter().find(|e| e["kind"] == "kernel_served"))
        .and_then(|e| e["cause"].as_str())
        .unwrap_or_default()
        .to_string();
    if !served.contains(&format!("/{kernel} ")) {
        bail!("{position}: the kernel served last was not {kernel}: {served}");
    }
    let last = bed::last_boot(console).with_context(|| format!("reading {}", console.display()))?;
    let line = |start: &str| last.lines().find(|l| l.contains(start)).unwrap_or_default();
    let said = line("[pirack] booting image ");
    let loaded = line("[pirack] start.elf loads ");
    let ran = line("Kernel command line:");
    if !said.ends_with(&format!("booting image {image}"))
        || !loaded.contains(&format!("loads {kernel} "))
        || ran.is_empty()
        || ran.contains(SECOND_MARK) != (image == SECOND)
    {
        bail!(
            "{position} did not boot {image}'s kernel {kernel} and command line:\n{said}\n{loaded}\n{ran}"
        );
    }
    Ok(())
}

pub fn hil(args: &HilArgs) -> Result<ExitCode> {
    if !(1..=8).contains(&args.slots) {
        bail!("--slots {}: between 1 and 8", args.slots);
    }
    let lab = Lab::open(&Options {
        command: "hil",
        dir: &args.dir,
        source: &args.source,
        no_install: args.no_install,
        packages: &["qemu-system-arm", "cpio"],
        image: LabImage::Recipe {
            name: "hil",
            versions: &["1"],
        },
        slots: args.slots,
        virtual_pis: true,
        community_env: COMMUNITY_ENV,
        ssh: false,
        db: None,
    })?;
    second_image(&lab)?;
    let run = &lab.run;
    let bed::Shelf {
        guards: _guards,
        controller:
            Controller {
                proc: mut serve,
                api,
                url,
                admin,
                ..
            },
        plan,
        positions,
        ..
    } = bed::shelf(&lab, args.port)?;
    println!("rack view (admin): {url}/#token={admin}");
    println!("logs, consoles and state: {}", run.display());

    let checks = || -> Result<()> {
        lab.provision(&api, IMAGE)?;
        lab.power_on(&api)?;
        let within = Duration::from_secs(args.timeout);
        let up = wait_for(&api, &positions, within, "booting", |s| s["state"] == "up")?;
        println!("every virtual Pi is up");
        for p in &positions {
            // `up` is its web server answering; the line comes just after it.
            let started = Instant::now();
            loop {
                let console = api.call("GET", &format!("/v1/slots/{p}/console"), None)?;
                let text = console.as_str().unwrap_or_default();
                if text.contains("pirack: up:") {
                    break;
                }
                if started.elapsed() > Duration::from_secs(15) {
                    bail!("{p}'s console, as the API shows it, has no `pirack: up` line:\n{text}");
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        for p in &positions {
            println!("  {p}: {}", timings(&api, p)?);
        }

        // Each root is its own: every guest recorded its boot in its root only.
        let roots: Vec<PathBuf> = positions
            .iter()
            .map(|p| {
                let s = plan
                    .slots
                    .iter()
                    .find(|s| &s.position == p)
                    .expect("planned");
                PathBuf::from(&s.root)
            })
            .collect();
        for (s, root) in up.iter().zip(&roots) {
            let host = s["hostname"].as_str().unwrap_or_default();
            let lines = boots(root);
            if lines.len() != 1 || !lines[0].starts_with(&format!("{host} ")) {
                bail!(
                    "{}'s root records {lines:?}, not one boot of {host}",
                    root.display()
                );
            }
        }
        println!("each Pi wrote to its own root only");

        // A power cycle boots the first Pi again, and only it.
        let first = &positions[..1];
        let op = api.call(
            "POST",
            &format!("/v1/slots/{}/power", first[0]),
            Some(&json!({ "action": "cycle" })),
        )?;
        api.wait(&op)?;
        wait_for(
            &api,
            first,
            within,
            "booting again after a power cycle",
            |s| s["state"] == "up",
        )?;
        println!("  {}: {}", first[0], timings(&api, &first[0])?);
        let again = boots(&roots[0]);
        if again.len() != 2 || again[0] == again[1] {
            bail!(
                "after the power cycle {} records {again:?}, not two boots",
                first[0]
            );
        }
        if roots.len() > 1 && boots(&roots[1]).len() != 1 {
            bail!("the power cycle of {} rebooted {}", first[0], positions[1]);
        }
        println!("{} booted again after its power cycle", first[0]);

        // A reimage of a powered-off Pi, then power: it boots the new image's
        // kernel, command line and root; a rollback, the old image's again.
        if let (Some(p), Some(root)) = (positions.get(1), roots.get(1)) {
            let console = run.join("hil").join(p).join("console.log");
            let power = |action: &str| -> Result<()> {
                let body = json!({ "action": action });
                api.wait(&api.call("POST", &format!("/v1/slots/{p}/power"), Some(&body))?)?;
                Ok(())
            };
            let second = &positions[1..2];
            power("off")?;
            let body = json!({ "image": SECOND });
            api.wait(&api.call("POST", &format!("/v1/slots/{p}/reimage"), Some(&body))?)?;
            power("on")?;
            let s = wait_for(&api, second, within, "booting the new image", |s| {
                s["state"] == "up"
            })?;
            let lines = boots(root);
            if s[0]["image"] != SECOND || lines.len() != 1 {
                bail!(
                    "{p} after its reimage: image {}, boots {lines:?} (a fresh root has one)",
                    s[0]["image"]
                );
            }
            booted_image(&api, &console, p, SECOND, SECOND_KERNEL)?;
            println!("  {p}: {}", timings(&api, p)?);
            println!(
                "{p} booted its new image ({SECOND}: kernel {SECOND_KERNEL}, its command line) \
                 after a reimage and power-on"
            );

            power("off")?;
            api.wait(&api.call("POST", &format!("/v1/slots/{p}/rollback"), None)?)?;
            power("on")?;
            let s = wait_for(&api, second, within, "booting the old image again", |s| {
                s["state"] == "up"
            })?;
            let lines = boots(root);
            if s[0]["image"] != IMAGE || lines.len() != 2 {
                bail!(
                    "{p} after its rollback: image {}, boots {lines:?} (the old root's first and this)",
                    s[0]["image"]
                );
            }
            booted_image(&api, &console, p, IMAGE, "kernel8.img")?;
            println!("  {p}: {}", timings(&api, p)?);
            println!(
                "{p} booted {IMAGE} again after a rollback: its kernel, command line and root"
            );
        }

        // A Pi that hangs while booting (its QEMU dies once the kernel is served)
        // is power-cycled by the watchdog, and boots.
        let p = &first[0];
        let op = api.call(
            "POST",
            &format!("/v1/slots/{p}/power"),
            Some(&json!({ "action": "cycle" })),
        )?;
        api.wait(&op)?;
        wait_for(&api, first, within, "loading its kernel", |s| {
            s["state"] == "kernel_loaded"
        })?;
        let vlan = plan
            .slots
            .iter()
            .find(|s| &s.position == p)
            .expect("planned")
            .vlan;
        let pid = kill_qemu(&crate::qemu::tap(vlan))?;
        println!("{p}: QEMU (pid {pid}) killed after the kernel was served: a hung Pi");
        let s = wait_for(
            &api,
            first,
            within,
            "being recovered by the watchdog",
            |s| s["state"] == "up",
        )?;
        if s[0]["recoveries"] != 1 {
            bail!("{p} came up without a watchdog recovery: {}", s[0]);
        }
        println!("  {p}: {}", timings(&api, p)?);
        println!("{p} was power-cycled by the watchdog and booted again");
        Ok(())
    };
    match checks() {
        Ok(()) => {
            println!("HIL passed: {} virtual Pi 3s", positions.len());
            while args.keep && !STOP.load(Ordering::Relaxed) {
                serve.check()?;
                std::thread::sleep(Duration::from_millis(500));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("HIL FAILED: {e:#}");
            for p in &positions {
                let log = run.join("hil").join(p).join("console.log");
                let text = pirack_controller::power::tail(&log, 4000).unwrap_or_default();
                eprintln!("---- {p} console ({}) ----\n{text}", log.display());
            }
            eprintln!("controller log: {}", run.join("serve.log").display());
            Ok(ExitCode::FAILURE)
        }
    }
}
