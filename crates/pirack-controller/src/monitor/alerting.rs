//! From verdicts to alerts: the faults seen now grouped under their causes,
//! the open alerts brought in line with them (flapping ones held), and each
//! alert's notices sent when due.

use super::capacity;
use super::faults::{self, Causes, Change, Failing, Fault};
use super::notify::Notice;
use crate::Controller;
use crate::store::alerts::{AlertRow, Covered};
use crate::store::now_ms;
use pirack_core::inventory::SiteMonitor;
use pirack_core::monitor::flap::Flaps;
use pirack_core::monitor::health::Status;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The faults the checks see now, then power and space; and the slot
/// alerts to hold while their switches' verdicts are awaited.
pub(super) fn faults_now(ctl: &Controller, m: &SiteMonitor) -> (Vec<Fault>, HashSet<String>) {
    let w = ctl.monitor.lock();
    let mut failing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ((slot, check), h) in &w.health {
        if h.status == Status::Down {
            let why = w
                .why
                .get(&(slot.clone(), check.clone()))
                .map_or("failing", String::as_str);
            failing
                .entry(slot.clone())
                .or_default()
                .push(format!("{check}: {why}"));
        }
    }
    let failing: Vec<Failing> = failing
        .into_iter()
        .filter_map(|(key, whys)| {
            let row = ctl.store.mirror().slot(&key)?;
            let switch = key.split_once('/').map(|(s, _)| s.to_string())?;
            Some(Failing {
                slot: Covered {
                    key,
                    position: row.position,
                    owner: row.owner,
                    why: whys.join("; "),
                },
                switch,
            })
        })
        .collect();
    let causes = Causes {
        trunk_down: ctl
            .site
            .fileservers
            .iter()
            .find_map(|f| trunk_down(&f.trunk_interface)),
        switches_down: w
            .switches
            .iter()
            .filter(|(_, (h, _))| h.status == Status::Down)
            .map(|(n, (_, why))| (n.clone(), why.clone()))
            .collect(),
        switches_suspect: w
            .switches
            .iter()
            .chain(&w.supplies)
            .filter(|(_, (h, _))| h.status != Status::Down && h.fails > 0)
            .map(|(n, _)| n.clone())
            .collect(),
        supplies_down: w
            .supplies
            .iter()
            .filter(|(_, (h, _))| h.status == Status::Down)
            .map(|(n, (_, why))| (n.clone(), why.clone()))
            .collect(),
    };
    let mut all = faults::group(&failing, &causes);
    all.extend(capacity::faults(m, &w.draw_w, &w.disks));
    all.extend(ctl.backups.faults(ctl, m.disk_horizon));
    (all, faults::held(&failing, &causes))
}

/// The trunk, if this machine has it and its link is down.
fn trunk_down(trunk: &str) -> Option<String> {
    let state = std::fs::read_to_string(format!("/sys/class/net/{trunk}/operstate")).ok()?;
    (state.trim() == "down" || state.trim() == "lowerlayerdown").then(|| trunk.to_string())
}

/// How long a grouped alert (a switch, the trunk, power, space) gathers before
/// its first notice: the time its slots' checks take to reach a verdict, so
/// the notice lists them (as Alertmanager's `group_wait`). A slot's own alert
/// goes at once: its verdict is in.
fn gathering(m: &SiteMonitor) -> Duration {
    Duration::from_secs(m.checks.interval_s * u64::from(m.checks.down_after))
}

/// What a held alert's summary ends with while its fault flaps.
const FLAPPING: &str = " (flapping)";

/// What the alerting remembers between looks.
#[derive(Default)]
pub(super) struct Recall {
    flaps: Flaps,
    /// When each slot last left a grouped alert that resolved: a slot still
    /// failing then (its switch back, its Pi still booting) gathers like a
    /// grouped alert before its own is told.
    released: HashMap<String, i64>,
}

/// Brings the open alerts in line with the faults and sends what is due.
pub(super) async fn settle(
    ctl: &Arc<Controller>,
    m: &SiteMonitor,
    open: &mut Vec<AlertRow>,
    faults: &[Fault],
    frozen: &HashSet<String>,
    recall: &mut Recall,
) {
    let now = now_ms();
    let gather = gathering(m).as_millis() as i64;
    let Recall { flaps, released } = recall;
    flaps.prune(now, m.flap);
    released.retain(|_, at| now - *at < gather);
    for f in faults {
        flaps.present(&f.cause);
    }
    for change in faults::reconcile(faults, open, frozen) {
        let done = match change {
            // Its first notice goes out below, once the alert has gathered.
            Change::Open(f) => match ctl.store.open_alert(&f.cause, &f.summary, &f.slots).await {
                Ok(id) => match ctl.store.alert(id).await {
                    Ok(Some(a)) => {
                        flaps.opened(&a.cause, now, m.flap);
                        open.push(a);
                        Ok(())
                    }
                    Ok(None) => Ok(()),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
            Change::Update(id, f) => {
                let r = ctl.store.update_alert(id, &f.summary, &f.slots).await;
                if let (Ok(()), Some(a)) = (&r, open.iter_mut().find(|a| a.id == id)) {
                    a.summary = f.summary;
                    a.slots = f.slots;
                }
                r
            }
            Change::Resolve(id) => 'resolve: {
                let Some(a) = open.iter_mut().find(|a| a.id == id) else {
                    break 'resolve Ok(());
                };
                if !flaps.may_resolve(&a.cause, now, m.flap) {
                    // Held open while a flapping fault proves it stays away.
                    if a.summary.ends_with(FLAPPING) {
                        break 'resolve Ok(());
                    }
                    a.summary.push_str(FLAPPING);
                    break 'resolve ctl.store.update_alert(id, &a.summary, &a.slots).await;
                }
                let r = ctl.store.resolve_alert(id).await;
                if r.is_ok()
                    && let Some(i) = open.iter().position(|a| a.id == id)
                {
                    let a = open.remove(i);
                    if !a.cause.starts_with("slot:") {
                        released.extend(a.slots.iter().map(|s| (s.key.clone(), now)));
                    }
                    let a = AlertRow {
                        resolved_at: Some(now_ms()),
                        ..a
                    };
                    // Nobody hears of the end of what they never heard of.
                    if a.sent_at.is_some() {
                        ctl.monitor.deliver.notify(ctl, m, &a, Notice::Resolve);
                    }
                }
                r
            }
        };
        if let Err(e) = done {
            tracing::warn!("monitor: an alert not recorded: {e}");
        }
    }
    ctl.metrics.alerts_open.set(open.len() as i64);
    let repeat = m.repeat.as_millis() as i64;
    for a in open.iter_mut() {
        if frozen.contains(&a.cause) {
            continue;
        }
        let grouped = match a.cause.strip_prefix("slot:") {
            Some(key) => released.contains_key(key),
            None => true,
        };
        if a.sent_at.is_none() && (!grouped || now - a.opened_at >= gather) {
            ctl.monitor.deliver.notify(ctl, m, a, Notice::Fire);
            a.sent_at = Some(now);
            if let Err(e) = ctl.store.alert_sent(a.id, now, false).await {
                tracing::warn!("monitor: alert {}: {e}", a.id);
            }
        } else if a.sent_at.is_some_and(|at| now - at >= repeat) {
            ctl.monitor.deliver.notify(ctl, m, a, Notice::Repeat);
            a.sent_at = Some(now);
            a.repeats += 1;
            if let Err(e) = ctl.store.alert_sent(a.id, now, true).await {
                tracing::warn!("monitor: alert {}: {e}", a.id);
            }
        }
    }
}
