//! Network namespaces: one per simulated Pi, controller or lab, joined by veth
//! pairs standing in for switch ports and VLANs (this kernel has no 802.1Q).

use super::{Result, failed, io_err, run};
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// A network namespace with its loopback up, deleted on drop.
#[derive(Debug)]
pub struct Netns(String);

impl Netns {
    /// Makes namespace `name`, removing a leftover of the same name first.
    pub fn new(name: &str) -> Result<Netns> {
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        run(
            &format!("ip netns add {name}"),
            Command::new("ip").args(["netns", "add", name]),
        )?;
        let ns = Netns(name.to_string());
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// `ip -n <name> args`.
    pub fn ip(&self, args: &[&str]) -> Result<()> {
        let what = format!("ip -n {} {}", self.0, args.join(" "));
        run(&what, Command::new("ip").args(["-n", &self.0]).args(args)).map(drop)
    }

    /// `program` to run inside the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        in_netns(Some(&self.0), program)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

/// `program` run inside `netns` when given, else here.
pub fn in_netns(netns: Option<&str>, program: impl AsRef<OsStr>) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Runs `ip -batch` (in `netns` when given): every line, failing if any did.
pub fn ip_batch(netns: Option<&str>, commands: &str) -> Result<()> {
    let what = format!(
        "ip {}-batch",
        netns.map_or(String::new(), |n| format!("-n {n} "))
    );
    let mut cmd = Command::new("ip");
    if let Some(ns) = netns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd
        // -force: run every line, then report failure if any line failed.
        .args(["-force", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_err(&what))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(commands.as_bytes())
        .map_err(io_err(&what))?;
    let out = child.wait_with_output().map_err(io_err(&what))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(failed(what, String::from_utf8_lossy(&out.stderr).trim())),
    }
}

/// Moves the calling thread (only it) into namespace `name`.
pub fn enter(name: &str) -> std::io::Result<()> {
    let f = File::open(format!("/run/netns/{name}"))?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
}

/// Removes namespaces named `<prefix><pid>[-...]` whose process is gone: left
/// by a run that was killed outright.
pub fn clear_stale(prefixes: &[&str]) {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for name in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
    {
        let pid = prefixes
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
