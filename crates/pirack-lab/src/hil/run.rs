//! `pirack hil run`: a user's Pi 3 image booted on virtual Pis from a controller
//! on this machine, checked, and judged. The image is imported as `image import`
//! would (with the virtual Pi's initramfs added to its boot files, see
//! [`super::image`]), N slots are provisioned with it and powered on, and once
//! each is `up` every `--expect` must match its console. The verdict is a table,
//! JUnit XML on request, and the exit status: 0 only when every Pi came up and
//! every check passed.

use super::COMMUNITY_ENV;
use super::bed::{self, timings};
use super::image::{self, NAME, VERSION};
use super::report::{self, Check, Pi};
use crate::setup::{Lab, LabImage, Options, step};
use crate::signals::STOP;
use anyhow::{Context, Result, bail};
use pirack_controller::api::client::Client;
use regex::Regex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct RunArgs {
    /// The image's root filesystem: a directory or a tarball.
    #[arg(long)]
    pub image: PathBuf,
    /// The image's Pi 3 boot files: bootcode.bin, start.elf, fixup.dat, the
    /// kernel and the device trees.
    #[arg(long)]
    pub boot: PathBuf,
    /// How many virtual Pis boot it (the first slots of hardware/example-8.yaml).
    #[arg(long, default_value_t = 1)]
    pub slots: usize,
    /// A regular expression each Pi's console must show after its power-on
    /// (repeat for more).
    #[arg(long = "expect", value_name = "REGEX")]
    pub expect: Vec<String>,
    /// Seconds from power-on for every Pi to come up and pass its checks.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Write the verdict as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Copy each Pi's console log (and the controller's log) into this directory.
    #[arg(long, value_name = "DIR")]
    pub keep_logs: Option<PathBuf>,
    /// Where the staged image, the controller's state, the roots and the
    /// consoles go (cleared at the start of each run).
    #[arg(long, default_value = "target/hil-run")]
    pub dir: PathBuf,
    /// Loopback port for the rack view and API (another is taken if it is busy).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Fail instead of installing missing packages with apt-get.
    #[arg(long)]
    pub no_install: bool,
    /// The pirack checkout: its initramfs builder, example inventories, switch
    /// profiles and switch emulator.
    #[arg(long, default_value = ".")]
    pub source: PathBuf,
}

