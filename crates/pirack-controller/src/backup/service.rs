//! Backups as the controller's operations: a slot's backup (scheduled or
//! asked for), its restore, and an owner's repository upkeep (prune, then a
//! rotating check), each an operation the API polls with its progress. One
//! operation at a time per owner (restic locks per repository, and a prune's
//! lock is exclusive) and per slot; what each target last did is kept in the
//! store and here, for the API, the rack view and the alerts.

use super::BackupError;
use crate::Controller;
use crate::actions::{By, op_id};
use crate::error::OpError;
use crate::monitor::capacity::Disk;
use crate::monitor::faults::Fault;
use crate::store::backups::{BackupStatus, RepoCheck};
use crate::store::now_ms;
use crate::store::ops::{OpStatus, Operation};
use crate::store::slots::Changes;
use crate::store::slots::SlotRow;
use pirack_core::backup::plan::owner_dir;
use pirack_core::lifecycle::Trigger;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How far an operation under way is.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Progress {
    pub operation: String,
    /// `backup`, `restore` or `upkeep`.
    pub kind: String,
    /// The target restic works on now.
    pub target: Option<String>,
    pub percent: f64,
}

#[derive(Default)]
pub(crate) struct Live {
    /// Each (slot, target)'s last backups, as in the store.
    pub status: BTreeMap<(String, String), BackupStatus>,
    /// Each (owner, target)'s last upkeep.
    pub checks: BTreeMap<(String, String), RepoCheck>,
    /// What runs, by slot key or `owner:NAME`; both are held while a slot's
    /// operation runs.
    pub running: HashMap<String, Progress>,
    /// When the scheduler first saw each slot with a root (Unix ms): the
    /// start of its freshness until its first backup.
    pub seen: HashMap<String, i64>,
    /// Each target's free space over time.
    pub space: BTreeMap<String, Disk>,
}

/// The backups' live state, and their faults as last judged.
#[derive(Default)]
pub struct Backups(Mutex<Live>, Mutex<Option<(Instant, Vec<Fault>)>>);

/// How long judged faults stand: they change at the pace of backups, and
/// the judgement reads every slot.
const JUDGED_FOR: Duration = Duration::from_secs(5);

impl Backups {
    /// What is wrong with the backups (see [`super::alerts`]).
    pub(crate) fn faults(&self, ctl: &Controller, horizon: Duration) -> Vec<Fault> {
        let Some(b) = &ctl.site.backup else {
            return Vec::new();
        };
        let mut judged = self.1.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, faults)) = judged.as_ref()
            && at.elapsed() < JUDGED_FOR
        {
            return faults.clone();
        }
        let rows = ctl.store.mirror().slots(None);
        let faults = super::alerts::faults(b, &self.lock(), &rows, now_ms(), horizon);
        *judged = Some((Instant::now(), faults.clone()));
        faults
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Live> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The slot's last backups at each target.
    pub fn statuses(&self, slot: &str) -> Vec<BackupStatus> {
        self.lock()
            .status
            .values()
            .filter(|s| s.slot == slot)
            .cloned()
            .collect()
    }

    /// The owner's repositories' last upkeep at each target.
    pub fn checks(&self, owner: Option<&str>) -> Vec<RepoCheck> {
        let dir = owner_dir(owner);
        self.lock()
            .checks
            .values()
            .filter(|c| c.owner == dir)
            .cloned()
            .collect()
    }

    /// What runs on the slot, and how far.
    pub fn progress(&self, slot: &str) -> Option<Progress> {
        self.lock().running.get(slot).cloned()
    }

    /// Operations under way.
    pub fn running(&self) -> usize {
        self.lock()
            .running
            .keys()
            .filter(|k| k.starts_with("owner:"))
            .count()
    }

    /// Reads what the store knows.
    pub async fn load(&self, ctl: &Controller) -> Result<(), crate::store::StoreError> {
        let status = ctl.store.backup_statuses().await?;
        let checks = ctl.store.repo_checks().await?;
        let mut l = self.lock();
        for s in status {
            l.status.insert((s.slot.clone(), s.target.clone()), s);
        }
        for c in checks {
            l.checks.insert((c.owner.clone(), c.target.clone()), c);
        }
        Ok(())
    }

    /// Takes each target's free space (a target that could not be read is
    /// logged and keeps its last figures).
    pub(super) fn note_space(
        &self,
        found: Vec<(String, Result<pirack_core::backup::space::Space, String>)>,
        now_ms: i64,
    ) {
        let mut l = self.lock();
        for (target, space) in found {
            match space {
                Ok(s) => l.space.entry(target).or_default().note(
                    now_ms as f64 / 1000.0,
                    s.total as f64,
                    s.free as f64,
                ),
                Err(e) => tracing::warn!("backup: free space at {target}: {e}"),
            }
        }
    }

    fn set(&self, key: &str, target: &str, percent: f64) {
        if let Some(p) = self.lock().running.get_mut(key) {
            p.target = Some(target.to_string());
            p.percent = percent;
        }
    }
}

