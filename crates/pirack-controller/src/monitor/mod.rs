//! Watching the Pis that are up and telling the right people once. Each slot
//! in `up` is probed every interval (ICMPv6 echo, TCP connects, optionally a
//! request through the proxy), its checks turned into a verdict with
//! hysteresis; each switch is polled for its ports' PoE draw and its supply,
//! which also says whether it answers ([`probe`]). Failures become faults
//! grouped under their cause ([`faults`]), faults become alerts in the store
//! ([`alerting`]), and each alert's first notice, repeats and recovery go to
//! the staff's routes and to the routes of the customers whose slots it covers
//! ([`deliver`]).
//!
//! A slot the controller is working on (not `up`) or in a maintenance window
//! is not probed, and its alert neither repeats nor resolves until it is
//! watched again.

mod alerting;
pub mod capacity;
pub mod deliver;
pub mod faults;
pub mod http;
pub mod notify;
pub mod ping;
mod probe;

use crate::Controller;
use crate::metrics::{CheckLabels, ResultLabel, SlotLabel};
use crate::store::alerts::WindowRow;
use crate::store::now_ms;
use pirack_core::inventory::SiteMonitor;
use pirack_core::lifecycle::State;
use pirack_core::monitor::chart::Chart;
use pirack_core::monitor::health::{Health, Status, Thresholds};
use pirack_core::switch::port::{Supply, SupplyStatus};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often the loop looks for due work.
const TICK: Duration = Duration::from_millis(250);

/// A switch's poll: each watched slot's draw (W), and its PoE supply's state
/// and total draw where the profile reads them.
type Polled = (Vec<(String, Option<f64>)>, Supply);

/// One probe's result.
enum Seen {
    Check {
        slot: String,
        /// The slot's `state_since` when probed: a result from before a
        /// state change is dropped.
        since: i64,
        check: String,
        result: Result<Option<Duration>, String>,
    },
    Switch {
        name: String,
        result: Result<Polled, String>,
    },
}

/// What the rack view shows of a slot's checks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SlotView {
    /// Each check's status (`unknown`, `up`, `down`).
    pub checks: BTreeMap<String, &'static str>,
    pub rtt_ms: Option<f64>,
    pub watts: Option<f64>,
    /// The last day, a point a minute: Unix ms, round trip (ms), draw (W).
    pub samples: Chart,
}

#[derive(Default)]
struct Watch {
    health: HashMap<(String, String), Health>,
    /// Why each failing check last failed.
    why: HashMap<(String, String), String>,
    switches: HashMap<String, (Health, String)>,
    /// Each switch's PoE supply: whether it is on, and its state when not.
    supplies: HashMap<String, (Health, String)>,
    views: HashMap<String, SlotView>,
    /// Each switch's PoE supply's draw (W).
    draw_w: BTreeMap<String, u64>,
    disks: BTreeMap<String, capacity::Disk>,
}

/// The monitor's live state, for the API.
#[derive(Default)]
pub struct Monitor {
    watch: Mutex<Watch>,
    pub deliver: deliver::Deliveries,
}

/// A slot's state at a glance, for the rack view's tiles.
#[derive(Debug, Clone, Serialize)]
pub struct Glance {
    pub checks: BTreeMap<String, &'static str>,
    pub rtt_ms: Option<f64>,
    pub watts: Option<f64>,
}

impl Monitor {
    /// What the rack view shows of `slot`.
    pub fn view(&self, slot: &str) -> Option<SlotView> {
        self.lock().views.get(slot).cloned()
    }

    /// The tiles' view of the slots in `keys`.
    pub fn glance<'a>(&self, keys: impl Iterator<Item = &'a str>) -> BTreeMap<String, Glance> {
        let w = self.lock();
        keys.filter_map(|k| {
            let v = w.views.get(k)?;
            let g = Glance {
                checks: v.checks.clone(),
                rtt_ms: v.rtt_ms,
                watts: v.watts,
            };
            Some((k.to_string(), g))
        })
        .collect()
    }

    /// Each switch's supply's last draw (W).
    pub fn draws(&self) -> BTreeMap<String, u64> {
        self.lock().draw_w.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Watch> {
        self.watch.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs the checks and alerts for as long as the controller runs.
pub async fn run(ctl: Arc<Controller>) {
    let Some(m) = ctl.site.monitor.clone() else {
        return;
    };
    for w in &m.warnings {
        tracing::warn!("monitor: {w}");
    }
    let pinger = match ping::Pinger::new() {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            tracing::error!("monitor: ping checks are off: {e}");
            None
        }
    };
    let (tx, mut rx) = mpsc::channel::<Seen>(4096);
    let mut next: HashMap<String, Instant> = HashMap::new();
    let mut open = match ctl.store.open_alerts().await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("monitor: reading the open alerts: {e}");
            Vec::new()
        }
    };
    let mut windows: (Option<Instant>, Vec<WindowRow>) = (None, Vec::new());
    let mut disk_at: Option<Instant> = None;
    let mut recall = alerting::Recall::default();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some(seen) = rx.recv() => {
                apply(&ctl, &m, seen).await;
                while let Ok(more) = rx.try_recv() {
                    apply(&ctl, &m, more).await;
                }
            }
        }
        if windows
            .0
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(2))
        {
            match ctl.store.maintenance(now_ms()).await {
                Ok(w) => windows = (Some(Instant::now()), w),
                Err(e) => tracing::warn!("monitor: reading maintenance windows: {e}"),
            }
        }
        let mut frozen = probe::probe_due(&ctl, &m, pinger.as_ref(), &tx, &mut next, &windows.1);
        if disk_at.is_none_or(|at| at.elapsed() >= capacity::DISK_EVERY) {
            disk_at = Some(Instant::now());
            let now_s = now_ms() as f64 / 1000.0;
            let mut paths: Vec<&std::path::Path> = ctl
                .site
                .fileservers
                .iter()
                .map(|f| std::path::Path::new(&f.export_root))
                .collect();
            paths.push(&ctl.paths.images);
            paths.sort();
            paths.dedup();
            let mut w = ctl.monitor.lock();
            capacity::sample(&mut w.disks, &paths, now_s);
        }
        let (faults, held) = alerting::faults_now(&ctl, &m);
        frozen.extend(held);
        alerting::settle(&ctl, &m, &mut open, &faults, &frozen, &mut recall).await;
    }
}

