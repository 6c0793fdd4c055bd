//! Watching the Pis that are up and telling the right people once. Each slot
//! in `up` is probed every interval (ICMPv6 echo, TCP connects, optionally a
//! request through the proxy), its checks
//! turned into a verdict with hysteresis; each switch is polled for its ports'
//! PoE draw, which also says whether it answers. Failures become faults grouped
//! under their cause ([`faults`]), faults become alerts in the store, and each
//! alert's first notice, repeats and recovery go to the staff's routes and to
//! the routes of the customers whose slots it covers ([`deliver`]).
//!
//! A slot the controller is working on (not `up`) or in a maintenance window
//! is not probed, and its alert neither repeats nor resolves until it is
//! watched again.

pub mod capacity;
pub mod deliver;
pub mod faults;
pub mod http;
pub mod notify;
pub mod ping;

use crate::Controller;
use crate::metrics::{CheckLabels, ResultLabel, SlotLabel};
use crate::store::alerts::{AlertRow, Covered, WindowRow};
use crate::store::now_ms;
use faults::{Causes, Change, Failing, Fault};
use notify::Notice;
use pirack_core::inventory::SiteMonitor;
use pirack_core::inventory::model::{Checks, HttpCheck};
use pirack_core::lifecycle::State;
use pirack_core::monitor::chart::Chart;
use pirack_core::monitor::flap::Flaps;
use pirack_core::monitor::health::{Health, Status, Thresholds};
use pirack_core::switch::port::{Supply, SupplyStatus};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
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

/// Whether `w` covers the slot at `slot` on `switch` of `shelf`, now.
fn covers(w: &WindowRow, now: i64, key: &str, switch: &str, shelf: &str) -> bool {
    w.starts_at <= now
        && now < w.ends_at
        && match w.scope.split_once(':') {
            None => w.scope == "site",
            Some(("shelf", s)) => s == shelf,
            Some(("switch", s)) => s == switch,
            Some(("slot", s)) => s == key,
            _ => false,
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
    let mut recall = Recall::default();
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
        let frozen = probe_due(&ctl, &m, pinger.as_ref(), &tx, &mut next, &windows.1);
        if disk_at.is_none_or(|at| at.elapsed() >= capacity::DISK_EVERY) {
            disk_at = Some(Instant::now());
            let now_s = now_ms() as f64 / 1000.0;
            let roots = std::path::Path::new(&ctl.site.fileserver.export_root);
            let mut w = ctl.monitor.lock();
            capacity::sample(&mut w.disks, &[roots, &ctl.paths.images], now_s);
        }
        let faults = faults_now(&ctl, &m);
        settle(&ctl, &m, &mut open, &faults, &frozen, &mut recall).await;
    }
}

/// Starts the probes that are due; the causes of the slots not watched now.
fn probe_due(
    ctl: &Arc<Controller>,
    m: &SiteMonitor,
    pinger: Option<&Arc<ping::Pinger>>,
    tx: &mpsc::Sender<Seen>,
    next: &mut HashMap<String, Instant>,
    windows: &[WindowRow],
) -> HashSet<String> {
    let now = Instant::now();
    let now_ms = now_ms();
    let mut frozen = HashSet::new();
    let mut watched = HashSet::new();
    let mut by_switch: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    let routes = ctl.proxy.current();
    for plan in &ctl.plan.slots {
        let key = plan.key.to_string();
        let Some(row) = ctl.store.mirror().slot(&key) else {
            continue;
        };
        let in_window = windows
            .iter()
            .any(|w| covers(w, now_ms, &key, &plan.key.switch, &plan.shelf));
        if row.state != State::Up || in_window {
            // Worked on or in maintenance: its alert waits; once free, it goes.
            if row.owner.is_some() && row.state != State::Decommissioned {
                frozen.insert(format!("slot:{key}"));
            }
            next.remove(&key);
            forget(ctl, &key, |_| false);
            continue;
        }
        watched.insert(key.clone());
        by_switch
            .entry(plan.key.switch.clone())
            .or_default()
            .push(plan.key.port);
        let checks = m.checks_for(row.owner.as_deref(), &row.position);
        let every = Duration::from_secs(checks.interval_s);
        // The first probe somewhere in the first interval: a shelf that comes
        // up at once is not probed at once.
        let due = next
            .entry(key.clone())
            .or_insert_with(|| now + spread(&key, every));
        if now < *due {
            continue;
        }
        *due = now + every;
        let http = checks.http.as_ref().filter(|h| h.enabled).and_then(|h| {
            let route = routes.routes.iter().find(|r| r.backend == key)?;
            let name = route.names.iter().find(|n| !n.starts_with("*."))?;
            Some((h, http_via(ctl, h.tls)?, name.as_str()))
        });
        if http.is_none() {
            forget(ctl, &key, |check| check != "http");
        }
        start_checks(tx, pinger, &key, row.state_since, plan.ipv6, &checks, http);
    }
    // The switches, polled at the site's interval: for slots being watched,
    // and for the supply's draw where it has a budget.
    for switch in m.poe_budget_w.keys() {
        by_switch.entry(switch.clone()).or_default();
    }
    for (switch, ports) in by_switch {
        let key = format!("switch:{switch}");
        let every = Duration::from_secs(m.checks.interval_s);
        let due = next.entry(key).or_insert(now);
        if now < *due {
            continue;
        }
        *due = now + every;
        let (ctl, tx) = (Arc::clone(ctl), tx.clone());
        tokio::spawn(async move {
            let result = match ctl.fleet.get(&switch) {
                Ok(sw) => poll(sw, &switch, &ports).await,
                Err(e) => Err(e.to_string()),
            };
            let _ = tx
                .send(Seen::Switch {
                    name: switch,
                    result,
                })
                .await;
        });
    }
    // Switches are judged for their watched slots' sake, or their budget's.
    let judged = |name: &String| {
        m.poe_budget_w.contains_key(name)
            || watched.iter().any(|k| k.starts_with(&format!("{name}/")))
    };
    let mut w = ctl.monitor.lock();
    w.switches.retain(|name, _| judged(name));
    w.supplies.retain(|name, _| judged(name));
    drop(w);
    frozen
}

