//! Customers' ANAME names kept fresh: each is resolved when its TTL runs out
//! (never sooner than the floor), its addresses rewritten only when they
//! change, and the publisher woken to carry them to the zone. A failure keeps
//! the last addresses and marks the name stale; see [`pirack_core::dns::aname`].

use crate::Controller;
use crate::store::names::NameRow;
use futures_util::StreamExt;
use pirack_core::dns::Record;
use pirack_core::dns::aname::{Found, Status, allowed, settle};
use pirack_core::dns::names::{absolute, in_zone};
use pirack_dns::resolve::Resolver;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Names resolved at once: bounds the queries in flight at the servers.
const PARALLEL: usize = 32;
/// Names due within this of the first are resolved with it, in one wake.
const GATHER: Duration = Duration::from_millis(500);

pub struct Anames {
    resolver: Option<Resolver>,
    floor: u32,
    live: Mutex<HashMap<String, Live>>,
    /// Wakes the refresher: a customer's ANAME names changed.
    kick: tokio::sync::Notify,
}

/// When a name was last asked about and when it will be next (ms since the
/// epoch); kept in memory, since writing them would be a write per refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Live {
    pub checked_at: i64,
    pub next_at: i64,
}

impl Anames {
    pub fn new(site: &pirack_core::inventory::Site) -> Anames {
        Anames {
            resolver: site.dns.as_ref().map(Resolver::new),
            floor: site.dns.as_ref().map_or(30, |d| d.aname.floor),
            live: Mutex::default(),
            kick: tokio::sync::Notify::new(),
        }
    }

    pub fn kick(&self) {
        self.kick.notify_one();
    }

    pub fn live(&self, name: &str) -> Option<Live> {
        self.live.lock().expect("not poisoned").get(name).copied()
    }

    /// Resolves `status.target` for `name` now: what the name then holds, and
    /// seconds until the next resolution.
    pub async fn resolve(
        &self,
        ctl: &Controller,
        name: &str,
        old: &[Record],
        status: &Status,
    ) -> (Vec<Record>, Status, u32) {
        let zones = ctl.dns.site_dns().map(|d| d.zones()).unwrap_or_default();
        let outcome = match &self.resolver {
            Some(r) => r
                .resolve(&status.target, &zones)
                .await
                .map(|res| Found {
                    slot: slot_named(ctl, res.chain.last().map(String::as_str)),
                    addresses: res.addresses,
                    chain: res.chain,
                })
                .map_err(|e| e.to_string()),
            None => Err("the site has no dns: section".to_string()),
        };
        let now = crate::store::now_ms();
        let (records, status, next) = settle(name, old, status, outcome, self.floor, now);
        self.live.lock().expect("not poisoned").insert(
            name.to_string(),
            Live {
                checked_at: now,
                next_at: now + i64::from(next) * 1000,
            },
        );
        (records, status, next)
    }

    /// Why `owner` may not point `name` at `target` (both absolute), if it may
    /// not: a target in the site's zones must be one of the owner's slots or in
    /// the owner's zones; any other must be allowed by `dns.aname.allow`.
    pub fn refusal(ctl: &Controller, owner: &str, name: &str, target: &str) -> Option<String> {
        let dns = ctl.dns.site_dns()?;
        if name == target {
            return Some(format!("{name} cannot follow itself"));
        }
        if !dns.zones().iter().any(|z| in_zone(target, z)) {
            return (!allowed(target, &dns.aname.allow)).then(|| {
                format!("{target} is outside the site's zones and not allowed by dns.aname.allow")
            });
        }
        if let Some(key) = slot_named(ctl, Some(target)) {
            let theirs = ctl.store.mirror().slot(&key).and_then(|s| s.owner);
            return (theirs.as_deref() != Some(owner))
                .then(|| format!("{target} is not a slot of {owner}'s"));
        }
        let own = dns.owner_zones.get(owner).into_iter().flatten();
        (!own.clone().any(|z| in_zone(target, z))).then(|| {
            format!("{target} is in the site's zones but neither one of {owner}'s slots nor in its zones")
        })
    }
}

