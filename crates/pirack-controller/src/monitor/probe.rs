//! Probing: which slots and switches are due, each probe a task of its own
//! whose result goes back to the monitor's loop, and which slots are not
//! watched now (worked on by the controller, or in a maintenance window).

use super::{Polled, Seen, http, ping};
use crate::Controller;
use crate::metrics::CheckLabels;
use crate::store::alerts::WindowRow;
use crate::store::now_ms;
use pirack_core::inventory::SiteMonitor;
use pirack_core::inventory::model::{Checks, HttpCheck};
use pirack_core::lifecycle::State;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

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

/// Starts the probes that are due; the causes of the slots not watched now.
pub(super) fn probe_due(
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
