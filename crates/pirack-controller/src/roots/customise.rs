//! Makes a fresh root a particular Pi: the plan's files for the slot, a new
//! machine-id and SSH host keys, the owner's SSH keys, and the first-boot helpers
//! that break an NFS root (swap files, partition resizing) masked (netboot notes §5.2).
//!
//! Everything written is owned by the Pi's root (uid and gid 0), whoever pirack
//! runs as: the packaged service is the `pirack` user, and a file of its uid in a
//! root would belong to some stranger on the Pi (and sshd refuses an
//! `authorized_keys` owned by neither root nor the user).
//!
//! Blocking (files and `ssh-keygen`): call from a blocking thread.

use pirack_core::inventory::Site;
use pirack_core::plan::SlotPlan;
use pirack_core::plan::render::slot as rendered;
use std::io::{self, Read};
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};

/// Units masked in every root: each resizes a partition, makes a swap file or
/// regenerates keys at first boot, none of which an NFS root wants.
pub const MASKED_UNITS: &[&str] = &[
    "dphys-swapfile.service",
    "resize2fs_once.service",
    "rpi-resizerootfs.service",
    "regenerate_ssh_host_keys.service",
    "apply_noobs_os_config.service",
    "swap.target",
];

/// SSH host key types made for every root that has an SSH server configuration.
const HOST_KEYS: &[(&str, &[&str])] = &[
    ("ed25519", &[]),
    ("ecdsa", &["-b", "256"]),
    ("rsa", &["-b", "3072"]),
];

#[derive(Debug, thiserror::Error)]
pub enum CustomiseError {
    #[error("{}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("ssh-keygen for {key}: {detail}")]
    Keygen { key: String, detail: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CustomiseError + '_ {
    move |source| CustomiseError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Gives `path` (not a symlink's target) to the Pi's root.
fn own(path: &Path) -> Result<(), CustomiseError> {
    lchown(path, Some(0), Some(0)).map_err(io_err(path))
}

/// Creates the directory `rel` under `root` and any missing parents, each new
/// one owned by the Pi's root.
fn mkdirs(root: &Path, rel: &Path) -> Result<(), CustomiseError> {
    let mut dir = root.to_path_buf();
    for part in rel.components() {
        dir.push(part);
        if std::fs::symlink_metadata(&dir).is_err() {
            std::fs::create_dir(&dir).map_err(io_err(&dir))?;
            own(&dir)?;
        }
    }
    Ok(())
}

/// Writes `content` at `rel` under `root`, replacing a file or symlink there (a
/// symlink is never followed out of the root).
fn put(root: &Path, rel: &str, content: &[u8], mode: u32) -> Result<PathBuf, CustomiseError> {
    let path = root.join(rel);
    if let Some(dir) = Path::new(rel).parent() {
        mkdirs(root, dir)?;
    }
    if std::fs::symlink_metadata(&path).is_ok() {
        std::fs::remove_file(&path).map_err(io_err(&path))?;
    }
    std::fs::write(&path, content).map_err(io_err(&path))?;
    own(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err(&path))?;
    Ok(path)
}

/// A symlink at `link` to `target`, owned by the Pi's root.
fn link(target: &str, link: &Path) -> Result<(), CustomiseError> {
    symlink(target, link).map_err(io_err(link))?;
    own(link)
}

/// A new systemd machine-id: 128 random bits as 32 lower-case hex digits.
fn machine_id() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Customises `root` for `slot`; returns the files written, relative to the root.
pub fn customise(root: &Path, site: &Site, slot: &SlotPlan) -> Result<Vec<String>, CustomiseError> {
    let mut written = Vec::new();
    let mut tree = pirack_core::plan::render::Tree::new();
    rendered::render(site, slot, &mut tree);
    let prefix = format!("slots/{}/root/", slot.position);
    for (path, content) in &tree {
        if let Some(rel) = path.strip_prefix(&prefix) {
            put(root, rel, content.as_bytes(), 0o644)?;
            written.push(rel.to_string());
        }
    }

    let id = machine_id().map_err(io_err(Path::new("/dev/urandom")))?;
    put(root, "etc/machine-id", format!("{id}\n").as_bytes(), 0o444)?;
    written.push("etc/machine-id".into());
    if root.join("var/lib/dbus").is_dir() {
        let dbus = root.join("var/lib/dbus/machine-id");
        let _ = std::fs::remove_file(&dbus);
        link("/etc/machine-id", &dbus)?;
    }

    if root.join("etc/ssh").is_dir() {
        written.extend(host_keys(root, &slot.hostname)?);
    }

    if let Some(owner) = &slot.owner
        && let Some(o) = site.owners.iter().find(|o| &o.name == owner)
    {
        let keys: String = o
            .ssh_keys
            .iter()
            .map(|k| format!("{}\n", k.trim()))
            .collect();
        let ssh_dir = root.join("root/.ssh");
        mkdirs(root, Path::new("root/.ssh"))?;
        std::fs::set_permissions(&ssh_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(&ssh_dir))?;
        put(root, "root/.ssh/authorized_keys", keys.as_bytes(), 0o600)?;
        written.push("root/.ssh/authorized_keys".into());
    }

    let units = root.join("etc/systemd/system");
    mkdirs(root, Path::new("etc/systemd/system"))?;
    for unit in MASKED_UNITS {
        let link = units.join(unit);
        if std::fs::symlink_metadata(&link).is_ok() {
            std::fs::remove_file(&link).map_err(io_err(&link))?;
        }
        self::link("/dev/null", &link)?;
        written.push(format!("etc/systemd/system/{unit}"));
    }
    Ok(written)
}

/// Replaces every SSH host key with a fresh one, so no two Pis share keys.
fn host_keys(root: &Path, hostname: &str) -> Result<Vec<String>, CustomiseError> {
    let dir = root.join("etc/ssh");
    for e in std::fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
        if e.file_name().to_string_lossy().starts_with("ssh_host_") {
            std::fs::remove_file(e.path()).map_err(io_err(&e.path()))?;
        }
    }
    // All at once: RSA's prime search dominates, the others finish meanwhile.
    let children = HOST_KEYS
        .iter()
        .map(|(kind, args)| {
            let file = dir.join(format!("ssh_host_{kind}_key"));
            let child = super::command("ssh-keygen")
                .args(["-q", "-N", "", "-t", kind])
                .args(*args)
                .arg("-C")
                .arg(format!("root@{hostname}"))
                .arg("-f")
                .arg(&file)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn();
            (kind, child)
        })
        .collect::<Vec<_>>();
    let mut written = Vec::new();
    for (kind, child) in children {
        let keygen_err = |detail: String| CustomiseError::Keygen {
            key: kind.to_string(),
            detail,
        };
        let out = child
            .and_then(|c| c.wait_with_output())
            .map_err(|e| keygen_err(e.to_string()))?;
        if !out.status.success() {
            let said = [out.stderr, out.stdout].concat();
            return Err(keygen_err(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&said).trim()
            )));
        }
        for file in [
            format!("ssh_host_{kind}_key"),
            format!("ssh_host_{kind}_key.pub"),
        ] {
            own(&dir.join(&file))?;
            written.push(format!("etc/ssh/{file}"));
        }
    }
    Ok(written)
}
