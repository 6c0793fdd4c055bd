//! `pirack demo`: a shelf coming to life on this machine in one command. It fetches
//! and builds the CI image, installs the real peers it lacks, and runs, inside a
//! network namespace of its own: the emulated PoE switch (snmpd), NFS-Ganesha, the
//! controller (`pirack serve`) and simulated Pis (`pirack sim --follow`) that live
//! on their ports' power. Every slot is provisioned and powered on through the API,
//! one Pi hangs on its first boot for the watchdog to recover, and the terminal
//! shows each Pi's progress while the rack view shows the same shelf.

use super::peers::{self, Proc, in_netns};
use super::{
    API, Netns, catch_stop_signals, clear_stale_namespaces, forward, image, site, step, tokens,
    watch,
};
use crate::cli::netboot::STOP;
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
    /// Fail instead of installing missing peers with apt-get.
    #[arg(long)]
    pub no_install: bool,
    /// The pirack source tree: image recipes, example inventories, switch
    /// profiles and the switch emulator.
    #[arg(long, default_value = env!("CARGO_MANIFEST_DIR"))]
    pub source: PathBuf,
}

pub fn demo(args: &DemoArgs) -> Result<ExitCode> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "pirack demo needs root: each simulated Pi gets a network namespace and a veth \
             link, and the controller serves DHCP and TFTP on them. Run it as root \
             (sudo -E cargo run --release -- demo), in a VM or container if you prefer."
        );
    }
    catch_stop_signals()?;
    std::fs::create_dir_all(&args.dir)?;
    let dir = std::fs::canonicalize(&args.dir)?;
    let source = std::fs::canonicalize(&args.source)
        .with_context(|| format!("the pirack source tree {}", args.source.display()))?;

    let missing = peers::missing_packages(&[])?;
    if !missing.is_empty() {
        if args.no_install {
            bail!("missing Debian packages: {}", missing.join(" "));
        }
        let what = format!("installing {} with apt-get", missing.join(" "));
        step(&what, || peers::install(&missing, &dir.join("apt.log")))?;
    }
    let store = dir.join("images");
    let boot = image(&source, &dir, &store, "ci-tiny", &["1"])?;

    // A fresh shelf every run: the controller's state, roots and logs.
    let run = dir.join("run");
    if run.exists() {
        std::fs::remove_dir_all(&run).with_context(|| format!("clearing {}", run.display()))?;
    }
    std::fs::create_dir_all(run.join("nfs"))?;
    let example = site::example_for(args.slots)?;
    let text = std::fs::read_to_string(source.join(example))
        .with_context(|| format!("reading {example}"))?;
    let (exports, pid_file) = (run.join("nfs/exports.conf"), run.join("nfs/ganesha.pid"));
    let layout = site::Layout {
        export_root: &run.join("export"),
        boot_files: &boot,
        exports_file: &exports,
        ganesha_pid_file: &pid_file,
        community_env: COMMUNITY_ENV,
        virtual_pis: false,
    };
    let plan = site::derive(example, &text, args.slots, &layout)?;
    let inventory = run.join("site.yaml");
    std::fs::write(&inventory, &plan.yaml)?;
    let community = pirack::store::random_hex(12)?;
    let profiles = source.join("switch-profiles");
    let exe = std::env::current_exe()?;
    let positions: Vec<String> = plan.slots.iter().map(|(p, _)| p.clone()).collect();
    let stall = match (&args.stall, args.no_stall) {
        (_, true) => None,
        (Some(p), _) if positions.contains(p) => Some(p.clone()),
        (Some(p), _) => bail!("--stall {p}: not one of the demo's slots"),
        (None, _) => positions.get(2).cloned(),
    };

    clear_stale_namespaces();
    // Everything runs in one namespace; dropped in reverse: controller, NFS,
    // the Pis (which remove their own namespaces), switch, namespace.
    let ns = Netns(format!("pirack-demo-{}", std::process::id()));
    let made = Command::new("ip").args(["netns", "add", &ns.0]).status()?;
    if !made.success() {
        bail!("ip netns add {}: {made}", ns.0);
    }
    Command::new("ip")
        .args(["-n", &ns.0, "link", "set", "lo", "up"])
        .status()?;
    let emulator = source.join("switch-profiles/emulator/poe-switch");
    let _switch = step("starting the emulated PoE switch (snmpd)", || {
        peers::switch(
            &ns.0,
            &emulator,
            &run.join("switch"),
            plan.switch_port,
            plan.switch_ports,
            &community,
        )
    })?;

    let mut sim = Command::new(&exe);
    sim.arg("sim")
        .arg("--inventory")
        .arg(&inventory)
        .arg("--profiles")
        .arg(&profiles)
        .args(["--controller-netns", &ns.0, "--follow"])
        .env(COMMUNITY_ENV, &community);
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
                    .args(["-n", &ns.0, "-o", "link", "show", "type", "veth"])
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
    let _nfs = step("starting NFS-Ganesha (and rpcbind)", || {
        peers::nfs(&ns.0, &run.join("nfs"), &exports, &pid_file)
    })?;

    let db = format!("sqlite://{}", run.join("state.db").display());
    let owner = plan.slots[0].1.clone();
    let (admin, customer) = tokens(&db, &owner)?;
    let mut serve = in_netns(&ns.0, &exe);
    serve
        .arg("serve")
        .arg("--inventory")
        .arg(&inventory)
        .arg("--profiles")
        .arg(&profiles)
        .args(["--db", &db, "--api", API])
        .arg("--images")
        .arg(&store)
        .env(COMMUNITY_ENV, &community);
    let mut serve = Proc::spawn("pirack serve", &mut serve, &run.join("serve.log"), false)?;
    let local = forward::start(args.port, &ns.0, API.parse()?)?;
    let api = crate::cli::client::Client::new(local.to_string(), admin.clone());
    step("starting the controller", || {
        let started = Instant::now();
        while api.call("GET", "/healthz", None).is_err() {
            serve.check()?;
            if started.elapsed() > Duration::from_secs(30) {
                bail!(
                    "the controller did not answer; see {}",
                    run.join("serve.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    })?;
    println!("rack view (admin):  http://{local}/#token={admin}");
    println!("rack view ({owner}): http://{local}/#token={customer}");
    println!("logs and state:     {}", run.display());

    step(
        &format!("provisioning {} slots with {IMAGE}", positions.len()),
        || {
            let ops = plan
                .slots
                .iter()
                .map(|(slot, owner)| {
                    let body = json!({ "image": IMAGE, "owner": owner, "slot": slot });
                    api.call("POST", "/v1/slots", Some(&body))
                })
                .collect::<Result<Vec<_>>>()?;
            ops.iter().try_for_each(|op| api.wait(op).map(drop))
        },
    )?;
    let mut watch = watch::Watch::new(&positions);
    if let Some(p) = &stall {
        watch.say(&format!(
            "{p} will hang after bootcode.bin on its first boot"
        ));
    }
    let ops = positions
        .iter()
        .map(|p| {
            watch.powered(p, pirack::store::now_ms());
            let body = json!({ "action": "on" });
            api.call("POST", &format!("/v1/slots/{p}/power"), Some(&body))
        })
        .collect::<Result<Vec<_>>>()?;
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
                "rack view: http://{local}/#token={admin}  (Ctrl-C stops the demo)"
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