/// The slot (if any) and its owner's repositories, held for one operation.
pub(super) struct Claim {
    ctl: Arc<Controller>,
    keys: Vec<String>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut l = self.ctl.backups.lock();
        for k in &self.keys {
            l.running.remove(k);
        }
    }
}

/// Holds `slot` (if any) and `owner`'s repositories for operation `op`.
pub(super) fn claim(
    ctl: &Arc<Controller>,
    slot: Option<&SlotRow>,
    owner: Option<&str>,
    op: &str,
    kind: &str,
) -> Result<Claim, OpError> {
    let mut keys: Vec<String> = slot.map(|s| s.key.clone()).into_iter().collect();
    keys.push(format!("owner:{}", owner_dir(owner)));
    let mut l = ctl.backups.lock();
    if let Some((k, p)) = keys.iter().find_map(|k| l.running.get(k).map(|p| (k, p))) {
        let what = match (k.strip_prefix("owner:"), slot) {
            (Some(o), _) => format!("owner {o}'s repositories"),
            (None, Some(s)) => format!("slot {}", s.position),
            (None, None) => k.clone(),
        };
        return Err(OpError::BackupBusy {
            what,
            by: format!("{} {}", p.kind, p.operation),
        });
    }
    let progress = Progress {
        operation: op.to_string(),
        kind: kind.to_string(),
        target: None,
        percent: 0.0,
    };
    for k in &keys {
        l.running.insert(k.clone(), progress.clone());
    }
    Ok(Claim {
        ctl: Arc::clone(ctl),
        keys,
    })
}

/// Runs `work` on a blocking thread as operation `op`, writing its progress
/// into the operation every second; the operation ends with its outcome.
pub(super) fn spawn<W>(ctl: &Arc<Controller>, op: Operation, claim: Claim, work: W)
where
    W: FnOnce(&(dyn Fn(&str, f64) + Sync)) -> Result<String, OpError> + Send + 'static,
{
    let ctl2 = Arc::clone(ctl);
    ctl.operations.spawn(async move {
        let key = claim.keys[0].clone();
        let ctl3 = Arc::clone(&ctl2);
        let mut job = tokio::task::spawn_blocking(move || {
            let progress = |target: &str, pct: f64| ctl3.backups.set(&key, target, pct);
            work(&progress)
        });
        let mut told = None;
        let mut every = tokio::time::interval(Duration::from_secs(1));
        let done = loop {
            tokio::select! {
                r = &mut job => break r,
                _ = every.tick() => {
                    let now = ctl2.backups.lock().running.get(&claim.keys[0]).cloned();
                    if let Some(p) = now.filter(|p| Some(p) != told.as_ref()) {
                        let detail = match &p.target {
                            Some(t) => format!("{} at {t}: {:.0} %", p.kind, p.percent * 100.0),
                            None => format!("{}: starting", p.kind),
                        };
                        let _ = ctl2.store.update_op(&op.id, OpStatus::Running, None, &detail, None).await;
                        told = Some(p);
                    }
                }
            }
        };
        drop(claim);
        let (status, detail, code) = match done {
            Ok(Ok(d)) => (OpStatus::Succeeded, d, None),
            Ok(Err(e)) => (OpStatus::Failed, e.to_string(), Some(e.code())),
            Err(e) => (OpStatus::Failed, format!("{e}"), Some("internal")),
        };
        if let Err(e) = ctl2.store.update_op(&op.id, status, None, &detail, code).await {
            tracing::error!("operation {}: cannot record its end: {e}", op.id);
        }
    });
}

/// Refused at once: a site without backups, or a target it does not have.
fn targets_known(ctl: &Controller, names: &[String]) -> Result<(), OpError> {
    let b = ctl.site.backup.as_ref().ok_or(BackupError::NotConfigured)?;
    match names.iter().find(|n| b.target(n).is_none()) {
        Some(n) => Err(BackupError::NoTarget(n.clone()).into()),
        None => Ok(()),
    }
}

