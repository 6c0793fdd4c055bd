//! Backups of the slots' roots with restic, taken on the fileserver from a
//! still image of the root (never over NFS), so the Pi keeps running and the
//! backup is one moment's. Each backup goes to every target on its own: a
//! target that fails does not keep the others from theirs. A restore builds
//! a new root from a snapshot beside the one in service and swaps it in like
//! a reimage, the replaced root kept for rollback. Blocking: call from a
//! blocking thread.

pub mod keys;
pub mod restic;
pub mod snapshot;

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

/// pirack's directory beside the roots (see `slot_root`).
fn state_dir(site: &Site) -> PathBuf {
    Path::new(&site.fileserver.export_root).join(".pirack")
}

fn config(site: &Site) -> Result<&SiteBackup, BackupError> {
    site.backup.as_ref().ok_or(BackupError::NotConfigured)
}

/// The slot's owner's repository at each target (or the one named).
pub fn repos(
    site: &Site,
    owner: Option<&str>,
    only: Option<&str>,
) -> Result<Vec<Repo>, BackupError> {
    let b = config(site)?;
    let cache = state_dir(site).join("restic-cache");
    let chosen: Vec<_> = b
        .targets
        .iter()
        .filter(|t| only.is_none_or(|n| t.name == n))
        .collect();
    if let (Some(n), true) = (only, chosen.is_empty()) {
        return Err(BackupError::NoTarget(n.to_string()));
    }
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

/// Backs the slot's root up to every target (or the one named), each on its
/// own; `progress` hears each target's restic status lines.
pub fn run(
    site: &Site,
    slot: &SlotPlan,
    owner: Option<&str>,
    only: Option<&str>,
    progress: &mut dyn FnMut(&str, &Status),
) -> Result<(snapshot::Taken, Vec<Outcome>), BackupError> {
    let repos = repos(site, owner, only)?;
    let root = Path::new(&slot.root);
    if !root.is_dir() {
        return Err(BackupError::NoRoot(slot.position.clone()));
    }
    let still = snapshot::take(root, &state_dir(site).join("backup").join(&slot.position))?;
    let tags = vec!["pirack".to_string(), format!("slot={}", slot.key)];
    let outcomes = repos
        .iter()
        .map(|r| Outcome {
            target: r.target.clone(),
            result: r.ensure().and_then(|()| {
                r.backup(&still.path, &slot.position, &tags, &mut |s| {
                    progress(&r.target, s)
                })
            }),
        })
        .collect();
    Ok((still.taken, outcomes))
}

/// A target's name and how an operation on it went.
pub type Done = (String, Result<(), BackupError>);

/// Applies the slot's retention at every target (or the one named): its
/// snapshots beyond what the policy keeps are forgotten and their data pruned.
pub fn forget(
    site: &Site,
    slot: &SlotPlan,
    owner: Option<&str>,
    only: Option<&str>,
) -> Result<Vec<Done>, BackupError> {
    let b = config(site)?;
    let keep = pirack_core::backup::plan::forget_args(&b.policy(owner, &slot.position).retention);
    Ok(repos(site, owner, only)?
        .iter()
        .map(|r| (r.target.clone(), r.forget(&slot.position, &keep)))
        .collect())
}

/// Checks the owner's repository at every target (or the one named),
/// reading today's part of the data.
pub fn check(
    site: &Site,
    owner: Option<&str>,
    only: Option<&str>,
) -> Result<Vec<Done>, BackupError> {
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

/// The slot's snapshots at each target (or the one named), oldest first;
/// a target that cannot be read is an error of its own.
pub fn list(
    site: &Site,
    slot: &SlotPlan,
    owner: Option<&str>,
    only: Option<&str>,
) -> Result<Vec<Listed>, BackupError> {
    Ok(repos(site, owner, only)?
        .iter()
        .map(|r| (r.target.clone(), r.snapshots(Some(&slot.position))))
        .collect())
}

/// Builds the slot's root from a snapshot (its newest at the first target
/// that has one, unless named) and swaps it in, keeping the replaced root
/// for rollback. Refused while the slot is powered on.
pub fn restore(
    site: &Site,
    slot: &SlotPlan,
    owner: Option<&str>,
    wanted: Option<&str>,
    only: Option<&str>,
    powered_on: bool,
) -> Result<Record, BackupError> {
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
    let staging = slot_root::staging(site, slot)?;
    let unpack = staging.with_extension("restore");
    clone::remove_tree(&unpack)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BackupError::Io { path, source }
    };
    std::fs::create_dir_all(&unpack).map_err(io(&unpack))?;
    let done = (|| {
        repo.restore(&snap.id, &unpack)?;
        // restic puts the tree back under its backed-up path.
        let backed_up = snap.paths.first().ok_or_else(|| BackupError::NoSnapshot {
            slot: slot.position.clone(),
            wanted: format!("{} with a path", snap.short_id),
            targets: repo.target.clone(),
        })?;
        let tree = unpack.join(backed_up.trim_start_matches('/'));
        std::fs::rename(&tree, &staging).map_err(io(&tree))?;
        let made = format!("backup:{}:{}", repo.target, snap.short_id);
        Ok(slot_root::install(
            site,
            slot,
            &staging,
            &made,
            Method::Copy,
        )?)
    })();
    let _ = clone::remove_tree(&unpack);
    if done.is_err() {
        let _ = clone::remove_tree(&staging);
    }
    done
}
