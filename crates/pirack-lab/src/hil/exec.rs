//! `--exec` checks: a command run on a virtual Pi over SSH, as root, with the
//! key the run made and placed through the owners' `ssh_keys` (so the image's
//! root is customised exactly as a customer's would be). The Pi is reached at
//! its public address from the lab's namespace, as a customer would reach it.

use super::report::{self, Check};
use crate::signals::STOP;
use std::net::Ipv6Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// `ssh` run in `netns` as root on `address` with `identity`: no agent, no
/// password prompt, and no host key to trust (the Pi's is made at its first boot).
pub(crate) fn ssh(netns: &str, identity: &Path, address: Ipv6Addr) -> Command {
    let mut c = crate::testbed::netns::in_netns(Some(netns), "ssh");
    c.arg("-i").arg(identity).args([
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "ServerAliveInterval=5",
        "-o",
        "ServerAliveCountMax=3",
    ]);
    c.arg(format!("root@{address}"));
    c
}

/// Runs `command` through `ssh` (the Pi's shell reads it as it is), its output
/// and errors in `log`; passes when it exits 0 before `deadline` (at least a
/// few seconds from now). SSH failing to connect (exit 255) is a failure with
/// ssh's words.
pub(crate) fn exec(mut ssh: Command, command: &str, log: &Path, deadline: Instant) -> Check {
    let name = format!("exec `{command}`");
    let started = Instant::now();
    let until = deadline.max(started + Duration::from_secs(10));
    let failed = |output: String| Check {
        name: name.clone(),
        passed: false,
        output,
        took: started.elapsed(),
    };
    let out = match std::fs::File::create(log).and_then(|f| Ok((f.try_clone()?, f))) {
        Ok(o) => o,
        Err(e) => return failed(format!("cannot write {}: {e}", log.display())),
    };
    let child = ssh
        .arg("--")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(out.0)
        .stderr(out.1)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot run ssh: {e}")),
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < until && !STOP.load(Ordering::Relaxed) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let said = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
    let tail = report::tail(&said, 30);
    match status.and_then(|s| s.code()) {
        Some(0) => Check {
            name,
            passed: true,
            output: tail,
            took: started.elapsed(),
        },
        Some(255) => failed(format!("ssh could not run it (exit 255):\n{tail}")),
        Some(code) => failed(format!("exit {code}; its output's end:\n{tail}")),
        None if status.is_some() => failed(format!("killed by a signal:\n{tail}")),
        None => failed(format!(
            "still running at the timeout ({:.0} s); its output's end:\n{tail}",
            started.elapsed().as_secs_f64()
        )),
    }
}

/// A key pair for the run in `dir` (`id_ed25519` and `.pub`, made afresh): the
/// private key's path and the public key's line.
pub(crate) fn keypair(dir: &Path) -> anyhow::Result<(std::path::PathBuf, String)> {
    use anyhow::{Context, bail};
    std::fs::create_dir_all(dir)?;
    let key = dir.join("id_ed25519");
    for f in [key.clone(), key.with_extension("pub")] {
        if f.exists() {
            std::fs::remove_file(&f)?;
        }
    }
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "pirack hil run",
            "-f",
        ])
        .arg(&key)
        .output()
        .context("ssh-keygen (Debian's openssh-client)")?;
    if !out.status.success() {
        bail!(
            "ssh-keygen: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let public = std::fs::read_to_string(key.with_extension("pub"))?;
    Ok((key, public.trim().to_string()))
}
