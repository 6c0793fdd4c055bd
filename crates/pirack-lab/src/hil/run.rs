//! `pirack hil run` and `pirack image qualify`: a Pi 3 image booted on virtual
//! Pis from a controller on this machine, checked, and judged. The image (a
//! user's files, or one already in an image store) is imported as `image
//! import` would (with the virtual Pi's initramfs added to its boot files, see
//! [`super::image`]), N slots are provisioned with it and powered on, and once
//! each is `up` every `--exec` runs on it over SSH and every `--expect` must
//! match its console; then, if asked, the same after a power cycle and after a
//! reimage. The verdict is a table, JUnit XML on request, and the exit status:
//! 0 only when every Pi came up each time and every check passed.

use super::COMMUNITY_ENV;
use super::bed::{self, Shelf, timings};
use super::exec;
use super::image::{self, NAME, VERSION};
use super::report::{self, Check, Pi};
use crate::setup::{Lab, LabImage, Options, need_root, step};
use crate::signals::STOP;
use anyhow::{Context, Result, bail};
use pirack_controller::api::client::Client;
use pirack_controller::roots::image as roots_image;
use pirack_controller::roots::qualification::{self, Qualification};
use regex::Regex;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct RunArgs {
    /// The image's root filesystem: a directory or a tarball.
    #[arg(long, required_unless_present = "image_id", requires = "boot")]
    pub image: Option<PathBuf>,
    /// The image's Pi 3 boot files: bootcode.bin, start.elf, fixup.dat, the
    /// kernel and the device trees.
    #[arg(long, requires = "image")]
    pub boot: Option<PathBuf>,
    /// An image already in the image store (`--images`), instead of --image and
    /// --boot.
    #[arg(long, value_name = "ID", conflicts_with = "image")]
    pub image_id: Option<String>,
    /// The image store --image-id and --reimage-to name images in.
    #[arg(
        long,
        env = "PIRACK_IMAGE_STORE",
        default_value = "/var/lib/pirack/images"
    )]
    pub images: PathBuf,
    #[command(flatten)]
    pub checks: Checks,
}

/// What a run boots the image on and checks: shared by `hil run` and `image
/// qualify`.
#[derive(clap::Args)]
pub struct Checks {
    /// How many virtual Pis boot it (the first slots of hardware/example-8.yaml).
    #[arg(long, default_value_t = 1)]
    pub slots: usize,
    /// A shell command to run on each Pi once it is up, as root over SSH with a
    /// key the run places (repeat for more); it passes when it exits 0. The
    /// image needs an SSH server on port 22 that reads /root/.ssh/authorized_keys.
    #[arg(long = "exec", value_name = "CMD")]
    pub exec: Vec<String>,
    /// A regular expression each Pi's console must show after its power-on
    /// (repeat for more).
    #[arg(long = "expect", value_name = "REGEX")]
    pub expect: Vec<String>,
    /// Then power-cycle every Pi: it must come up again and pass the checks
    /// again.
    #[arg(long)]
    pub power_cycle: bool,
    /// Then reimage every Pi (powered off) to this image from the image store:
    /// it must come up from its fresh root and pass the checks again.
    #[arg(long, value_name = "ID")]
    pub reimage_to: Option<String>,
    /// Seconds from each power-on for every Pi to come up and pass its checks.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Write the verdict as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Copy each Pi's console log, each command's output and the controller's
    /// log into this directory.
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

/// An image to boot: its root and boot files, and its id in the run's store.
struct Image {
    root: PathBuf,
    boot: PathBuf,
    name: String,
    version: String,
}

impl Image {
    fn stored(store: &Path, id: &str) -> Result<Image> {
        let m = roots_image::show(store, id)
            .with_context(|| format!("image store {}", store.display()))?;
        Ok(Image {
            root: store.join(id).join("root"),
            boot: store.join(id).join("boot"),
            name: m.name,
            version: m.version,
        })
    }

    fn id(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }

