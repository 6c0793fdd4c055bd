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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::backups::BackupStatus;
    use pirack_core::backup::model::Retention;
    use pirack_core::backup::plan::{Place, Target, Window};
    use pirack_core::lifecycle::State;

    pub(in crate::backup) fn site() -> SiteBackup {
        let hour = Duration::from_secs(3_600);
        SiteBackup {
            keys: "/k".into(),
            targets: ["local", "offsite"]
                .map(|n| Target {
                    name: n.into(),
                    place: Place::Path(format!("/b/{n}").into()),
                })
                .to_vec(),
            window: Window {
                every: 24 * hour,
                start: hour,
                window: 4 * hour,
            },
            retention: Retention::default(),
            fresh: 36 * hour,
            space_warn_pct: 10,
            check_parts: 30,
            owners: Default::default(),
            slots: Default::default(),
        }
    }

    pub(in crate::backup) fn row(position: &str, owner: &str) -> SlotRow {
        SlotRow {
            key: format!("sw-a/{}", &position[2..]),
            position: position.into(),
            state: State::Up,
            owner: Some(owner.into()),
            pinned_owner: None,
            image: Some("tiny-1".into()),
            board: None,
            state_since: 0,
            recoveries: 0,
            version: 0,
            in_inventory: true,
        }
    }

    pub(in crate::backup) fn status(
        r: &SlotRow,
        target: &str,
        ok_at: Option<i64>,
        error: Option<&str>,
    ) -> BackupStatus {
        BackupStatus {
            slot: r.key.clone(),
            target: target.into(),
            owner: r.owner.clone(),
            last_ok_at: ok_at,
            last_snapshot: ok_at.map(|_| "0123abcd".into()),
            last_attempt_at: ok_at.unwrap_or(0),
            last_error: error.map(str::to_string),
            files: 1,
            data_added: 1,
        }
    }

    #[test]
    fn failures_stale_slots_space_and_checks_are_one_fault_each() {
        let b = site();
        let now = 100 * 3_600_000;
        let (a1, a5, a7) = (
            row("A-01", "acme"),
            row("A-05", "globex"),
            row("A-07", "acme"),
        );
        let mut live = Live::default();
        let fresh = Some(now - 3_600_000);
        for (r, t, ok, err) in [
            (&a1, "local", fresh, None),
            (&a1, "offsite", fresh, Some("connection refused")),
            (&a5, "local", fresh, None),
            (&a5, "offsite", Some(now - 40 * 3_600_000), None),
        ] {
            live.status
                .insert((r.key.clone(), t.into()), status(r, t, ok, err));
        }
        // A-07 seen two days ago and never backed up; its old owner's backup
        // does not count.
        live.seen.insert(a7.key.clone(), now - 48 * 3_600_000);
        let old = SlotRow {
            owner: Some("initech".into()),
            ..a7.clone()
        };
        live.status.insert(
            (a7.key.clone(), "local".into()),
            status(&old, "local", fresh, None),
        );
        live.space
            .entry("local".into())
            .or_default()
            .note(0.0, 100.0, 5.0);
        live.checks.insert(
            ("acme".into(), "local".into()),
            crate::store::backups::RepoCheck {
                owner: "acme".into(),
                target: "local".into(),
                checked_at: now,
                check_error: Some("pack 1234 damaged".into()),
            },
        );
        let horizon = Duration::from_secs(14 * 86_400);
        let f = faults(
            &b,
            &live,
            &[a1.clone(), a5.clone(), a7.clone()],
            now,
            horizon,
        );
        let by = |cause: &str| {
            f.iter()
                .find(|x| x.cause == cause)
                .unwrap_or_else(|| panic!("{cause}: {f:?}"))
        };
        let failed = by("backup:offsite");
        assert_eq!(failed.slots.len(), 1);
        assert!(failed.summary.contains("connection refused"));
        let stale_local: Vec<&str> = by("backup-stale:local")
            .slots
            .iter()
            .map(|s| s.position.as_str())
            .collect();
        assert_eq!(stale_local, ["A-07"]);
        let stale_off: Vec<&str> = by("backup-stale:offsite")
            .slots
            .iter()
            .map(|s| s.position.as_str())
            .collect();
        assert_eq!(stale_off, ["A-05", "A-07"]);
        assert!(by("backup-space:local").summary.contains("5.0 % free"));
        assert!(
            by("backup-check:local:acme")
                .summary
                .contains("pack 1234 damaged")
        );
        assert_eq!(f.len(), 5, "{f:?}");
        // A slot whose policy keeps no backups raises nothing.
        let mut off = b.clone();
        off.slots.insert(
            "A-07".into(),
            pirack_core::backup::plan::Checked {
                enabled: Some(false),
                ..Default::default()
            },
        );
        let f = faults(&off, &live, &[a7], now, horizon);
        assert!(f.iter().all(|x| x.slots.is_empty()), "{f:?}");
    }
}
