//! `pirack demo`: a shelf coming to life on this machine in one command. It fetches
//! and builds the CI image, installs the real peers it lacks, and runs, inside a
//! network namespace of its own: the emulated PoE switch (snmpd), NFS-Ganesha, the
//! controller (`pirack serve`) and simulated Pis (`pirack sim --follow`) that live
//! on their ports' power. Every slot is provisioned and powered on through the API,
//! one Pi hangs on its first boot for the watchdog to recover, and the terminal
//! shows each Pi's progress while the rack view shows the same shelf.

use crate::setup::{Controller, Lab, LabImage, Options, step};
use crate::signals::STOP;
use crate::testbed::proc::Proc;
use crate::testbed::switch::{PoeSwitch, Spec};
use crate::watch;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The image every slot gets.
const IMAGE: &str = "ci-tiny-1";
const COMMUNITY_ENV: &str = "PIRACK_DEMO_COMMUNITY";

#[derive(clap::Args)]
pub struct DemoArgs {
    /// How many slots boot: up to 8 from hardware/example-8.yaml, up to 96 from
    /// hardware/shelf-96.yaml.
    #[arg(long, default_value_t = 8)]
    pub slots: usize,
    /// Exit 0 once every Pi is up; non-zero when one fails or --timeout passes.
    #[arg(long)]
    pub once: bool,
    /// Seconds --once waits for every Pi to be up.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Where the demo keeps the image cache, the controller's state and the logs.
    #[arg(long, default_value = "target/demo")]
    pub dir: PathBuf,
    /// Loopback port for the rack view and API (another is taken if it is busy).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The Pi that hangs after bootcode.bin on its first boot, for the watchdog
    /// to recover [default: the third slot].
    #[arg(long)]
    pub stall: Option<String>,
    /// Every Pi boots cleanly.
    #[arg(long, conflicts_with = "stall")]
    pub no_stall: bool,
    /// A second controller stands by on the same store; this many seconds
    /// after power-on the first is killed (SIGKILL) and the standby takes over
    /// while the Pis boot.
    #[arg(long, value_name = "SECONDS")]
    pub failover_after: Option<f64>,
    /// The controller's store: a fresh, empty database (`postgres://...`)
    /// [default: SQLite in the demo's directory].
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// Fail instead of installing missing peers with apt-get.
    #[arg(long)]
    pub no_install: bool,
    /// The pirack checkout: image recipes, example inventories, switch
    /// profiles and the switch emulator.
    #[arg(long, default_value = ".")]
    pub source: PathBuf,
}