    /// Staged in `work` for a virtual Pi (see [`image::prepare`]).
    fn prepare(&self, source: &Path, work: &Path) -> Result<roots_image::Import> {
        let what = format!("preparing {} for virtual Pis", self.id());
        step(&what, || {
            image::prepare(
                source,
                (&self.root, &self.boot),
                work,
                (&self.name, &self.version),
            )
        })
    }
}

pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let image = match (&args.image, &args.boot, &args.image_id) {
        (Some(root), Some(boot), None) => Image {
            root: root.clone(),
            boot: boot.clone(),
            name: NAME.into(),
            version: VERSION.into(),
        },
        (None, None, Some(id)) => Image::stored(&args.images, id)?,
        _ => bail!("give --image and --boot, or --image-id"),
    };
    Ok(judge(&image, &args.images, &args.checks)?.exit())
}

/// `pirack image qualify`: image `id` of `store` judged as `hil run` judges,
/// and the verdict recorded on the image (unless the run was stopped).
pub fn qualify(store: &Path, id: &str, checks: &Checks) -> Result<ExitCode> {
    let root = roots_image::show(store, id)?.checksums.root;
    let verdict = judge(&Image::stored(store, id)?, store, checks)?;
    let q = Qualification {
        passed: verdict.passed(),
        at: pirack_controller::store::now_ms(),
        summary: verdict.summary(),
        checks: verdict.lines(),
        root,
    };
    qualification::record(store, id, &q)?;
    println!(
        "{id}: recorded as {} in {}",
        if q.passed { "qualified" } else { "failing" },
        store.display()
    );
    Ok(verdict.exit())
}

/// A finished run's Pis.
struct Verdict(Vec<Pi>);

impl Verdict {
    fn passed(&self) -> bool {
        self.0.iter().all(Pi::passed)
    }

    fn summary(&self) -> String {
        let passed = self.0.iter().filter(|p| p.passed()).count();
        format!("{passed} of {} virtual Pis passed", self.0.len())
    }

    /// Each boot and check, a line each (`pass A-01 exec `uname -m``).
    fn lines(&self) -> Vec<String> {
        let verdict = |ok: bool| if ok { "pass" } else { "FAIL" };
        self.0
            .iter()
            .flat_map(|p| {
                std::iter::once(format!(
                    "{} {} boots to up",
                    verdict(p.up.is_some()),
                    p.position
                ))
                .chain(
                    p.checks
                        .iter()
                        .map(|c| format!("{} {} {}", verdict(c.passed), p.position, c.name)),
                )
            })
            .collect()
    }

    fn exit(&self) -> ExitCode {
        match self.passed() {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        }
    }
}

