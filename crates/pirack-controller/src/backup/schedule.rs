//! When backups run inside `pirack serve`: each slot with a root whose policy
//! keeps backups, at its own time in the window (see
//! `pirack_core::backup::plan::next_due`), to each target that is due; a
//! target whose last try failed is tried again a quarter period later (an
//! hour at most). After an outage every slot is due at once, and `PARALLEL`
//! bounds them. Each owner's repository at each target is pruned and
//! checked once a period, and the targets' free space sampled. A rack
//! controller backs up the slots it serves.

use super::service::{self, Backups};
use crate::Controller;
use crate::error::OpError;
use crate::store::now_ms;
use crate::store::slots::SlotRow;
use pirack_core::backup::plan::{SiteBackup, next_due, owner_dir};
use pirack_core::lifecycle::State;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_secs(2);
/// Backups at once across the site: each reads a root and hashes it.
const PARALLEL: usize = 2;
const SPACE_EVERY: Duration = Duration::from_secs(300);

/// Runs the site's backups for as long as the controller runs.
pub async fn run(ctl: Arc<Controller>) {
    let Some(b) = ctl.site.backup.clone() else {
        return;
    };
    if ctl.site.monitor.is_none() {
        tracing::warn!("backup: the site has no monitor: section, so backups raise no alerts");
    }
    if let Err(e) = ctl.backups.load(&ctl).await {
        tracing::error!("backup: reading the last backups: {e}");
    }
    let mut space_at: Option<Instant> = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if space_at.is_none_or(|at| at.elapsed() >= SPACE_EVERY) {
            space_at = Some(Instant::now());
            let b2 = b.clone();
            if let Ok(found) = tokio::task::spawn_blocking(move || super::space::measure(&b2)).await
            {
                ctl.backups.note_space(found, now_ms());
            }
        }
        let now = now_ms();
        for row in ctl.store.mirror().slots(None) {
            if !ctl.serves(&row.key) {
                continue;
            }
            if ctl.backups.running() >= PARALLEL {
                break;
            }
            let Some(only) = due(&ctl.backups, &b, &row, now) else {
                continue;
            };
            match service::back_up(&ctl, &row, only).await {
                Ok(_) | Err(OpError::BackupBusy { .. }) => {}
                Err(e) => tracing::warn!("backup: {}: {e}", row.position),
            }
        }
        let upkeep = match ctl.keeps_repositories() {
            true => upkeep_due(&ctl.backups, &b, now),
            false => Vec::new(),
        };
        for (owner, target) in upkeep {
            if ctl.backups.running() >= PARALLEL {
                break;
            }
            match service::upkeep(&ctl, owner, target).await {
                Ok(_) | Err(OpError::BackupBusy { .. }) => {}
                Err(e) => tracing::warn!("backup upkeep: {e}"),
            }
        }
    }
}

/// Whether the slot holds a root its policy backs up.
pub(super) fn kept(b: &SiteBackup, row: &SlotRow) -> bool {
    row.image.is_some()
        && !matches!(
            row.state,
            State::BuildingRoot | State::Reimaging | State::Decommissioned
        )
        && b.policy(row.owner.as_deref(), &row.position).enabled
}

/// The targets the slot's backup is due at (empty: all of them), if any.
fn due(backups: &Backups, b: &SiteBackup, row: &SlotRow, now: i64) -> Option<Vec<String>> {
    if !kept(b, row) {
        return None;
    }
    let w = b.policy(row.owner.as_deref(), &row.position).window;
    let retry = (w.every / 4).min(Duration::from_secs(3_600)).as_millis() as i64;
    let mut live = backups.lock();
    let seen = *live.seen.entry(row.key.clone()).or_insert(now);
    let at = |from_ms: i64| next_due(&row.key, &w, from_ms.div_euclid(1000)) * 1000;
    let targets: Vec<String> = b
        .targets
        .iter()
        .filter(|t| {
            let when = match live
                .status
                .get(&(row.key.clone(), t.name.clone()))
                .filter(|s| s.owner == row.owner)
            {
                Some(s) if s.last_error.is_some() => s.last_attempt_at + retry,
                Some(s) => at(s.last_attempt_at),
                None => at(seen),
            };
            now >= when
        })
        .map(|t| t.name.clone())
        .collect();
    match targets.len() {
        0 => None,
        n if n == b.targets.len() => Some(Vec::new()),
        _ => Some(targets),
    }
}

/// The repositories due their prune and check: a period after their last
/// one, and at once when they have a good backup and were never checked.
fn upkeep_due(backups: &Backups, b: &SiteBackup, now: i64) -> Vec<(Option<String>, String)> {
    let every = b.window.every.as_millis() as i64;
    let live = backups.lock();
    let mut due: Vec<(Option<String>, String)> = live
        .status
        .values()
        .filter(|s| s.last_ok_at.is_some())
        .filter(|s| {
            let key = (owner_dir(s.owner.as_deref()).to_string(), s.target.clone());
            live.checks
                .get(&key)
                .is_none_or(|c| now - c.checked_at >= every)
        })
        .map(|s| (s.owner.clone(), s.target.clone()))
        .collect();
    due.sort();
    due.dedup();
    due
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::alerts::tests::{row, site, status};

    #[test]
    fn each_target_when_due_and_a_failed_one_sooner() {
        let b = site();
        let a1 = row("A-01", "acme");
        let backups = Backups::default();
        let day = 20_000 * 86_400_000i64;
        // First seen: due in its window that day, at every target at once.
        assert_eq!(due(&backups, &b, &a1, day), None);
        let first = next_due(&a1.key, &b.window, day / 1000) * 1000;
        assert_eq!(due(&backups, &b, &a1, first), Some(Vec::new()));
        {
            let mut l = backups.lock();
            l.status.insert(
                (a1.key.clone(), "local".into()),
                status(&a1, "local", Some(first), None),
            );
            let mut failed = status(&a1, "offsite", None, Some("refused"));
            failed.last_attempt_at = first;
            l.status.insert((a1.key.clone(), "offsite".into()), failed);
        }
        // The failed target again a quarter period later (an hour at most).
        assert_eq!(due(&backups, &b, &a1, first + 3_599_000), None);
        assert_eq!(
            due(&backups, &b, &a1, first + 3_600_000),
            Some(vec!["offsite".to_string()])
        );
        // The next day, both.
        assert_eq!(due(&backups, &b, &a1, first + 86_400_000), Some(Vec::new()));
        // Upkeep: at once for a repository with a good backup, then a period on.
        assert_eq!(
            upkeep_due(&backups, &b, first),
            vec![(Some("acme".to_string()), "local".to_string())]
        );
    }
}
