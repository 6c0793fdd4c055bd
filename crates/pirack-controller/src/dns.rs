//! Publishing the slots' names: the site's zones reconciled with what the
//! store says is in service, whenever that changes and every `reconcile_s`
//! besides (someone may have edited a zone by hand). A slot's names exist from
//! its provisioning (so a customer can point names and get certificates before
//! the first boot) until its decommissioning; a board swap changes nothing.

use crate::Controller;
use crate::store::names::NameRow;
use pirack_core::dns::Record;
use pirack_core::dns::want::{self, Owned};
use pirack_core::inventory::{Site, SiteDns};
use pirack_core::lifecycle::State;
use pirack_dns::DnsError;
use pirack_dns::reconcile::{Report, ZoneReport, reconcile};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a burst of lifecycle changes is gathered into one reconciliation.
const SETTLE: Duration = Duration::from_millis(200);
/// How soon a reconciliation that failed (a server down, a refusal) is tried again.
const RETRY: Duration = Duration::from_secs(10);
/// The longest one reconciliation may take.
const PASS: Duration = Duration::from_secs(60);

pub struct Publisher {
    /// The inventory's `dns:` section.
    dns: Option<SiteDns>,
    /// Zones granted through the API, by zone: their owner.
    grants: Mutex<BTreeMap<String, String>>,
    /// One reconciliation at a time, whoever asks.
    one: tokio::sync::Mutex<()>,
    last: Mutex<Option<Report>>,
    /// Per zone, from the last reconciliation that wrote it whole: each
    /// customer name it wrote and the records it read for it (names the server
    /// refused left out). Compared by content, not by clock: an edit and the
    /// pass it wakes may fall in the same millisecond.
    synced: Mutex<BTreeMap<String, BTreeMap<String, Vec<Record>>>>,
    /// Wakes the publisher: a customer's names changed.
    kick: tokio::sync::Notify,
}

impl Publisher {
    pub fn new(site: &Site) -> Publisher {
        Publisher {
            dns: site.dns.clone(),
            grants: Mutex::default(),
            one: tokio::sync::Mutex::new(()),
            last: Mutex::new(None),
            synced: Mutex::default(),
            kick: tokio::sync::Notify::new(),
        }
    }

    /// Asks for a reconciliation soon (a customer's names changed).
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    /// The zones `owner` may manage names in.
    pub fn zones_of(&self, owner: &str) -> Vec<String> {
        self.site_dns()
            .and_then(|d| d.owner_zones.get(owner).cloned())
            .unwrap_or_default()
    }

    /// The `dns:` section with the granted zones among the owners'; `None`
    /// without one.
    pub fn site_dns(&self) -> Option<SiteDns> {
        let mut dns = self.dns.clone()?;
        for (zone, owner) in self.grants.lock().expect("not poisoned").iter() {
            let zones = dns.owner_zones.entry(owner.clone()).or_default();
            if !zones.contains(zone) {
                zones.push(zone.clone());
            }
        }
        Some(dns)
    }

    /// The zones granted through the API (zone, owner), replacing what was.
    pub fn set_grants(&self, grants: Vec<(String, String)>) {
        *self.grants.lock().expect("not poisoned") = grants.into_iter().collect();
    }

    /// Whether `zone` was granted through the API (not set in the inventory).
    pub fn granted(&self, zone: &str) -> bool {
        self.grants.lock().expect("not poisoned").contains_key(zone)
    }

    pub fn configured(&self) -> bool {
        self.dns.is_some()
    }

    /// How often the zones are reconciled in any case; `None` without `dns:`.
    pub fn every(&self) -> Option<Duration> {
        self.dns.as_ref().map(|d| d.reconcile)
    }

    /// The last applied reconciliation's report.
    pub fn last(&self) -> Option<Report> {
        self.last.lock().expect("not poisoned").clone()
    }

    /// Whether the primary server holds `name` with `records`: a reconciliation
    /// wrote them.
    pub fn published(&self, name: &str, records: &[Record]) -> bool {
        let synced = self.synced.lock().expect("not poisoned");
        synced
            .values()
            .any(|zone| zone.get(name).is_some_and(|r| r == records))
    }

    /// The site's authoritative servers, where a customer's changes appear.
    pub fn servers(&self) -> Vec<std::net::SocketAddr> {
        self.dns
            .as_ref()
            .map(|d| d.servers.clone())
            .unwrap_or_default()
    }

    /// Reads every zone and, with `apply`, closes the drift; `None` when the
    /// site has no `dns:` section.
    pub async fn sync(&self, ctl: &Controller, apply: bool) -> Option<Result<Report, DnsError>> {
        self.sync_of(ctl, &published(ctl), apply).await
    }

