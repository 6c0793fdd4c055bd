//! Backups of the slots' roots with restic, taken on the fileserver from a
//! still image of the root (never over NFS), so the Pi keeps running and the
//! backup is one moment's. Each backup goes to every target on its own: a
//! target that fails does not keep the others from theirs. A restore builds
//! a new root from a snapshot beside the one in service and swaps it in like
//! a reimage, the replaced root kept for rollback. Blocking: call from a
//! blocking thread.

pub mod alerts;
pub mod keys;
pub mod restic;
pub mod schedule;
pub mod service;
pub mod snapshot;
pub mod space;

use crate::roots::clone::{self, CloneError, Method};
use crate::roots::slot_root::{self, Record, RootError};
use pirack_core::backup::plan::SiteBackup;
use pirack_core::backup::restic::{Snapshot, Status, Summary};
use pirack_core::inventory::Site;
use pirack_core::plan::SlotPlan;
use restic::Repo;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the site has no backup: section")]
    NotConfigured,
    #[error("{0}")]
    Config(String),
    /// A backup that failed at some target, each target's outcome said.
    #[error("{0}")]
    Failed(String),
    #[error("no target is called `{0}`")]
    NoTarget(String),
    #[error("target {target} ({repository}): {message}")]
    Restic {
        target: String,
        repository: String,
        message: String,
    },
    #[error("the key {}: {message}", path.display())]
    Key { path: PathBuf, message: String },
    #[error("slot {0} has no root to back up")]
    NoRoot(String),
    #[error("no snapshot {wanted} of slot {slot} at {targets}")]
    NoSnapshot {
        slot: String,
        wanted: String,
        targets: String,
    },
    #[error(transparent)]
    Still(#[from] CloneError),
    #[error(transparent)]
    Root(#[from] RootError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// restic's cache, beside the roots this host serves: under the first
/// fileserver's export root found here (every one, when none is).
fn cache_dir(site: &Site) -> PathBuf {
    let roots = site.fileservers.iter().map(|f| Path::new(&f.export_root));
    let mut here = roots.clone().filter(|r| r.is_dir());
    let root = here.next().or_else(|| roots.clone().next());
    root.unwrap_or(Path::new("/var/lib/pirack"))
        .join(".pirack/restic-cache")
}

fn config(site: &Site) -> Result<&SiteBackup, BackupError> {
    site.backup.as_ref().ok_or(BackupError::NotConfigured)
}

/// The slot's owner's repository at each target (or those named).
pub fn repos(site: &Site, owner: Option<&str>, only: &[&str]) -> Result<Vec<Repo>, BackupError> {
    let b = config(site)?;
    let cache = cache_dir(site);
    if let Some(n) = only.iter().find(|n| b.target(n).is_none()) {
        return Err(BackupError::NoTarget(n.to_string()));
    }
    let chosen: Vec<_> = b
        .targets
        .iter()
        .filter(|t| only.is_empty() || only.contains(&t.name.as_str()))
        .collect();
    chosen
        .into_iter()
        .map(|t| Repo::new(b, t, owner, &cache))
        .collect()
}

/// One target's outcome of a slot's backup.
pub struct Outcome {
    pub target: String,
    pub result: Result<Summary, BackupError>,
}

/// Backs the slot's root up to every target (or those named), each on its
/// own; `progress` hears each target's restic status lines. Each snapshot is
/// tagged with the slot and the image its root came from (what a restore
/// boots it with).
pub fn run(
    site: &Site,
    slot: &SlotPlan,
    owner: Option<&str>,
    only: &[&str],
    progress: &mut dyn FnMut(&str, &Status),
) -> Result<(snapshot::Taken, Vec<Outcome>), BackupError> {
    let repos = repos(site, owner, only)?;
    let root = Path::new(&slot.root);
    if !root.is_dir() {
        return Err(BackupError::NoRoot(slot.position.clone()));
    }
    let image = slot_root::record(site, slot)?.map(|r| r.image);
    let still = snapshot::take(
        root,
        &slot_root::state_dir(site, slot)
            .join("backup")
            .join(&slot.position),
    )?;
    let mut tags = vec!["pirack".to_string(), format!("slot={}", slot.key)];
    tags.extend(image.map(|i| format!("{IMAGE_TAG}{i}")));
    let outcomes = repos
        .iter()
        .map(|r| Outcome {
            target: r.target.clone(),
            result: r.backup(&still.path, &slot.position, &tags, &mut |s| {
                progress(&r.target, s)
            }),
        })
        .collect();
    Ok((still.taken, outcomes))
}

/// The tag naming the image a snapshot's root came from.
const IMAGE_TAG: &str = "image=";

/// A target's name and how an operation on it went.
pub type Done = (String, Result<(), BackupError>);

/// Applies the slot's retention at every target (or those named): its
/// snapshots beyond what the policy keeps are forgotten, and with `prune`
/// their data removed (else the owner's next prune does it).
pub fn forget(
    site: &Site,
    slot: &SlotPlan,
    owner: Option<&str>,
    only: &[&str],
    prune: bool,
) -> Result<Vec<Done>, BackupError> {
    let b = config(site)?;
    let retention = &b.policy(owner, &slot.position).retention;
    let keep = pirack_core::backup::plan::forget_args(retention, prune);
    Ok(repos(site, owner, only)?
        .iter()
        .map(|r| (r.target.clone(), r.forget(&slot.position, &keep)))
        .collect())
}

/// Checks the owner's repository at every target (or those named),
/// reading today's part of the data.
pub fn check(site: &Site, owner: Option<&str>, only: &[&str]) -> Result<Vec<Done>, BackupError> {
    let b = config(site)?;
    let day = crate::store::now_ms().div_euclid(86_400_000);
    let subset = pirack_core::backup::plan::check_subset(b.check_parts, day);
    Ok(repos(site, owner, only)?
        .iter()
        .map(|r| (r.target.clone(), r.check(&subset)))
        .collect())
}

/// A target's name and what it holds of a slot.
pub type Listed = (String, Result<Vec<Snapshot>, BackupError>);

/// The slot's snapshots at each target (or those named), oldest first;
/// a target that cannot be read is an error of its own.
pub fn list(
    site: &Site,
    slot: &SlotPlan,
    owner: Option<&str>,
    only: &[&str],
) -> Result<Vec<Listed>, BackupError> {
    Ok(repos(site, owner, only)?
        .iter()
        .map(|r| (r.target.clone(), r.snapshots(Some(&slot.position))))
        .collect())
}

/// What a restore put in service.
#[derive(Debug, Clone)]
pub struct Restored {
    pub record: Record,
    pub target: String,
    pub snapshot: Snapshot,
}

/// A target's name and its snapshots of a slot with the repository's size.
pub type Shown = (String, Result<(Vec<Snapshot>, u64), BackupError>);

/// The slot's snapshots at each target (or those named), with the size of
/// the owner's repository there.
pub fn show(
    site: &Site,
    slot: &SlotPlan,
    owner: Option<&str>,
    only: &[&str],
) -> Result<Vec<Shown>, BackupError> {
    Ok(repos(site, owner, only)?
        .iter()
        .map(|r| {
            let shown = r
                .snapshots(Some(&slot.position))
                .and_then(|s| Ok((s, r.size()?)));
            (r.target.clone(), shown)
        })
        .collect())
}

/// Builds the slot's root from a snapshot (its newest at the first target
/// that has one, unless named) and swaps it in, keeping the replaced root
/// for rollback; the root's image (what the slot boots) is the one the
/// snapshot's root came from; `progress` hears the target and the share
/// restored. Refused while the slot is powered on.
pub fn restore(
    site: &Site,
    slot: &SlotPlan,
    owner: Option<&str>,
    wanted: Option<&str>,
    only: &[&str],
    powered_on: bool,
    progress: &(dyn Fn(&str, f64) + Sync),
) -> Result<Restored, BackupError> {
    if powered_on {
        return Err(RootError::PoweredOn(slot.position.clone()).into());
    }
    let repos = repos(site, owner, only)?;
    let mut found = None;
    let mut problems = Vec::new();
    for r in &repos {
        match r.snapshots(Some(&slot.position)) {
            Ok(list) => {
                let pick = match wanted {
                    Some(w) => list
                        .into_iter()
                        .find(|s| s.id.starts_with(w) && w.len() >= 8 || s.short_id == w),
                    None => list.into_iter().next_back(),
                };
                if let Some(s) = pick {
                    found = Some((r, s));
                    break;
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    let Some((repo, snap)) = found else {
        let mut targets = repos
            .iter()
            .map(|r| r.target.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if !problems.is_empty() {
            targets = format!("{targets} ({})", problems.join("; "));
        }
        return Err(BackupError::NoSnapshot {
            slot: slot.position.clone(),
            wanted: wanted.unwrap_or("at all").to_string(),
            targets,
        });
    };
    // Its boot files are its image's: the tag, else (an older snapshot) the
    // image of the root in service, else none known (a root pirack did not
    // build, restored as it was).
    let image = snap
        .tags
        .iter()
        .find_map(|t| t.strip_prefix(IMAGE_TAG))
        .map(str::to_string)
        .or_else(|| {
            slot_root::record(site, slot)
                .ok()
                .flatten()
                .map(|r| r.image)
        })
        .unwrap_or_default();
    let staging = slot_root::staging(site, slot)?;
    let mut unpack = staging.clone().into_os_string();
    unpack.push(".restore");
    let unpack = PathBuf::from(unpack);
    clone::remove_tree(&unpack)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BackupError::Io { path, source }
    };
    std::fs::create_dir_all(&unpack).map_err(io(&unpack))?;
    let done = (|| -> Result<Record, BackupError> {
        repo.restore(&snap.id, &unpack, &|share| progress(&repo.target, share))?;
        // restic puts the tree back under its backed-up path.
        let backed_up = snap.paths.first().ok_or_else(|| BackupError::NoSnapshot {
            slot: slot.position.clone(),
            wanted: format!("{} with a path", snap.short_id),
            targets: repo.target.clone(),
        })?;
        let tree = unpack.join(backed_up.trim_start_matches('/'));
        std::fs::rename(&tree, &staging).map_err(io(&tree))?;
        Ok(slot_root::install(
            site,
            slot,
            &staging,
            &image,
            Method::Copy,
        )?)
    })();
    let _ = clone::remove_tree(&unpack);
    if done.is_err() {
        let _ = clone::remove_tree(&staging);
    }
    Ok(Restored {
        record: done?,
        target: repo.target.clone(),
        snapshot: snap,
    })
}
