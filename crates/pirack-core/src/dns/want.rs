//! The records the site's slots should have: each published slot's name holds
//! its public IPv6 address (AAAA) and, with a proxy, the proxy's IPv4 address (A);
//! the address's reverse name points back (PTR).

use super::names::{absolute, ptr_name, zone_of};
use super::{Data, Record};
use crate::inventory::SiteDns;
use crate::plan::SlotPlan;
use serde::Serialize;
use std::collections::BTreeMap;

/// A name pirack should hold, for whom, and what it should hold there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owned {
    pub name: String,
    /// What the name is for (a slot's key): written in its registry mark.
    pub holder: String,
    pub records: Vec<Record>,
}

/// The names of `slots` by zone (slots without a name are skipped; validation
/// keeps every name inside a configured zone).
pub fn slots<'p>(
    dns: &SiteDns,
    slots: impl IntoIterator<Item = &'p SlotPlan>,
) -> BTreeMap<String, Vec<Owned>> {
    let zones = dns.zones();
    let mut out: BTreeMap<String, Vec<Owned>> = BTreeMap::new();
    let mut put = |owned: Owned| {
        if let Some(zone) = zone_of(&owned.name, &zones) {
            out.entry(zone.to_string()).or_default().push(owned);
        }
    };
    for s in slots {
        let Some(fqdn) = s.fqdn.as_deref().map(absolute) else {
            continue;
        };
        let holder = s.key.to_string();
        let record = |name: &str, data| Record {
            name: name.to_string(),
            ttl: dns.ttl,
            data,
        };
        let mut forward = vec![record(&fqdn, Data::Aaaa(s.ipv6))];
        if let Some(v4) = dns.proxy_ipv4 {
            forward.push(record(&fqdn, Data::A(v4)));
        }
        let reverse = ptr_name(s.ipv6);
        put(Owned {
            name: reverse.clone(),
            holder: holder.clone(),
            records: vec![record(&reverse, Data::Ptr(fqdn.clone()))],
        });
        put(Owned {
            name: fqdn,
            holder,
            records: forward,
        });
    }
    for names in out.values_mut() {
        names.sort_by(|a, b| a.name.cmp(&b.name));
    }
    out
}

/// Customers' names (name, owner, records) into `out`, by zone; held for
/// `owner:<name>` in their marks.
pub fn customers<'n>(
    dns: &SiteDns,
    names: impl IntoIterator<Item = (&'n str, &'n str, &'n [Record])>,
    out: &mut BTreeMap<String, Vec<Owned>>,
) {
    let zones = dns.zones();
    for (name, owner, records) in names {
        let name = absolute(name);
        if let Some(zone) = zone_of(&name, &zones) {
            out.entry(zone.to_string()).or_default().push(Owned {
                name,
                holder: format!("owner:{owner}"),
                records: records.to_vec(),
            });
        }
    }
    for names in out.values_mut() {
        names.sort_by(|a, b| a.name.cmp(&b.name));
    }
}