pub fn demo(args: &DemoArgs) -> Result<ExitCode> {
    // Dropped in reverse: controller, NFS, the Pis (which remove their own
    // namespaces), switch, and last the lab's namespace.
    let lab = Lab::open(&Options {
        command: "demo",
        dir: &args.dir,
        source: &args.source,
        no_install: args.no_install,
        packages: &[],
        image: LabImage::Recipe {
            name: "ci-tiny",
            versions: &["1"],
        },
        slots: args.slots,
        virtual_pis: false,
        community_env: COMMUNITY_ENV,
        ssh: false,
        db: args.db.as_deref(),
    })?;
    let (run, ns) = (&lab.run, lab.ns.name());
    let positions: Vec<String> = lab.site.slots.iter().map(|(p, _)| p.clone()).collect();
    let stall = match (&args.stall, args.no_stall) {
        (_, true) => None,
        (Some(p), _) if positions.contains(p) => Some(p.clone()),
        (Some(p), _) => bail!("--stall {p}: not one of the demo's slots"),
        (None, _) => positions.get(2).cloned(),
    };
    let emulator = lab.source.join("switch-profiles/emulator/poe-switch");
    let _switch = step("starting the emulated PoE switch (snmpd)", || {
        Ok(PoeSwitch::start(&Spec {
            netns: Some(ns),
            dir: &run.join("switch"),
            emulator: &emulator,
            port: lab.site.switch_port,
            ports: lab.site.switch_ports,
            poe_ports: None,
            vendor: None,
            power_off: true,
            community: &lab.community,
            read_only: None,
            v3: None,
        })?)
    })?;

    let mut sim = lab.pirack(false, &["sim", "--controller-netns", ns, "--follow"])?;
    sim.arg("--images").arg(&lab.store).args(["--image", IMAGE]);
    if let Some(p) = &stall {
        sim.args(["--stall", &format!("{p}:1")]);
    }
    let mut sim = Proc::spawn("pirack sim", &mut sim, &run.join("sim.log"), true)?;
    let (boots_tx, boots) = mpsc::channel::<Value>();
    let out = sim.child.stdout.take().context("the simulator's output")?;
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line)
                && boots_tx.send(v).is_err()
            {
                break;
            }
        }
    });
    step(
        &format!("making {} simulated Pis' links", positions.len()),
        || {
            let started = Instant::now();
            loop {
                sim.check()?;
                let links = Command::new("ip")
                    .args(["-n", ns, "-o", "link", "show", "type", "veth"])
                    .output()?;
                if links.stdout.iter().filter(|b| **b == b'\n').count() >= positions.len() {
                    return Ok(());
                }
                if started.elapsed() > Duration::from_secs(60) {
                    bail!(
                        "the simulator's links never came; see {}",
                        run.join("sim.log").display()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        },
    )?;
    let _nfs = lab.nfs()?;
    let Controller {
        proc: mut serve,
        mut api,
        url,
        admin,
        owner,
        customer,
    } = lab.controller(&[], args.port)?;
    let mut standby = match args.failover_after {
        Some(_) => Some(lab.standby(&[], args.port.wrapping_add(1), &admin)?),
        None => None,
    };
    println!("rack view (admin):  {url}/#token={admin}");
    println!("rack view ({owner}): {url}/#token={customer}");
    println!("logs and state:     {}", run.display());
    // The CLI reads the API's address and token from the environment.
    let first = positions.first().map_or("A-01", String::as_str);
    println!("the CLI, in another shell:");
    println!("  export PIRACK_URL={url} PIRACK_TOKEN={admin}");
    println!("  target/release/pirack slots");
    println!("  target/release/pirack events --slot {first} --follow");

    lab.provision(&api, IMAGE)?;
    let mut watch = watch::Watch::new(&positions);
    if let Some(p) = &stall {
        watch.say(&format!(
            "{p} will hang after bootcode.bin on its first boot"
        ));
    }
    let ops = positions
        .iter()
        .map(|p| {
            watch.powered(p, pirack_controller::store::now_ms());
            let body = json!({ "action": "on" });
            api.call("POST", &format!("/v1/slots/{p}/power"), Some(&body))
        })
        .collect::<Result<Vec<_>, _>>()?;
    ops.iter().try_for_each(|op| api.wait(op).map(drop))?;
    watch.say(&format!("powered on {} ports; booting", positions.len()));

    let started = Instant::now();
    let mut all_up = false;
    let code = loop {
        if STOP.load(Ordering::Relaxed) {
            watch.finish();
            eprintln!("stopping");
            break if args.once {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
        if let Some(after) = args.failover_after
            && started.elapsed().as_secs_f64() >= after
            && let Some((next, next_api, next_url)) = standby.take()
        {
            let killed = Instant::now();
            serve.kill();
            watch.say(&format!(
                "killed the controller (SIGKILL) {after:.1} s after power-on"
            ));
            while next_api.call("GET", "/healthz", None).is_err() {
                if killed.elapsed() > Duration::from_secs(30) {
                    bail!(
                        "the standby did not take over; see {}",
                        run.join("standby.log").display()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            watch.say(&format!(
                "the standby took over in {:.1} s; rack view now {next_url}/#token={admin}",
                killed.elapsed().as_secs_f64()
            ));
            (serve, api) = (next, next_api);
        }
        serve.check()?;
        sim.check()?;
        while let Ok(line) = boots.try_recv() {
            watch.boot(&line);
        }
        let tally = watch.update(&api.call("GET", "/v1/slots", None)?);
        if tally.failed > 0 && args.once {
            watch.finish();
            eprintln!("a Pi failed: {}\nsee {}", watch.states(), run.display());
            break ExitCode::FAILURE;
        }
        if tally.up < positions.len() {
            all_up = false;
        } else if !all_up {
            all_up = true;
            for p in &positions {
                let events = api.call("GET", &format!("/v1/events?slot={p}&limit=100"), None)?;
                watch.stages_seen(p, &events);
            }
            let done = format!(
                "every Pi is up, {:.1} s after power-on\n{}",
                started.elapsed().as_secs_f64(),
                watch.summary()
            );
            if args.once {
                watch.finish();
                println!("{done}");
                break ExitCode::SUCCESS;
            }
            watch.say(&done);
            watch.say(&format!(
                "rack view: {url}/#token={admin}  (Ctrl-C stops the demo)"
            ));
        }
        if args.once && started.elapsed() > Duration::from_secs(args.timeout) {
            watch.finish();
            eprintln!(
                "not every Pi is up after {} s: {}\nsee {}",
                args.timeout,
                watch.states(),
                run.display()
            );
            break ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    Ok(code)
}