/// A switch's ports' draw, and its supply's state and total.
async fn poll(
    sw: &crate::switch::power::SwitchControl,
    name: &str,
    ports: &[u16],
) -> Result<Polled, String> {
    let st = match ports {
        [] => Vec::new(),
        _ => sw.status(ports).await.map_err(|e| e.to_string())?,
    };
    let each = st
        .iter()
        .map(|p| {
            (
                format!("{name}/{}", p.port),
                p.draw_mw.map(|mw| mw as f64 / 1000.0),
            )
        })
        .collect();
    let supply = sw.supply().await.map_err(|e| e.to_string())?;
    Ok((each, supply))
}

/// A slot's offset into its first interval, the same on every start.
fn spread(key: &str, every: Duration) -> Duration {
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    every.mul_f64((h % 1000) as f64 / 1000.0)
}

/// Where the HTTP check enters the proxy: its first IPv4 listener (a
/// visitor's way in) else its first, a wildcard address taken as loopback.
fn http_via(ctl: &Controller, tls: bool) -> Option<SocketAddr> {
    let p = ctl.site.proxy.as_ref()?;
    let listeners = if tls { &p.tls } else { &p.http };
    let mut via = *listeners
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| listeners.first())?;
    if via.ip().is_unspecified() {
        via.set_ip(match via {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    Some(via)
}

/// Starts a slot's probes: ping, each port, and the HTTP check with where it
/// goes in and the name it asks for.
fn start_checks(
    tx: &mpsc::Sender<Seen>,
    pinger: Option<&Arc<ping::Pinger>>,
    key: &str,
    since: i64,
    addr: Ipv6Addr,
    checks: &Checks,
    http: Option<(&HttpCheck, SocketAddr, &str)>,
) {
    let timeout = Duration::from_millis(checks.timeout_ms);
    // Each probe a task of its own, its result sent back to the loop.
    let probe =
        |check: String,
         run: futures_util::future::BoxFuture<'static, Result<Option<Duration>, String>>| {
            let (tx, slot) = (tx.clone(), key.to_string());
            tokio::spawn(async move {
                let result = run.await;
                let _ = tx
                    .send(Seen::Check {
                        slot,
                        since,
                        check,
                        result,
                    })
                    .await;
            });
        };
    if checks.ping
        && let Some(p) = pinger
    {
        let p = Arc::clone(p);
        probe(
            "ping".into(),
            Box::pin(async move {
                p.ping(addr, timeout)
                    .await
                    .map(Some)
                    .map_err(|e| e.to_string())
            }),
        );
    }
    for port in &checks.ports {
        let target = SocketAddr::new(addr.into(), *port);
        probe(
            format!("tcp/{port}"),
            Box::pin(async move {
                match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(target)).await {
                    Ok(Ok(_)) => Ok(None),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no connection within {timeout:?}")),
                }
            }),
        );
    }
    if let Some((check, via, name)) = http {
        let (check, name) = (check.clone(), name.to_string());
        probe(
            "http".into(),
            Box::pin(async move { http::probe(via, &name, &check, timeout).await }),
        );
    }
}

/// Drops what is known of a slot's checks that are not made now: all of them
/// when it is not watched, or one that has lost its target (an HTTP check
/// whose slot no longer has a name).
fn forget(ctl: &Controller, key: &str, made: impl Fn(&str) -> bool) {
    let mut w = ctl.monitor.lock();
    let gone = |(slot, check): &(String, String)| slot == key && !made(check);
    for (slot, check) in w.health.keys().filter(|k| gone(k)) {
        ctl.metrics.check_up.remove(&CheckLabels {
            slot: slot.clone(),
            check: check.clone(),
        });
    }
    w.health.retain(|k, _| !gone(k));
    w.why.retain(|k, _| !gone(k));
    if let Some(v) = w.views.get_mut(key) {
        v.checks.retain(|check, _| made(check));
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

/// The faults the checks see now, then power and space.
fn faults_now(ctl: &Controller, m: &SiteMonitor) -> Vec<Fault> {
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
        trunk_down: trunk_down(&ctl.site.fileserver.trunk_interface),
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
    all
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
struct Recall {
    flaps: Flaps,
    /// When each slot last left a grouped alert that resolved: a slot still
    /// failing then (its switch back, its Pi still booting) gathers like a
    /// grouped alert before its own is told.
    released: HashMap<String, i64>,
}

/// Brings the open alerts in line with the faults and sends what is due.
async fn settle(
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