/// Backs the slot's root up now to the targets named (every one if none),
/// as an operation.
pub async fn back_up(
    ctl: &Arc<Controller>,
    slot: &SlotRow,
    only: Vec<String>,
) -> Result<Operation, OpError> {
    targets_known(ctl, &only)?;
    let plan = ctl
        .slot_plan(&slot.key)
        .cloned()
        .ok_or_else(|| OpError::NotInPlan(slot.key.clone()))?;
    let id = op_id()?;
    let claim = claim(ctl, Some(slot), slot.owner.as_deref(), &id, "backup")?;
    let op = ctl
        .store
        .start_op(&id, "backup", Some(&slot.key), slot.owner.as_deref())
        .await?;
    let (ctl2, row) = (Arc::clone(ctl), slot.clone());
    let rt = tokio::runtime::Handle::current();
    spawn(ctl, op.clone(), claim, move |progress| {
        let site = &ctl2.site;
        let owner = row.owner.as_deref();
        let names: Vec<&str> = only.iter().map(String::as_str).collect();
        let at = now_ms();
        let (taken, outcomes) = super::run(site, &plan, owner, &names, &mut |t, s| {
            progress(t, s.percent_done)
        })?;
        // Retention at the targets that took the backup, in one go; the data
        // goes at the owner's next upkeep.
        let took: Vec<&str> = outcomes
            .iter()
            .filter(|o| o.result.is_ok())
            .map(|o| o.target.as_str())
            .collect();
        let kept: HashMap<String, Result<(), BackupError>> = match took.is_empty() {
            true => HashMap::new(),
            false => super::forget(site, &plan, owner, &took, false)
                .map(|done| done.into_iter().collect())
                .unwrap_or_default(),
        };
        let mut lines = Vec::new();
        let mut failed = false;
        for o in &outcomes {
            let why = o.result.as_ref().err().map(ToString::to_string);
            let tried = match (&o.result, why.as_deref()) {
                (Ok(s), _) => Ok((
                    s.snapshot_id.as_str(),
                    s.total_files_processed,
                    s.data_added,
                )),
                (Err(_), e) => Err(e.unwrap_or_default()),
            };
            let line = match tried {
                Ok((id, files, added)) => {
                    let kept = match kept.get(&o.target) {
                        Some(Err(e)) => format!("; retention not applied: {e}"),
                        _ => String::new(),
                    };
                    format!(
                        "to {}: snapshot {} ({}), {files} files, {added} bytes added{kept}",
                        o.target,
                        &id[..id.len().min(8)],
                        taken.name()
                    )
                }
                Err(e) => {
                    failed = true;
                    format!("to {}: {e}", o.target)
                }
            };
            rt.block_on(record(&ctl2, &row, &o.target, at, tried, &line));
            lines.push(line);
        }
        let summary = format!("{}: {}", row.position, lines.join("; "));
        match failed {
            false => Ok(summary),
            true => Err(OpError::Backup(BackupError::Failed(summary))),
        }
    });
    Ok(op)
}

/// Keeps a target's outcome: in the store, here, and as an event on the slot.
async fn record(
    ctl: &Controller,
    row: &SlotRow,
    target: &str,
    at: i64,
    tried: crate::store::backups::Tried<'_>,
    line: &str,
) {
    match ctl
        .store
        .record_backup(&row.key, target, row.owner.as_deref(), at, tried)
        .await
    {
        Ok(s) => {
            ctl.backups
                .lock()
                .status
                .insert((row.key.clone(), target.to_string()), s);
        }
        Err(e) => tracing::warn!("{}: backup not recorded: {e}", row.position),
    }
    ctl.note(row, None, "backup", target, line).await;
}