/// Boots `image` on virtual Pis, with `store` holding a --reimage-to image;
/// prints the verdict and writes what was asked for.
fn judge(image: &Image, store: &Path, args: &Checks) -> Result<Verdict> {
    need_root("hil")?;
    if !(1..=8).contains(&args.slots) {
        bail!("--slots {}: between 1 and 8", args.slots);
    }
    let expects = args
        .expect
        .iter()
        .map(|e| Regex::new(e).with_context(|| format!("--expect {e:?}")))
        .collect::<Result<Vec<_>>>()?;
    let reimage = args
        .reimage_to
        .as_deref()
        .map(|id| Image::stored(store, id))
        .transpose()?;
    let source = std::fs::canonicalize(&args.source)
        .with_context(|| format!("the pirack checkout {}", args.source.display()))?;
    std::fs::create_dir_all(&args.dir)?;
    let work = std::fs::canonicalize(&args.dir)?;
    let ready = || image.prepare(&source, &work.join("staged"));
    let lab = Lab::open(&Options {
        command: "hil",
        dir: &args.dir,
        source: &source,
        no_install: args.no_install,
        packages: match args.exec.is_empty() {
            true => &["qemu-system-arm", "cpio"],
            false => &["qemu-system-arm", "cpio", "openssh-client"],
        },
        image: LabImage::Given(&ready),
        slots: args.slots,
        virtual_pis: true,
        community_env: COMMUNITY_ENV,
        ssh: !args.exec.is_empty(),
        db: None,
    })?;
    if let Some(next) = reimage.as_ref().filter(|r| r.id() != image.id()) {
        let import = next.prepare(&source, &work.join("staged-reimage"))?;
        step(&format!("importing {}", next.id()), || {
            Ok(roots_image::import(&lab.store, &import, &|_, _| {})?)
        })?;
    }
    // Held to the end: dropping it stops the controller (and its QEMUs).
    let shelf = bed::shelf(&lab, args.port)?;
    let run = Run {
        lab: &lab,
        shelf: &shelf,
        api: &shelf.controller.api,
        args,
        expects: &expects,
    };
    let started = Instant::now();
    lab.provision(run.api, &image.id())?;
    lab.power_on(run.api)?;
    let mut pis = run.phase(None)?;
    if args.power_cycle && !skipped(&mut pis, "after a power cycle") {
        run.each("power", &json!({ "action": "cycle" }))?;
        run.then("after a power cycle", &mut pis)?;
    }
    if let Some(next) = &reimage {
        let label = format!("after a reimage to {}", next.id());
        if !skipped(&mut pis, &label) {
            run.each("power", &json!({ "action": "off" }))?;
            run.each("reimage", &json!({ "image": next.id() }))?;
            run.each("power", &json!({ "action": "on" }))?;
            run.then(&label, &mut pis)?;
        }
    }
    if STOP.load(Ordering::Relaxed) {
        bail!("stopped");
    }

    print!("{}", report::table(&pis));
    if let Some(file) = &args.junit {
        std::fs::write(file, report::junit(&pis, started.elapsed()))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    if let Some(dir) = &args.keep_logs {
        let serve = lab.run.join("serve.log");
        keep_logs(dir, &shelf.consoles, &shelf.positions, &serve)?;
    }
    let verdict = Verdict(pis);
    println!(
        "{}: {}",
        if verdict.passed() {
            "HIL run passed"
        } else {
            "HIL run FAILED"
        },
        verdict.summary()
    );
    Ok(verdict)
}

/// A run under way on a lab's shelf.
struct Run<'a> {
    lab: &'a Lab,
    shelf: &'a Shelf,
    api: &'a Client,
    args: &'a Checks,
    expects: &'a [Regex],
}

impl Run<'_> {
    /// `POST /v1/slots/<slot>/<action>` with `body` for every slot, waited for.
    fn each(&self, action: &str, body: &serde_json::Value) -> Result<()> {
        let ops = self
            .shelf
            .positions
            .iter()
            .map(|p| {
                self.api
                    .call("POST", &format!("/v1/slots/{p}/{action}"), Some(body))
            })
            .collect::<Result<Vec<_>, _>>()?;
        ops.iter().try_for_each(|op| self.api.wait(op).map(drop))?;
        Ok(())
    }

    /// The Pis just powered on, each waited for until up (or failed, or the
    /// timeout), then checked: `label` names a later boot in the output.
    fn phase(&self, label: Option<&str>) -> Result<Vec<Pi>> {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(self.args.timeout);
        let ups = boot(self.api, &self.shelf.positions, started, deadline, label)?;
        let mut pis = Vec::new();
        for p in &self.shelf.positions {
            let dir = self.shelf.consoles.join(p);
            let log = dir.join("console.log");
            let up = ups.get(p).and_then(|(_, up)| *up);
            let mut checks = Vec::new();
            if up.is_some() {
                let slot = self.shelf.plan.slots.iter().find(|s| &s.position == p);
                if let (Some(key), Some(slot)) = (self.lab.ssh_identity.as_deref(), slot) {
                    for cmd in &self.args.exec {
                        let log = dir.join(format!("exec-{}.log", exec_logs(&dir) + 1));
                        let ssh = exec::ssh(self.lab.ns.name(), key, slot.ipv6);
                        checks.push(exec::exec(ssh, cmd, &log, deadline));
                    }
                }
                for re in self.expects {
                    checks.push(expect(&log, re, deadline));
                }
            }
            pis.push(Pi {
                position: p.clone(),
                up,
                state: ups.get(p).map_or("?".into(), |(s, _)| s.clone()),
                stages: timings(self.api, p).unwrap_or_default(),
                console_tail: report::tail(&bed::last_boot(&log).unwrap_or_default(), 30),
                checks,
            });
        }
        Ok(pis)
    }

    /// A later boot (`label`), its coming up and its checks added to each Pi's
    /// checks under `label`.
    fn then(&self, label: &str, pis: &mut [Pi]) -> Result<()> {
        for (pi, again) in pis.iter_mut().zip(self.phase(Some(label))?) {
            pi.checks.push(Check {
                name: format!("{label}: boots to up"),
                passed: again.up.is_some(),
                output: match again.up {
                    Some(_) => again.stages,
                    None => format!(
                        "did not reach up (left {}); its console's end:\n{}",
                        again.state, again.console_tail
                    ),
                },
                took: again.up.unwrap_or_default(),
            });
            pi.checks.extend(again.checks.into_iter().map(|c| Check {
                name: format!("{label}: {}", c.name),
                ..c
            }));
        }
        Ok(())
    }
}

