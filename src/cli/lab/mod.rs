//! Whole labs on this machine in one command, each in a network namespace of its
//! own with real peers: `pirack demo` (simulated Pis on an emulated PoE switch) and
//! `pirack hil` (virtual Pi 3s booting a real kernel under QEMU). What they share
//! lives here.

pub mod demo;
mod forward;
pub mod hil;
mod peers;
mod site;
mod watch;

use super::netboot::on_stop_signal;
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use pirack::roots::image as roots_image;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Where the API listens inside a lab's namespace.
const API: &str = "127.0.0.1:18080";

/// SIGINT and SIGTERM set `STOP`: the lab winds down and removes what it made.
fn catch_stop_signals() -> Result<()> {
    let handler = SigAction::new(
        SigHandler::Handler(on_stop_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(sig, &handler) }?;
    }
    Ok(())
}

/// A namespace, deleted on drop.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Removes the namespaces of demos and simulators that died without cleaning up
/// (killed outright): named `pirack-demo-PID` and `pirack-sim-PID-N`.
fn clear_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for name in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
    {
        let pid = ["pirack-demo-", "pirack-sim-"]
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            tracing::info!("removing {name}, left by a run that was killed");
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// Runs `work` behind a spinner saying `what`, then a line with its time.
fn step<T>(what: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    let bar = ProgressBar::new_spinner().with_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    let started = Instant::now();
    let out = work();
    bar.finish_and_clear();
    let verdict = if out.is_ok() { "done" } else { "FAILED" };
    eprintln!(
        "{what}: {verdict} ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    out
}

fn run_logged(cmd: &mut Command, log: &Path) -> Result<()> {
    let out = std::fs::File::create(log)?;
    let status = cmd
        .stdout(out.try_clone()?)
        .stderr(out)
        .status()
        .with_context(|| format!("{:?}", cmd.get_program()))?;
    match status.success() {
        true => Ok(()),
        false => bail!("{status}; see {}", log.display()),
    }
}

/// The image `images/<name>/recipe` builds (cached in `dir`), imported into
/// `store` as each of `versions`; its boot directory.
fn image(
    source: &Path,
    dir: &Path,
    store: &Path,
    name: &str,
    versions: &[&str],
) -> Result<PathBuf> {
    let built = dir.join(name);
    if !built.join("boot/kernel8.img").exists() || !built.join("root.tar.gz").exists() {
        let what = format!(
            "building the {name} image (images/{name}/recipe: Debian's Pi firmware and kernel, busybox)"
        );
        step(&what, || {
            run_logged(
                Command::new(source.join(format!("images/{name}/recipe"))).arg(&built),
                &dir.join(format!("{name}.log")),
            )
        })?;
    }
    for version in versions {
        let id = format!("{name}-{version}");
        if roots_image::show(store, &id).is_ok() {
            continue;
        }
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template("importing the image [{bar:30}] {bytes}/{total_bytes}")
                .expect("a valid template"),
        );
        let import = roots_image::Import {
            name: name.into(),
            version: version.to_string(),
            root: built.join("root.tar.gz"),
            boot: built.join("boot"),
            cmdline: "console=ttyAMA0,115200".into(),
        };
        roots_image::import(store, &import, &|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })?;
        bar.finish_and_clear();
        eprintln!("imported the {name} image as {id}");
    }
    Ok(built.join("boot"))
}

/// An admin token and one for `owner`, made in the store at `db`.
fn tokens(db: &str, owner: &str) -> Result<(String, String)> {
    use pirack::store::{Store, tokens::Scope};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = Store::open(db).await?;
        let (_, admin) = store.create_token("demo admin", &Scope::Admin).await?;
        let customer = Scope::Customer(owner.to_string());
        let (_, mine) = store.create_token("demo customer", &customer).await?;
        store.pool().close().await;
        Ok((admin, mine))
    })
}
