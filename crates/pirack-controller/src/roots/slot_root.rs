//! A slot's NFS root: built from an image beside the one in service, then swapped
//! in with one atomic exchange (renameat2 RENAME_EXCHANGE), so the exported path
//! always holds a whole root, old or new. The root it replaced is kept for rollback.
//!
//! pirack keeps its records (`roots/<position>.yaml`), staging trees (`work/`) and
//! replaced roots (`kept/`) in `<export_root>/.pirack`: on the roots' filesystem, so
//! snapshots, reflinks and the exchange work, and outside every exported tree. Blocking: call from a blocking thread.

use super::clone::{self, CloneError, Method};
use super::customise::{self, CustomiseError};
use super::image::{self, ImageError};
use pirack_core::inventory::Site;
use pirack_core::plan::SlotPlan;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What a slot's root is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub slot: String,
    pub image: String,
    pub method: Method,
    /// Roots replaced by reimages, newest first, kept until pruned.
    #[serde(default)]
    pub previous: Vec<Previous>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Previous {
    pub image: String,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("{}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("slot {0} is powered on: power it off before its root changes")]
    PoweredOn(String),
    #[error("slot {0} has no root")]
    NoRoot(String),
    #[error("slot {0} has no previous root to roll back to")]
    NoPrevious(String),
    #[error("{}: {detail}", path.display())]
    Record { path: PathBuf, detail: String },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Clone(#[from] CloneError),
    #[error(transparent)]
    Customise(#[from] CustomiseError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RootError + '_ {
    move |source| RootError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// pirack's own directory beside the roots (the slot's fileserver's), on
/// their filesystem and never exported.
pub(crate) fn state_dir(site: &Site, slot: &SlotPlan) -> PathBuf {
    let fs = site
        .fileserver(&slot.fileserver)
        .expect("a plan's fileserver is its site's");
    Path::new(&fs.export_root).join(".pirack")
}

fn record_path(site: &Site, slot: &SlotPlan) -> PathBuf {
    state_dir(site, slot)
        .join("roots")
        .join(format!("{}.yaml", slot.position))
}

/// Removes every staging tree of `position` left in `work`.
fn clear_work(work: &Path, position: &str) -> Result<(), RootError> {
    let Ok(entries) = std::fs::read_dir(work) else {
        return Ok(());
    };
    let mine = |name: &str| {
        let name = name.trim_start_matches('.');
        name.strip_prefix(position)
            .is_some_and(|rest| rest.starts_with('.'))
    };
    for e in entries.flatten() {
        if mine(&e.file_name().to_string_lossy()) {
            clone::remove_tree(&e.path())?;
        }
    }
    Ok(())
}

/// The slot's record, if it has a root.
pub fn record(site: &Site, slot: &SlotPlan) -> Result<Option<Record>, RootError> {
    let path = record_path(site, slot);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_yaml::from_str(&text)
            .map(Some)
            .map_err(|e| RootError::Record {
                path,
                detail: e.to_string(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path)(e)),
    }
}

fn save(site: &Site, slot: &SlotPlan, r: &Record) -> Result<(), RootError> {
    let path = record_path(site, slot);
    let dir = path.parent().expect("under export root");
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, serde_yaml::to_string(r).expect("record serialises"))
        .map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err(&path))
}

/// Swaps two paths in one step; both must exist.
fn exchange(a: &Path, b: &Path) -> Result<(), RootError> {
    let ca = CString::new(a.as_os_str().as_bytes()).map_err(|e| io_err(a)(io::Error::other(e)))?;
    let cb = CString::new(b.as_os_str().as_bytes()).map_err(|e| io_err(b)(io::Error::other(e)))?;
    // SAFETY: two valid C strings, relative to the working directory.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(io_err(b)(io::Error::last_os_error())),
    }
}

/// Builds the slot's root from image `image_id` (a first root, or a reimage that
/// keeps the current root for rollback). Refused while the slot is powered on.
pub fn build(
    site: &Site,
    slot: &SlotPlan,
    store: &Path,
    image_id: &str,
    powered_on: bool,
) -> Result<Record, RootError> {
    if powered_on {
        return Err(RootError::PoweredOn(slot.position.clone()));
    }
    image::show(store, image_id)?;
    let image_root = store.join(image_id).join("root");
    // Staging is private to this run: what a killed run left (and any of its
    // children still writing there) is cleared away, never reused.
    let staging = staging(site, slot)?;
    let work = staging.parent().expect("under work").to_path_buf();
    let method = clone::best_method(&image_root, &work);
    clone::clone_tree(&image_root, &staging, method)?;
    customise::customise(&staging, site, slot)?;
    install(site, slot, &staging, image_id, method)
}

/// Where a slot's new root is prepared before [`install`]: private to this
/// process, what an earlier killed run left for the slot cleared first.
pub fn staging(site: &Site, slot: &SlotPlan) -> Result<PathBuf, RootError> {
    let work = state_dir(site, slot).join("work");
    clear_work(&work, &slot.position)?;
    std::fs::create_dir_all(&work).map_err(io_err(&work))?;
    Ok(work.join(format!("{}.{}", slot.position, std::process::id())))
}

/// Puts the complete tree `staging` in service as the slot's root in one
/// exchange, keeping the root it replaces for rollback; `image` says what
/// the new root was made from.
pub fn install(
    site: &Site,
    slot: &SlotPlan,
    staging: &Path,
    image: &str,
    method: Method,
) -> Result<Record, RootError> {
    let target = PathBuf::from(&slot.root);
    let parent = target.parent().expect("roots live under the export root");
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    let mut rec = record(site, slot)?.unwrap_or(Record {
        slot: slot.position.clone(),
        image: String::new(),
        method,
        previous: Vec::new(),
    });
    if target.exists() {
        exchange(staging, &target)?;
        // The replaced root now sits at the staging path; keep it for rollback.
        let kept_dir = state_dir(site, slot).join("kept");
        std::fs::create_dir_all(&kept_dir).map_err(io_err(&kept_dir))?;
        let kept = kept_dir.join(format!("{}.{}", slot.position, unique()));
        std::fs::rename(staging, &kept).map_err(io_err(&kept))?;
        rec.previous.insert(
            0,
            Previous {
                image: rec.image.clone(),
                path: kept,
            },
        );
    } else {
        std::fs::rename(staging, &target).map_err(io_err(&target))?;
    }
    rec.image = image.to_string();
    rec.method = method;
    save(site, slot, &rec)?;
    Ok(rec)
}

/// Puts the newest previous root back in service, keeping the current one as the
/// newest previous (so a rollback can itself be rolled back).
pub fn rollback(site: &Site, slot: &SlotPlan, powered_on: bool) -> Result<Record, RootError> {
    if powered_on {
        return Err(RootError::PoweredOn(slot.position.clone()));
    }
    let mut rec = record(site, slot)?.ok_or_else(|| RootError::NoRoot(slot.position.clone()))?;
    let prev = rec
        .previous
        .first()
        .cloned()
        .ok_or_else(|| RootError::NoPrevious(slot.position.clone()))?;
    exchange(&prev.path, Path::new(&slot.root))?;
    rec.previous[0].image = std::mem::replace(&mut rec.image, prev.image);
    save(site, slot, &rec)?;
    Ok(rec)
}

/// Removes the slot's root, every previous one, and the record: explicit only.
pub fn delete(site: &Site, slot: &SlotPlan, powered_on: bool) -> Result<(), RootError> {
    if powered_on {
        return Err(RootError::PoweredOn(slot.position.clone()));
    }
    if let Some(rec) = record(site, slot)? {
        for p in &rec.previous {
            clone::remove_tree(&p.path)?;
        }
    }
    clone::remove_tree(Path::new(&slot.root))?;
    clear_work(&state_dir(site, slot).join("work"), &slot.position)?;
    let path = record_path(site, slot);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&path)(e)),
        _ => Ok(()),
    }
}

/// Nanoseconds since the epoch: tells kept roots apart.
fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Slots whose root (current or kept) comes from image `image_id`.
pub fn users(export_root: &Path, image_id: &str) -> Result<Vec<String>, RootError> {
    let dir = export_root.join(".pirack/roots");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&dir)(e)),
    };
    let mut out = Vec::new();
    for e in entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
    {
        let path = e.path();
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        let r: Record = serde_yaml::from_str(&text).map_err(|err| RootError::Record {
            path: path.clone(),
            detail: err.to_string(),
        })?;
        if r.image == image_id || r.previous.iter().any(|p| p.image == image_id) {
            out.push(r.slot);
        }
    }
    out.sort();
    Ok(out)
}