/// Whether the boot `label` is skipped because a Pi did not come up at its
/// last boot (the run has failed; a slot in trouble may refuse the power
/// operations): if so each Pi gets it as a failed check.
fn skipped(pis: &mut [Pi], label: &str) -> bool {
    let down: Vec<String> = pis
        .iter()
        .filter(|p| !p.up_at_last_boot())
        .map(|p| p.position.clone())
        .collect();
    if down.is_empty() {
        return false;
    }
    for p in pis.iter_mut() {
        p.checks.push(Check {
            name: format!("{label}: boots to up"),
            passed: false,
            output: format!("not tried: {} did not come up before", down.join(", ")),
            took: Duration::ZERO,
        });
    }
    true
}

/// How many commands' outputs a Pi's directory holds (`exec-N.log`).
fn exec_logs(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("exec-"))
            .count()
    })
}

/// Polls the slots until each is up or failed, or `deadline`; each one's last
/// state and its time to `up`.
fn boot(
    api: &Client,
    positions: &[String],
    started: Instant,
    deadline: Instant,
    label: Option<&str>,
) -> Result<BTreeMap<String, (String, Option<Duration>)>> {
    if let Some(label) = label {
        println!("{label}:");
    }
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

/// Each Pi's console and commands' output, and the controller's log.
fn keep_logs(dir: &Path, consoles: &Path, positions: &[String], serve: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for p in positions {
        let from = consoles.join(p);
        let names = std::iter::once("console.log".to_string())
            .chain((1..=exec_logs(&from)).map(|i| format!("exec-{i}.log")));
        for name in names {
            let from = from.join(&name);
            if from.exists() {
                std::fs::copy(&from, dir.join(format!("{p}.{name}")))
                    .with_context(|| format!("copying {}", from.display()))?;
            }
        }
    }
    std::fs::copy(serve, dir.join("controller.log"))
        .with_context(|| format!("copying {}", serve.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pi(position: &str, up: bool) -> Pi {
        Pi {
            position: position.into(),
            up: up.then_some(Duration::from_secs(40)),
            state: String::new(),
            stages: String::new(),
            console_tail: String::new(),
            checks: Vec::new(),
        }
    }

    #[test]
    fn a_later_boot_is_tried_only_while_every_pi_came_up_at_its_last() {
        let mut pis = vec![pi("A-01", true), pi("A-02", true)];
        assert!(!skipped(&mut pis, "after a power cycle"));
        assert!(pis.iter().all(|p| p.checks.is_empty()));

        pis[1].checks.push(Check {
            name: "after a power cycle: boots to up".into(),
            passed: false,
            output: String::new(),
            took: Duration::ZERO,
        });
        assert!(skipped(&mut pis, "after a reimage to b-1"));
        let last = pis[0].checks.last().unwrap();
        assert_eq!(last.name, "after a reimage to b-1: boots to up");
        assert!(!last.passed && last.output.contains("A-02 did not come up"));
        assert!(
            !pis[0].passed()
                && Verdict(pis)
                    .lines()
                    .contains(&"FAIL A-01 after a reimage to b-1: boots to up".to_string())
        );
    }
}
