//! Exporting the slots' roots: the export file for the site's NFS server, written
//! atomically, then the server told: `exportfs -ra` for the kernel's nfsd, SIGHUP
//! for NFS-Ganesha. Only slots that have a root are exported.
//!
//! Blocking: call from a blocking thread.

use super::slot_root::{self, RootError};
use pirack_core::inventory::{ExportBackend, Site};
use pirack_core::plan::render::exports;
use pirack_core::plan::{Plan, SlotPlan};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("exportfs -ra: {0}")]
    Exportfs(String),
    #[error("ganesha is not running: {0}")]
    Ganesha(String),
    #[error(transparent)]
    Root(#[from] RootError),
    #[error("the export task panicked: {0}")]
    Panicked(String),
}

/// What was exported where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub backend: ExportBackend,
    pub file: PathBuf,
    pub roots: usize,
}

/// The export file of the site's backend.
pub fn file(site: &Site) -> PathBuf {
    PathBuf::from(site.exports.file.clone().unwrap_or_else(|| {
        match site.exports.backend {
            ExportBackend::Kernel => "/etc/exports.d/pirack.exports",
            ExportBackend::Ganesha => "/etc/ganesha/pirack-exports.conf",
        }
        .to_string()
    }))
}

/// Writes the exports of every slot with a root and has the server reload them.
pub fn apply(site: &Site, plan: &Plan) -> Result<Applied, ExportError> {
    let mut slots: Vec<&SlotPlan> = Vec::new();
    for s in &plan.slots {
        if slot_root::record(site, s)?.is_some() {
            slots.push(s);
        }
    }
    write_and_reload(site, slots)
}

/// How long NFS-Ganesha is given to act on one reload before the next.
const GANESHA_SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

/// As [`apply`], after the `swapped` slots' roots were exchanged in place (a
/// reimage or a rollback). NFS-Ganesha keeps an export it finds unchanged on the directory it
/// first resolved, which is now the kept old root: so with ganesha the slot is
/// unexported in one reload and exported again in the next, and the Pi's next
/// mount gets the new root. The kernel's nfsd resolves the path at each mount.
pub fn apply_after_swap(
    site: &Site,
    plan: &Plan,
    swapped: &[&SlotPlan],
) -> Result<Applied, ExportError> {
    if site.exports.backend == ExportBackend::Ganesha && !swapped.is_empty() {
        let mut others: Vec<&SlotPlan> = Vec::new();
        for s in plan
            .slots
            .iter()
            .filter(|s| swapped.iter().all(|w| w.key != s.key))
        {
            if slot_root::record(site, s)?.is_some() {
                others.push(s);
            }
        }
        write_and_reload(site, others)?;
        std::thread::sleep(GANESHA_SETTLE);
    }
    apply(site, plan)
}

fn write_and_reload(site: &Site, slots: Vec<&SlotPlan>) -> Result<Applied, ExportError> {
    let text = match site.exports.backend {
        ExportBackend::Kernel => exports::kernel(site, slots.iter().copied()),
        ExportBackend::Ganesha => exports::ganesha(site, slots.iter().copied()),
    };
    let path = file(site);
    write_atomically(&path, &text)?;
    match site.exports.backend {
        ExportBackend::Kernel => exportfs()?,
        ExportBackend::Ganesha => reload_ganesha(Path::new(&site.exports.ganesha_pid_file))?,
    }
    Ok(Applied {
        backend: site.exports.backend,
        file: path,
        roots: slots.len(),
    })
}

fn write_atomically(path: &Path, text: &str) -> Result<(), ExportError> {
    let err = |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    // Unique: another writer (`pirack exports` beside a stopped controller's
    // last writes) never renames this one's file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("pirack-{}-{n}.tmp", std::process::id()));
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

fn exportfs() -> Result<(), ExportError> {
    let out = super::command("exportfs")
        .arg("-ra")
        .output()
        .map_err(|e| ExportError::Exportfs(format!("{e} (is nfs-kernel-server installed?)")))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(ExportError::Exportfs(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )),
    }
}

fn reload_ganesha(pid_file: &Path) -> Result<(), ExportError> {
    let text = std::fs::read_to_string(pid_file)
        .map_err(|e| ExportError::Ganesha(format!("{}: {e}", pid_file.display())))?;
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| ExportError::Ganesha(format!("{} holds no pid", pid_file.display())))?;
    // A stale pid file (or one written inside another PID namespace) must not
    // have pirack signal some other process.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() != "ganesha.nfsd" {
        return Err(ExportError::Ganesha(format!(
            "pid {pid} from {} is not ganesha.nfsd (it is {:?})",
            pid_file.display(),
            comm.trim()
        )));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .map_err(|e| ExportError::Ganesha(format!("pid {pid} from {}: {e}", pid_file.display())))
}