pub fn run(args: &RunArgs) -> Result<ExitCode> {
    if !(1..=8).contains(&args.slots) {
        bail!("--slots {}: between 1 and 8", args.slots);
    }
    let expects = args
        .expect
        .iter()
        .map(|e| Regex::new(e).with_context(|| format!("--expect {e:?}")))
        .collect::<Result<Vec<_>>>()?;
    let source = std::fs::canonicalize(&args.source)
        .with_context(|| format!("the pirack checkout {}", args.source.display()))?;
    std::fs::create_dir_all(&args.dir)?;
    let work = std::fs::canonicalize(&args.dir)?.join("staged");
    let ready = || {
        step("preparing the image for virtual Pis", || {
            image::prepare(&source, &args.image, &args.boot, &work)
        })
    };
    let lab = Lab::open(&Options {
        command: "hil",
        dir: &args.dir,
        source: &source,
        no_install: args.no_install,
        packages: &["qemu-system-arm", "cpio"],
        image: LabImage::Given(&ready),
        slots: args.slots,
        virtual_pis: true,
        community_env: COMMUNITY_ENV,
    })?;
    // Held to the end: dropping it stops the controller (and its QEMUs).
    let shelf = bed::shelf(&lab, args.port)?;
    let (api, positions, consoles) = (&shelf.controller.api, &shelf.positions, &shelf.consoles);
    let started = Instant::now();
    lab.provision(api, &format!("{NAME}-{VERSION}"))?;
    lab.power_on(api)?;
    let deadline = started + Duration::from_secs(args.timeout);
    let ups = boot(api, positions, started, deadline)?;

    let mut pis = Vec::new();
    for p in positions {
        let log = consoles.join(p).join("console.log");
        let up = ups.get(p).and_then(|(_, up)| *up);
        let mut checks = Vec::new();
        if up.is_some() {
            for re in &expects {
                checks.push(expect(&log, re, deadline));
            }
        }
        pis.push(Pi {
            position: p.clone(),
            up,
            state: ups.get(p).map_or("?".into(), |(s, _)| s.clone()),
            stages: timings(api, p).unwrap_or_default(),
            console_tail: report::tail(&bed::last_boot(&log).unwrap_or_default(), 30),
            checks,
        });
    }
    print!("{}", report::table(&pis));
    if let Some(file) = &args.junit {
        std::fs::write(file, report::junit(&pis, started.elapsed()))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    if let Some(dir) = &args.keep_logs {
        keep_logs(dir, consoles, positions, &lab.run.join("serve.log"))?;
    }
    let passed = pis.iter().all(Pi::passed);
    println!(
        "{}: {} of {} virtual Pis passed",
        if passed {
            "HIL run passed"
        } else {
            "HIL run FAILED"
        },
        pis.iter().filter(|p| p.passed()).count(),
        pis.len()
    );
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Polls the slots until each is up or failed, or `deadline`; each one's last
/// state and its time to `up`.
fn boot(
    api: &Client,
    positions: &[String],
    started: Instant,
    deadline: Instant,
) -> Result<BTreeMap<String, (String, Option<Duration>)>> {
    let mut seen: BTreeMap<String, (String, Option<Duration>)> = BTreeMap::new();
    loop {
        if STOP.load(Ordering::Relaxed) {
            bail!("stopped");
        }
        let slots = api.call("GET", "/v1/slots", None)?;
        for s in slots.as_array().into_iter().flatten() {
            let Some(p) = positions.iter().find(|p| s["position"] == p.as_str()) else {
                continue;
            };
            let state = s["state"].as_str().unwrap_or("?").to_string();
            let entry = seen.entry(p.clone()).or_insert((String::new(), None));
            if entry.0 != state {
                println!("{:>6.1} s  {p}: {state}", started.elapsed().as_secs_f64());
                entry.0 = state.clone();
            }
            if state == "up" && entry.1.is_none() {
                entry.1 = Some(started.elapsed());
            }
        }
        let settled = positions.iter().all(|p| {
            seen.get(p)
                .is_some_and(|(s, up)| up.is_some() || s == "failed")
        });
        if settled || Instant::now() > deadline {
            return Ok(seen);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `re` on the console since the power-on, waited for until `deadline` (at
/// least a few seconds: what an image prints just after coming up).
fn expect(log: &Path, re: &Regex, deadline: Instant) -> Check {
    let started = Instant::now();
    let until = deadline.max(started + Duration::from_secs(5));
    loop {
        let text = bed::last_boot(log).unwrap_or_default();
        if let Some(m) = re.find(&text) {
            let line_start = text[..m.start()].rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[m.end()..]
                .find('\n')
                .map_or(text.len(), |i| m.end() + i);
            return Check {
                name: format!("expect /{re}/"),
                passed: true,
                output: text[line_start..line_end].trim_end().to_string(),
                took: started.elapsed(),
            };
        }
        if Instant::now() > until || STOP.load(Ordering::Relaxed) {
            return Check {
                name: format!("expect /{re}/"),
                passed: false,
                output: format!("not on the console; its end:\n{}", report::tail(&text, 30)),
                took: started.elapsed(),
            };
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn keep_logs(dir: &Path, consoles: &Path, positions: &[String], serve: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for p in positions {
        let from = consoles.join(p).join("console.log");
        if from.exists() {
            std::fs::copy(&from, dir.join(format!("{p}.console.log")))
                .with_context(|| format!("copying {}", from.display()))?;
        }
    }
    std::fs::copy(serve, dir.join("controller.log"))
        .with_context(|| format!("copying {}", serve.display()))?;
    Ok(())
}