/// The key of the slot whose name is `fqdn`, if any.
fn slot_named(ctl: &Controller, fqdn: Option<&str>) -> Option<String> {
    let fqdn = fqdn?;
    ctl.plan
        .slots
        .iter()
        .find(|s| s.fqdn.as_deref().map(absolute).as_deref() == Some(fqdn))
        .map(|s| s.key.to_string())
}

/// The ANAME names in the store, by name.
async fn load(ctl: &Controller) -> Option<BTreeMap<String, NameRow>> {
    match ctl.store.names(None).await {
        Ok(rows) => Some(
            rows.into_iter()
                .filter(|r| r.aname.is_some())
                .map(|r| (r.name.clone(), r))
                .collect(),
        ),
        Err(e) => {
            tracing::warn!("ANAME: the store: {e}");
            None
        }
    }
}

/// Refreshes every ANAME name when it is due, for as long as the controller
/// runs (started only for a site with `dns:`).
pub async fn run(ctl: Arc<Controller>) {
    let mut rows = BTreeMap::new();
    let mut due: BTreeMap<String, Instant> = BTreeMap::new();
    let mut reload = true;
    loop {
        if reload {
            if let Some(fresh) = load(&ctl).await {
                let now = Instant::now();
                due.retain(|n, _| fresh.contains_key(n));
                for (name, row) in &fresh {
                    let same = rows.get(name).map(|r: &NameRow| (&r.aname, &r.records))
                        == Some((&row.aname, &row.records));
                    if !same {
                        due.insert(name.clone(), now);
                    }
                }
                ctl.anames
                    .live
                    .lock()
                    .expect("not poisoned")
                    .retain(|n, _| fresh.contains_key(n));
                rows = fresh;
            }
            reload = false;
        }
        let first = due.values().min().copied();
        tokio::select! {
            () = ctl.anames.kick.notified() => {
                reload = true;
                continue;
            }
            () = async {
                match first {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
        let until = Instant::now() + GATHER;
        let batch: Vec<NameRow> = due
            .iter()
            .filter(|(_, t)| **t <= until)
            .filter_map(|(n, _)| rows.get(n).cloned())
            .collect();
        let c = &ctl;
        let results: Vec<_> = futures_util::stream::iter(batch)
            .map(|row| async move {
                let status = row.aname.clone().expect("only ANAME rows are loaded");
                let (records, status, next) =
                    c.anames.resolve(c, &row.name, &row.records, &status).await;
                (row, records, status, next)
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let mut changed = false;
        for (row, records, status, next) in results {
            due.insert(
                row.name.clone(),
                Instant::now() + Duration::from_secs(u64::from(next)),
            );
            let old = row.aname.as_ref().expect("only ANAME rows are loaded");
            let result = match (&status.error, records == row.records) {
                (Some(_), _) => "error",
                (None, true) => "ok",
                (None, false) => "changed",
            };
            ctl.metrics
                .aname_refreshes
                .get_or_create(&crate::metrics::ResultLabel {
                    result: result.into(),
                })
                .inc();
            if records == row.records && !differs(old, &status) {
                continue;
            }
            if let Some(e) = &status.error
                && old.error.as_ref() != Some(e)
            {
                tracing::warn!("ANAME {}: {e}; its last addresses stay", row.name);
            }
            match ctl.store.refresh_aname(&row.name, &records, &status).await {
                Ok(true) => {
                    changed |= records != row.records;
                    if let Some(r) = rows.get_mut(&row.name) {
                        r.records = records;
                        r.aname = Some(status);
                    }
                }
                // Changed or removed by its owner meanwhile: read it again.
                Ok(false) => reload = true,
                Err(e) => tracing::warn!("ANAME {}: the store: {e}", row.name),
            }
        }
        if changed {
            ctl.dns.kick();
            ctl.proxy.kick();
        }
    }
}

/// Whether a resolution says something new about a name (its time aside).
fn differs(old: &Status, new: &Status) -> bool {
    (&old.chain, &old.slot, &old.error, old.stale_since)
        != (&new.chain, &new.slot, &new.error, new.stale_since)
}
