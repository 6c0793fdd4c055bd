//! The Debian packages the labs' peers come from: found missing with dpkg and
//! installed with apt-get on a fresh machine, without starting their system
//! services.

use super::{Result, failed, io_err};
use std::path::Path;
use std::process::{Command, Stdio};

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
        .map_err(io_err(
            "dpkg-query (the labs install their peers from Debian packages)",
        ))?;
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
        std::fs::write(policy, "#!/bin/sh\nexit 101\n")
            .and_then(|()| {
                std::fs::set_permissions(
                    policy,
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                )
            })
            .map_err(io_err("writing /usr/sbin/policy-rc.d"))?;
    }
    let run = |args: &[&str]| -> Result<()> {
        let what = format!("apt-get {}", args[0]);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io_err(&what))?;
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(io_err(&what))?)
            .stderr(out)
            .status()
            .map_err(io_err(&what))?;
        match status.success() {
            true => Ok(()),
            false => Err(failed(what, format!("{status}; see {}", log.display()))),
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
