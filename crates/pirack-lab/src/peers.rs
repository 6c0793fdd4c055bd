//! The demo's real peers, run inside the controller's network namespace: net-snmp's
//! snmpd answering as the shelf's PoE switch (the emulator in
//! `switch-profiles/emulator/`), rpcbind and NFS-Ganesha serving the slot roots. On
//! a fresh machine the Debian packages they come from are installed first.

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian packages the demo's peers come from.
const PACKAGES: &[&str] = &[
    "iproute2",
    "python3",
    "snmpd",
    "rpcbind",
    "nfs-ganesha",
    "nfs-ganesha-vfs",
];

/// Those of [`PACKAGES`] and `extra` dpkg does not have installed.
pub fn missing_packages(extra: &[&'static str]) -> Result<Vec<&'static str>> {
    let wanted: Vec<&'static str> = PACKAGES.iter().chain(extra).copied().collect();
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${db:Status-Status}\n"])
        .args(&wanted)
        .stderr(Stdio::null())
        .output()
        .context("dpkg-query (the demo installs its peers from Debian packages)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(wanted
        .into_iter()
        .filter(|p| !text.lines().any(|l| l == format!("{p} installed")))
        .collect())
}

/// `apt-get install`s `packages`, without starting their system services (the
/// demo runs its own copies in a namespace; a fresh machine should not be left
/// with an NFS server). apt's output goes to `log`.
pub fn install(packages: &[&str], log: &Path) -> Result<()> {
    // policy-rc.d refusing (101) is how Debian keeps maintainer scripts from
    // starting services; only ours is removed afterwards.
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let ours = !policy.exists();
    if ours {
        std::fs::write(policy, "#!/bin/sh\nexit 101\n")?;
        std::fs::set_permissions(policy, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    let run = |args: &[&str]| -> Result<()> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .status()
            .context("apt-get")?;
        match status.success() {
            true => Ok(()),
            false => bail!("apt-get {}: {status}; see {}", args[0], log.display()),
        }
    };
    let result = run(&["update", "-q"]).and_then(|()| {
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend_from_slice(packages);
        run(&args)
    });
    if ours {
        let _ = std::fs::remove_file(policy);
    }
    result
}

/// A child process, stopped when dropped (its stop signal, then SIGKILL after
/// 5 s), and when the demo dies, even by SIGKILL.
pub struct Proc {
    pub name: &'static str,
    pub child: Child,
    log: PathBuf,
    stop: Signal,
}

impl Proc {
    /// Starts `cmd` with stderr (and stdout, unless `piped`) appended to `log`;
    /// SIGTERM stops it.
    pub fn spawn(name: &'static str, cmd: &mut Command, log: &Path, piped: bool) -> Result<Proc> {
        Proc::spawn_stopped_by(name, cmd, log, piped, Signal::SIGTERM)
    }

    /// As [`Proc::spawn`], for a process that `stop` ends.
    pub fn spawn_stopped_by(
        name: &'static str,
        cmd: &mut Command,
        log: &Path,
        piped: bool,
        stop: Signal,
    ) -> Result<Proc> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        match piped {
            true => cmd.stdout(Stdio::piped()),
            false => cmd.stdout(out.try_clone()?),
        };
        // SAFETY: prctl(2) is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Stopped with the demo even if it is killed outright.
                match libc::prctl(libc::PR_SET_PDEATHSIG, stop as libc::c_ulong) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            });
        }
        let child = cmd
            .stdin(Stdio::null())
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name,
            child,
            log: log.to_path_buf(),
            stop,
        })
    }

    /// An error naming the log if the process has ended.
    pub fn check(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!(
                "{} exited ({status}); its log: {}",
                self.name,
                self.log.display()
            ),
        }
    }

    /// Waits until the process (in its namespace, as /proc/PID/net shows it)
    /// listens on `port` over `proto` ("udp" or "tcp").
    pub fn wait_listening(&mut self, proto: &str, port: u16, within: Duration) -> Result<()> {
        let started = Instant::now();
        let hex = format!(":{port:04X}");
        loop {
            self.check()?;
            let pid = self.child.id();
            let listening = [proto.to_string(), format!("{proto}6")].iter().any(|t| {
                std::fs::read_to_string(format!("/proc/{pid}/net/{t}")).is_ok_and(|table| {
                    table.lines().skip(1).any(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        // UDP sockets are bound (07), TCP ones listening (0A).
                        f.len() > 3 && f[1].ends_with(&hex) && (f[3] == "0A" || f[3] == "07")
                    })
                })
            });
            if listening {
                return Ok(());
            }
            if started.elapsed() > within {
                bail!(
                    "{} is not listening on {proto} port {port} after {} s; its log: {}",
                    self.name,
                    within.as_secs(),
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, self.stop);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program` run inside namespace `netns`.
pub fn in_netns(netns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", netns]).arg(program);
    c
}

/// snmpd on the namespace's loopback at `port`, answering `community` (read-write)
/// with the emulated switch of `ports` ports, every one powered off.
pub fn switch(
    netns: &str,
    emulator: &Path,
    dir: &Path,
    port: u16,
    ports: u16,
    community: &str,
) -> Result<Proc> {
    std::fs::create_dir_all(dir)?;
    let state = dir.join("state.json");
    let init = Command::new(emulator)
        .arg("init")
        .arg(&state)
        .args(["--ports", &ports.to_string(), "--power", "off"])
        .status()
        .with_context(|| format!("{} (python3)", emulator.display()))?;
    if !init.success() {
        bail!("{} init: {init}", emulator.display());
    }
    // snmpd runs a pass_persist program by absolute path (its shebang finds python3).
    let serve = format!("{} serve {}", emulator.display(), state.display());
    let conf = dir.join("snmpd.conf");
    std::fs::write(
        &conf,
        format!(
            "agentaddress udp:127.0.0.1:{port}\nrwcommunity {community} 127.0.0.1\n\
             pass_persist .1.3.6.1.2.1.105 {serve}\npass_persist .1.3.6.1.2.1.17.7 {serve}\n"
        ),
    )?;
    let mut snmpd = in_netns(netns, "snmpd");
    snmpd
        .args(["-f", "-C", "-c"])
        .arg(&conf)
        .arg("-Lf")
        .arg(dir.join("snmpd.log"))
        .env("SNMP_PERSISTENT_DIR", dir.join("persist"))
        .env("MIBS", "");
    let mut p = Proc::spawn("snmpd", &mut snmpd, &dir.join("snmpd.out"), false)?;
    p.wait_listening("udp", port, Duration::from_secs(10))?;
    Ok(p)
}

/// rpcbind and ganesha.nfsd in the namespace, reading the exports file pirack
/// writes (`exports`) and leaving their pid where the inventory says. The
/// namespace must already have a non-loopback address: ganesha needs one.
///
/// rpcbind's lock and socket are fixed paths under /run, shared by every rpcbind
/// on the machine whatever its network namespace; so both run with a /run of
/// their own, in a PID namespace that dies with ganesha (taking rpcbind along).
/// Ganesha's own pid file holds its pid inside that namespace (1); `pid_file` gets
/// the pid the controller can signal.
pub fn nfs(netns: &str, dir: &Path, exports: &Path, pid_file: &Path) -> Result<Proc> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(exports, "# no roots yet\n")?;
    let conf = dir.join("ganesha.conf");
    std::fs::write(
        &conf,
        pirack_core::plan::render::exports::ganesha_server(exports),
    )?;
    let mut nfs = in_netns(netns, "unshare");
    // unshare ignores SIGTERM while it waits: it is stopped by SIGKILL, and
    // then kills ganesha, the PID namespace's first process, and with it rpcbind.
    nfs.args(["--mount", "--pid", "--fork", "--kill-child", "sh", "-c"])
        .arg(
            "mount -t tmpfs pirack-demo /run && rpcbind -w && \
             exec ganesha.nfsd -F -f \"$1\" -L \"$2\" -p \"$3\"",
        )
        .arg("nfs")
        .arg(&conf)
        .arg(dir.join("ganesha.log"))
        .arg(dir.join("ganesha.inner.pid"));
    let log = dir.join("nfs.log");
    let mut nfs = Proc::spawn_stopped_by("ganesha.nfsd", &mut nfs, &log, false, Signal::SIGKILL)?;
    nfs.wait_listening("tcp", 2049, Duration::from_secs(20))?;
    let unshare = nfs.child.id();
    let children = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))?;
    let ganesha = children
        .split_whitespace()
        .next()
        .context("ganesha's pid (unshare has no child)")?;
    std::fs::write(pid_file, format!("{ganesha}\n"))?;
    Ok(nfs)
}
