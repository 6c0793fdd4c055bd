//! A peer process that never outlives its owner: stopped when its handle is
//! dropped (its stop signal, then SIGKILL after 5 s), and killed with the owner
//! even when the owner is killed outright (PR_SET_PDEATHSIG).

use super::{Result, failed, io_err};
use nix::sys::signal::Signal;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        let what = format!("starting {name}");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io_err(format!("{what}: its log {}", log.display())))?;
        match piped {
            true => cmd.stdout(Stdio::piped()),
            false => cmd.stdout(out.try_clone().map_err(io_err(&what))?),
        };
        // SAFETY: prctl(2) is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Stopped with its owner even if the owner is killed outright.
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
            .map_err(io_err(&what))?;
        Ok(Proc {
            name,
            child,
            log: log.to_path_buf(),
            stop,
        })
    }

    /// Kills it outright (SIGKILL), as a crash would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// An error naming the log if the process has ended.
    pub fn check(&mut self) -> Result<()> {
        match self.child.try_wait().map_err(io_err(self.name))? {
            None => Ok(()),
            Some(status) => Err(failed(
                self.name,
                format!("exited ({status}); its log: {}", self.log.display()),
            )),
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
                return Err(failed(
                    self.name,
                    format!(
                        "not listening on {proto} port {port} after {} s; its log: {}",
                        within.as_secs(),
                        self.log.display()
                    ),
                ));
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
