//! One pass over the site's zones: read each, work out its drift, and close it
//! in batched updates. A batch whose prerequisites no longer hold (someone wrote
//! a name since the zone was read) is retried name by name, so one raced name
//! never holds the others back.

use crate::server::Server;
use crate::{DnsError, key, wire};
use hickory_proto::op::ResponseCode;
use pirack_core::dns::drift::{Change, Drift, drift};
use pirack_core::dns::want::Owned;
use pirack_core::inventory::SiteDns;
use serde::Serialize;
use std::collections::BTreeMap;

/// Names per update message: well inside a TCP message's 64 KiB.
const BATCH: usize = 64;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub server: String,
    pub zones: Vec<ZoneReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ZoneReport {
    #[serde(flatten)]
    pub drift: Drift,
    /// Changes the server took.
    pub applied: usize,
    /// Changes it refused, with its answer (a name raced by another writer).
    pub failed: Vec<Failed>,
    /// Why the zone could not be read or written at all.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failed {
    pub name: String,
    pub code: String,
}

impl Report {
    /// The first zone error, if any: what a caller reports as the failure.
    pub fn error(&self) -> Option<String> {
        self.zones
            .iter()
            .find_map(|z| z.error.as_ref().map(|e| format!("{}: {e}", z.drift.zone)))
    }
}

/// Connects to the first of the site's servers that answers.
pub async fn connect(dns: &SiteDns) -> Result<Server, DnsError> {
    let signer = key::signer(&dns.key)?;
    let mut tried = Vec::new();
    for addr in &dns.servers {
        match Server::connect(*addr, signer.clone()).await {
            Ok(s) => return Ok(s),
            Err(e) => tried.push(e.to_string()),
        }
    }
    Err(DnsError::NoServer(tried.join("; ")))
}

/// Reads every zone of the site and, with `apply`, closes its drift from `wanted`.
pub async fn reconcile(
    dns: &SiteDns,
    site: &str,
    wanted: &BTreeMap<String, Vec<Owned>>,
    apply: bool,
) -> Result<Report, DnsError> {
    let server = connect(dns).await?;
    let mut zones = Vec::new();
    for zone in dns.zones() {
        let names = wanted.get(&zone).map(Vec::as_slice).unwrap_or_default();
        zones.push(one_zone(&server, &zone, site, names, apply).await?);
    }
    Ok(Report {
        server: server.addr.to_string(),
        zones,
    })
}

async fn one_zone(
    server: &Server,
    zone: &str,
    site: &str,
    wanted: &[Owned],
    apply: bool,
) -> Result<ZoneReport, DnsError> {
    let (drift, error) = match server.transfer(zone).await {
        Ok(actual) => (drift(zone, site, wanted, &actual), None),
        // A wrong key is wrong for every zone: the caller hears it once.
        Err(e @ DnsError::Key { .. }) => return Err(e),
        Err(e) => (Drift::empty(zone), Some(e.to_string())),
    };
    let mut report = ZoneReport {
        drift,
        applied: 0,
        failed: Vec::new(),
        error,
    };
    if !apply {
        return Ok(report);
    }
    let changes: Vec<&Change> = report.drift.changes.iter().collect();
    for batch in changes.chunks(BATCH) {
        match send(server, zone, site, batch).await {
            Ok(None) => report.applied += batch.len(),
            // A raced name, or one the server will not take (BIND refuses an MX
            // to an in-zone name without an address): name by name.
            Ok(Some(code)) if batch.len() == 1 => report.failed.push(Failed {
                name: batch[0].name().to_string(),
                code,
            }),
            Ok(Some(_)) => {
                for one in batch {
                    match send(server, zone, site, std::slice::from_ref(one)).await? {
                        None => report.applied += 1,
                        Some(code) => report.failed.push(Failed {
                            name: one.name().to_string(),
                            code,
                        }),
                    }
                }
            }
            Err(e @ DnsError::Key { .. }) => return Err(e),
            Err(e) => {
                report.error = Some(e.to_string());
                break;
            }
        }
    }
    Ok(report)
}

/// One update of `changes`: `None` when the server took it, else its answer (a
/// prerequisite that no longer holds, or a refusal).
async fn send(
    server: &Server,
    zone: &str,
    site: &str,
    changes: &[&Change],
) -> Result<Option<String>, DnsError> {
    match server.update(wire::update(zone, site, changes)?).await {
        Ok(ResponseCode::NoError) => Ok(None),
        Ok(code) => Ok(Some(code.to_string())),
        Err(DnsError::Refused { code, .. }) => Ok(Some(code)),
        Err(e) => Err(e),
    }
}