    /// [`Publisher::sync`] with the published slots given.
    async fn sync_of(
        &self,
        ctl: &Controller,
        slots: &BTreeSet<String>,
        apply: bool,
    ) -> Option<Result<Report, DnsError>> {
        let dns = &self.site_dns()?;
        let _one = self.one.lock().await;
        let mut wanted = wanted(ctl, dns, slots);
        let rows = match ctl.store.names(None).await {
            Ok(rows) => rows,
            // Without them every customer name would read as unwanted.
            Err(e) => return Some(Err(DnsError::Store(e.to_string()))),
        };
        want::customers(
            dns,
            rows.iter()
                .map(|n| (n.name.as_str(), n.owner.as_str(), n.records.as_slice())),
            &mut wanted,
        );
        // Only the region's leader writes, and none after it lost the lead.
        let fence = match apply {
            true => match ctl.region_fence().await {
                Ok(f) => Some(f),
                Err(e) => return Some(Err(DnsError::Store(e.to_string()))),
            },
            false => None,
        };
        // A server that stops answering mid-pass must not hold every later pass.
        let result = tokio::time::timeout(PASS, reconcile(dns, &ctl.site.name, &wanted, apply))
            .await
            .unwrap_or_else(|_| {
                Err(DnsError::NoServer(format!(
                    "a pass took over {} s",
                    PASS.as_secs()
                )))
            });
        if let Some(f) = fence {
            f.release().await;
        }
        let m = ctl.metrics;
        match &result {
            Ok(report) if apply => {
                for z in &report.zones {
                    for (kind, n) in [
                        ("missing", z.drift.count("missing")),
                        ("stale", z.drift.count("stale")),
                        ("conflict", z.drift.conflicts.len()),
                    ] {
                        m.dns_drift
                            .get_or_create(&crate::metrics::DriftLabels {
                                zone: z.drift.zone.clone(),
                                kind: kind.into(),
                            })
                            .set(n as i64);
                    }
                    m.dns_applied.inc_by(z.applied as u64);
                    if z.error.is_none() {
                        let written = written(z, &wanted, &rows);
                        self.synced
                            .lock()
                            .expect("not poisoned")
                            .insert(z.drift.zone.clone(), written);
                    }
                    for c in &z.drift.conflicts {
                        tracing::warn!("DNS {}: left alone, {}", c.name, c.reason);
                    }
                }
                let outcome = if report.error().is_some() {
                    "error"
                } else {
                    "ok"
                };
                count(ctl, outcome);
                *self.last.lock().expect("not poisoned") = Some(report.clone());
            }
            Ok(_) => {}
            Err(_) => count(ctl, "error"),
        }
        Some(result)
    }
}

/// The customer names a pass wrote into zone `z` whole, with the records read
/// for each: those it wanted there less those refused or left to others.
fn written(
    z: &ZoneReport,
    wanted: &BTreeMap<String, Vec<Owned>>,
    rows: &[NameRow],
) -> BTreeMap<String, Vec<Record>> {
    let refused: BTreeSet<&str> = z
        .failed
        .iter()
        .map(|f| f.name.as_str())
        .chain(z.drift.conflicts.iter().map(|c| c.name.as_str()))
        .collect();
    let here: BTreeSet<&str> = wanted
        .get(&z.drift.zone)
        .into_iter()
        .flatten()
        .map(|o| o.name.as_str())
        .filter(|n| !refused.contains(n))
        .collect();
    rows.iter()
        .filter(|r| here.contains(r.name.as_str()))
        .map(|r| (r.name.clone(), r.records.clone()))
        .collect()
}

fn count(ctl: &Controller, result: &str) {
    ctl.metrics
        .dns_reconciles
        .get_or_create(&crate::metrics::ResultLabel {
            result: result.into(),
        })
        .inc();
}

/// The slots whose names are published: provisioned for an owner and not
/// decommissioned (read from the store's mirror).
pub(crate) fn published(ctl: &Controller) -> BTreeSet<String> {
    ctl.store
        .mirror()
        .slots(None)
        .into_iter()
        .filter(|r| {
            r.in_inventory
                && r.owner.is_some()
                && !matches!(
                    r.state,
                    State::Empty | State::Registered | State::Decommissioned
                )
        })
        .map(|r| r.key)
        .collect()
}

fn wanted(
    ctl: &Controller,
    dns: &SiteDns,
    keys: &BTreeSet<String>,
) -> BTreeMap<String, Vec<Owned>> {
    want::slots(
        dns,
        ctl.plan
            .slots
            .iter()
            .filter(|s| keys.contains(&s.key.to_string())),
    )
}

/// Reconciles at start, after every change to the published slots, every
/// `every`, and soon again after a failure (started only for a site with `dns:`).
pub async fn run(ctl: Arc<Controller>, every: Duration) {
    let mut events = ctl.store.mirror().subscribe();
    let mut tick = tokio::time::interval(every);
    let mut done: Option<BTreeSet<String>> = None;
    let mut last_error = String::new();
    loop {
        let retry = async {
            if last_error.is_empty() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(RETRY).await;
        };
        tokio::select! {
            _ = tick.tick() => done = None,
            () = retry => done = None,
            () = ctl.dns.kick.notified() => done = None,
            e = events.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = e {
                    return;
                }
                tokio::time::sleep(SETTLE).await;
                while events.try_recv().is_ok() {}
            }
        }
        let now = published(&ctl);
        if done.as_ref() == Some(&now) {
            continue;
        }
        let error = match ctl.dns.sync_of(&ctl, &now, true).await {
            // A name the server refused (a raced prerequisite) is tried again
            // soon too, not only at the next full reconciliation.
            Some(Ok(report)) => report.error().unwrap_or_else(|| {
                let refused: Vec<&str> = report
                    .zones
                    .iter()
                    .flat_map(|z| z.failed.iter().map(|f| f.name.as_str()))
                    .collect();
                if refused.is_empty() {
                    String::new()
                } else {
                    format!("refused for {}", refused.join(", "))
                }
            }),
            Some(Err(e)) => e.to_string(),
            None => return,
        };
        if error.is_empty() {
            done = Some(now);
            if !last_error.is_empty() {
                tracing::info!("DNS: the zones are reconciled again");
            }
        } else if error != last_error {
            tracing::warn!("DNS: {error} (retried every {}s)", RETRY.as_secs());
        }
        last_error = error;
    }
}
