//! NFS-Ganesha with rpcbind in a namespace, serving the exports file pirack writes
//! and leaving its pid where the inventory names it (the controller signals it to
//! reload).

use super::netns::in_netns;
use super::proc::Proc;
use super::{Result, failed, io_err};
use nix::sys::signal::Signal;
use std::path::Path;
use std::time::Duration;

/// rpcbind and ganesha.nfsd; both stop when it is dropped.
pub struct Ganesha {
    _proc: Proc,
}

impl Ganesha {
    /// Starts them in `netns`, with their files in `dir`, serving `exports` (made
    /// empty) and writing ganesha's pid, as this namespace's processes see it, to
    /// `pid_file`. The namespace needs a non-loopback address first: ganesha does
    /// not start without one.
    ///
    /// rpcbind's lock and socket are fixed paths under /run, shared by every
    /// rpcbind on the machine whatever its network namespace; so both run with a
    /// /run of their own, in a PID namespace that dies with ganesha (taking
    /// rpcbind along).
    pub fn start(netns: &str, dir: &Path, exports: &Path, pid_file: &Path) -> Result<Ganesha> {
        std::fs::create_dir_all(dir).map_err(io_err(format!("making {}", dir.display())))?;
        std::fs::write(exports, "# no roots yet\n").map_err(io_err("writing the exports file"))?;
        let conf = dir.join("ganesha.conf");
        std::fs::write(
            &conf,
            pirack_core::plan::render::exports::ganesha_server(exports),
        )
        .map_err(io_err("writing ganesha.conf"))?;
        let mut nfs = in_netns(Some(netns), "unshare");
        // unshare ignores SIGTERM while it waits: it is stopped by SIGKILL, and
        // then kills ganesha, the PID namespace's first process, and with it rpcbind.
        nfs.args(["--mount", "--pid", "--fork", "--kill-child", "sh", "-c"])
            .arg(
                "mount -t tmpfs pirack-nfs /run && rpcbind -w && \
                 exec ganesha.nfsd -F -f \"$1\" -L \"$2\" -p \"$3\"",
            )
            .arg("nfs")
            .arg(&conf)
            .arg(dir.join("ganesha.log"))
            .arg(dir.join("ganesha.inner.pid"));
        let log = dir.join("nfs.log");
        let mut nfs =
            Proc::spawn_stopped_by("ganesha.nfsd", &mut nfs, &log, false, Signal::SIGKILL)?;
        nfs.wait_listening("tcp", 2049, Duration::from_secs(20))?;
        let unshare = nfs.child.id();
        let children = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
            .map_err(io_err("finding ganesha's pid"))?;
        let ganesha = children
            .split_whitespace()
            .next()
            .ok_or_else(|| failed("finding ganesha's pid", "unshare has no child"))?;
        std::fs::write(pid_file, format!("{ganesha}\n"))
            .map_err(io_err("writing ganesha's pid"))?;
        Ok(Ganesha { _proc: nfs })
    }
}
