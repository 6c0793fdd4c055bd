//! What is wrong with the backups, as the monitor's faults (one alert per
//! target and kind, covering the slots it concerns, so their owners hear of
//! their own): backups that failed at a target (restic's words), slots whose
//! last good backup at a target is older than their freshness, a target
//! short of space or projected to fill, and a repository whose check failed.

use super::schedule::kept;
use super::service::Live;
use crate::monitor::faults::Fault;
use crate::store::alerts::Covered;
use crate::store::slots::SlotRow;
use pirack_core::backup::plan::SiteBackup;
use std::time::Duration;

/// The faults of the backups at `now` (Unix ms); `horizon`: how soon a
/// projected fill is worth telling.
pub(crate) fn faults(
    b: &SiteBackup,
    live: &Live,
    rows: &[SlotRow],
    now: i64,
    horizon: Duration,
) -> Vec<Fault> {
    let mut out = Vec::new();
    for t in &b.targets {
        let mut failed = Vec::new();
        let mut stale = Vec::new();
        for row in rows.iter().filter(|r| kept(b, r)) {
            let status = live
                .status
                .get(&(row.key.clone(), t.name.clone()))
                .filter(|s| s.owner == row.owner);
            let covered = |why: String| Covered {
                key: row.key.clone(),
                position: row.position.clone(),
                owner: row.owner.clone(),
                why,
            };
            if let Some(e) = status.and_then(|s| s.last_error.as_ref()) {
                failed.push(covered(e.clone()));
            }
            let fresh = b.policy(row.owner.as_deref(), &row.position).fresh;
            let since = match status.and_then(|s| s.last_ok_at) {
                Some(ok) => Some(ok),
                None => live.seen.get(&row.key).copied(),
            };
            if let Some(since) = since
                && now - since > fresh.as_millis() as i64
            {
                let why = match status.and_then(|s| s.last_ok_at) {
                    Some(_) => format!("last good backup {} h ago", (now - since) / 3_600_000),
                    None => "no good backup yet".to_string(),
                };
                stale.push(covered(why));
            }
        }
        if let Some(first) = failed.first() {
            out.push(Fault {
                cause: format!("backup:{}", t.name),
                summary: format!(
                    "backups to {} failed for {} slot(s): {}",
                    t.name,
                    failed.len(),
                    first.why
                ),
                slots: failed,
            });
        }
        if !stale.is_empty() {
            out.push(Fault {
                cause: format!("backup-stale:{}", t.name),
                summary: format!(
                    "{} slot(s) have no good backup at {} within their freshness",
                    stale.len(),
                    t.name
                ),
                slots: stale,
            });
        }
        if let Some(summary) = live.space.get(&t.name).and_then(|d| {
            d.judge(
                &format!("backup target {}", t.name),
                f64::from(b.space_warn_pct),
                horizon,
            )
        }) {
            out.push(Fault {
                cause: format!("backup-space:{}", t.name),
                summary,
                slots: Vec::new(),
            });
        }
    }
    for c in live.checks.values() {
        if let Some(e) = &c.check_error {
            out.push(Fault {
                cause: format!("backup-check:{}:{}", c.target, c.owner),
                summary: format!(
                    "the upkeep of {}'s repository at {} failed: {e}",
                    c.owner, c.target
                ),
                slots: Vec::new(),
            });
        }
    }
    out
}