/// Takes one result: the check's verdict, and an event on the slot when it changed.
async fn apply(ctl: &Controller, m: &SiteMonitor, seen: Seen) {
    match seen {
        Seen::Check {
            slot,
            since,
            check,
            result,
        } => {
            let Some(row) = ctl.store.mirror().slot(&slot) else {
                return;
            };
            if row.state != State::Up || row.state_since != since {
                return;
            }
            let c = m.checks_for(row.owner.as_deref(), &row.position);
            let t = Thresholds {
                down_after: c.down_after,
                up_after: c.up_after,
            };
            let m = ctl.metrics;
            let result_label = if result.is_ok() { "ok" } else { "fail" };
            m.probes
                .get_or_create(&ResultLabel {
                    result: result_label.into(),
                })
                .inc();
            if let Ok(Some(rtt)) = &result {
                m.rtt
                    .get_or_create(&SlotLabel { slot: slot.clone() })
                    .observe(rtt.as_secs_f64());
            }
            let changed = {
                let mut w = ctl.monitor.lock();
                let k = (slot.clone(), check.clone());
                let changed = w
                    .health
                    .entry(k.clone())
                    .or_default()
                    .observe(result.is_ok(), t);
                match &result {
                    Err(why) => {
                        w.why.insert(k, why.clone());
                    }
                    Ok(_) => {
                        w.why.remove(&k);
                    }
                }
                let status = w.health[&(slot.clone(), check.clone())].status;
                let view = w.views.entry(slot.clone()).or_default();
                view.checks.insert(check.clone(), status.name());
                if check == "ping" {
                    view.rtt_ms = result
                        .as_ref()
                        .ok()
                        .copied()
                        .flatten()
                        .map(|d| d.as_secs_f64() * 1000.0);
                    let (rtt, watts) = (view.rtt_ms, view.watts);
                    view.samples.push(now_ms(), rtt, watts);
                }
                changed
            };
            if let Some(status) = changed {
                let labels = CheckLabels {
                    slot: slot.clone(),
                    check: check.clone(),
                };
                match status {
                    Status::Up => {
                        m.check_up.get_or_create(&labels).set(1);
                    }
                    Status::Down => {
                        m.check_up.get_or_create(&labels).set(0);
                    }
                    Status::Unknown => {
                        m.check_up.remove(&labels);
                    }
                }
                let detail = match (&status, &result) {
                    (Status::Down, Err(why)) => {
                        format!("down after {} failure(s): {why}", c.down_after)
                    }
                    (Status::Up, _) => format!("up after {} success(es)", c.up_after),
                    (s, _) => s.name().to_string(),
                };
                ctl.note(&row, row.board.as_deref(), "check", &check, &detail)
                    .await;
            }
        }
        Seen::Switch { name, result } => {
            let t = Thresholds {
                down_after: m.checks.down_after,
                up_after: m.checks.up_after,
            };
            let mut w = ctl.monitor.lock();
            if let Ok((ports, supply)) = &result {
                if let Some(draw) = supply.draw_w {
                    w.draw_w.insert(name.clone(), draw);
                }
                if let Some(status) = supply.status {
                    let entry = w.supplies.entry(name.clone()).or_default();
                    entry.0.observe(status == SupplyStatus::On, t);
                    if status != SupplyStatus::On {
                        entry.1 = status.to_string();
                    }
                }
                for (slot, watts) in ports {
                    w.views.entry(slot.clone()).or_default().watts = *watts;
                    if let Some(watts) = watts {
                        ctl.metrics
                            .watts
                            .get_or_create(&SlotLabel { slot: slot.clone() })
                            .set(*watts);
                    }
                }
            }
            let entry = w.switches.entry(name.clone()).or_default();
            entry.0.observe(result.is_ok(), t);
            if let Err(why) = result {
                entry.1 = why;
            }
        }
    }
}