/// Prunes the owner's repository at `target` and checks today's part of it.
pub(super) async fn upkeep(
    ctl: &Arc<Controller>,
    owner: Option<String>,
    target: String,
) -> Result<Operation, OpError> {
    let id = op_id()?;
    let claim = claim(ctl, None, owner.as_deref(), &id, "upkeep")?;
    let op = ctl
        .store
        .start_op(&id, "backup-upkeep", None, owner.as_deref())
        .await?;
    let ctl2 = Arc::clone(ctl);
    let rt = tokio::runtime::Handle::current();
    spawn(ctl, op.clone(), claim, move |progress| {
        progress(&target, 0.0);
        let repo = super::repos(&ctl2.site, owner.as_deref(), &[target.as_str()])?
            .pop()
            .ok_or_else(|| BackupError::NoTarget(target.clone()))?;
        let b = ctl2.site.backup.as_ref().expect("backups configured");
        let day = now_ms().div_euclid(86_400_000);
        let subset = pirack_core::backup::plan::check_subset(b.check_parts, day);
        let done = repo.prune().and_then(|()| {
            progress(&target, 0.5);
            repo.check(&subset)
        });
        let c = RepoCheck {
            owner: owner_dir(owner.as_deref()).to_string(),
            target: target.clone(),
            checked_at: now_ms(),
            check_error: done.as_ref().err().map(ToString::to_string),
        };
        if let Err(e) = rt.block_on(ctl2.store.record_check(&c)) {
            tracing::warn!("backup upkeep not recorded: {e}");
        }
        ctl2.backups
            .lock()
            .checks
            .insert((c.owner.clone(), c.target.clone()), c.clone());
        done?;
        Ok(format!(
            "{}'s repository at {target}: pruned, and part {subset} of its data checked",
            c.owner
        ))
    });
    Ok(op)
}

/// Which snapshot a restore puts in service.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// A snapshot's id or short id [default: the newest].
    #[serde(default)]
    pub snapshot: Option<String>,
    /// The target to restore from [default: the first that has it].
    #[serde(default)]
    pub target: Option<String>,
}

/// Builds the slot's root from a snapshot and swaps it in, as a reimage
/// does: the slot must be off, and the replaced root is kept for rollback.
pub async fn restore(
    ctl: &Arc<Controller>,
    slot: &SlotRow,
    req: RestoreRequest,
    by: &By,
) -> Result<Operation, OpError> {
    targets_known(ctl, req.target.as_slice())?;
    let id = op_id()?;
    let claim = claim(ctl, Some(slot), slot.owner.as_deref(), &id, "restore")?;
    let row = ctl
        .store
        .transition(
            slot,
            Trigger::Reimage,
            &format!("restore from a backup by {}", by.name),
            Changes {
                actor: by.token.clone(),
                ..Changes::default()
            },
        )
        .await?;
    let op = ctl
        .store
        .start_op(&id, "restore", Some(&row.key), row.owner.as_deref())
        .await?;
    let json = serde_json::to_string(&req).map_err(|e| OpError::Internal(e.to_string()))?;
    ctl.store.set_op_request(&id, &json).await?;
    run_restore(ctl, op.clone(), claim, row, req);
    Ok(op)
}

/// Starts again a restore a stopped controller cut short (the root in
/// service is whole either way: the old one, or the restored one swapped in).
pub async fn resume_restore(
    ctl: &Arc<Controller>,
    slot: &SlotRow,
    op: &Operation,
) -> Result<(), OpError> {
    let req = match ctl.store.op_request(&op.id).await? {
        Some(json) => serde_json::from_str(&json).map_err(|e| OpError::Internal(e.to_string()))?,
        None => RestoreRequest::default(),
    };
    let claim = claim(ctl, Some(slot), slot.owner.as_deref(), &op.id, "restore")?;
    run_restore(ctl, op.clone(), claim, slot.clone(), req);
    Ok(())
}

fn run_restore(
    ctl: &Arc<Controller>,
    op: Operation,
    claim: Claim,
    row: SlotRow,
    req: RestoreRequest,
) {
    let ctl2 = Arc::clone(ctl);
    let rt = tokio::runtime::Handle::current();
    spawn(ctl, op, claim, move |progress| {
        progress(req.target.as_deref().unwrap_or("the first target"), 0.0);
        let plan = ctl2
            .slot_plan(&row.key)
            .cloned()
            .ok_or_else(|| OpError::NotInPlan(row.key.clone()))?;
        let only: Vec<&str> = req.target.iter().map(String::as_str).collect();
        let done = super::restore(
            &ctl2.site,
            &plan,
            row.owner.as_deref(),
            req.snapshot.as_deref(),
            &only,
            false,
            progress,
        );
        match done {
            Ok(r) => {
                progress(&r.target, 1.0);
                let what = format!(
                    "restore of snapshot {} ({}) from {}",
                    r.snapshot.short_id, r.snapshot.time, r.target
                );
                rt.block_on(ctl2.root_done(&row.key, Ok(r.record), &what))
            }
            Err(e) => {
                let cause = format!("restore failed: {e}; the root in service is unchanged");
                let _ = rt.block_on(ctl2.apply(
                    &row.key,
                    Trigger::RootFailed,
                    &cause,
                    Changes::default(),
                ));
                Err(e.into())
            }
        }
    });
}
