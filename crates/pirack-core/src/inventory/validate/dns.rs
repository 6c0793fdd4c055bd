//! Checks of the `dns:` section: servers, zones that hold every slot's names,
//! the TSIG key, TTLs and the proxy's address.

use super::{Checker, is_dns_name};
use crate::dns::names::{absolute, in_zone, reverse_zone};
use crate::inventory::model;
use crate::inventory::{Shelf, SiteAname, SiteDns};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// A week: longer TTLs keep a moved Pi's old address in caches for too long.
const TTL_MAX: u32 = 604_800;

impl Checker<'_> {
    pub(super) fn dns(
        &mut self,
        d: &model::Dns,
        domain: Option<&str>,
        shelves: &[Shelf],
        owners: &[model::Owner],
    ) -> Option<SiteDns> {
        let before = self.problems.len();
        if d.servers.is_empty() {
            self.problem("dns.servers", "at least one server is needed");
        }
        let mut servers = Vec::new();
        for (i, s) in d.servers.iter().enumerate() {
            match s.address.parse::<IpAddr>() {
                Ok(ip) => servers.push(SocketAddr::new(ip, s.port)),
                Err(_) => self.problem(
                    format!("dns.servers[{i}].address"),
                    format!("`{}` is not an IP address", s.address),
                ),
            }
        }
        let zone = match (&d.zone, domain) {
            (Some(z), _) => z.clone(),
            (None, Some(d)) => d.to_string(),
            (None, None) => {
                self.problem("dns.zone", "give a zone, or site.domain to name the slots");
                String::new()
            }
        };
        if !zone.is_empty() && !is_dns_name(&zone) {
            self.problem("dns.zone", format!("`{zone}` is not a DNS name"));
        }
        let zone = absolute(&zone);
        match domain {
            Some(dom) if !in_zone(&absolute(dom), &zone) => self.problem(
                "dns.zone",
                format!("site.domain `{dom}` (the slots' names) is not inside zone `{zone}`"),
            ),
            None => self.problem("site.domain", "needed with dns: it names the slots"),
            _ => {}
        }
        let mut reverse_zones = Vec::new();
        for (i, z) in d.reverse_zones.iter().enumerate() {
            let abs = absolute(z);
            if !is_dns_name(z) || !in_zone(&abs, "ip6.arpa.") {
                self.problem(
                    format!("dns.reverse_zones[{i}]"),
                    format!("`{z}` is not a zone under ip6.arpa"),
                );
            }
            reverse_zones.push(abs);
        }
        for (i, shelf) in shelves.iter().enumerate() {
            let own = reverse_zone(shelf.ipv6_prefix);
            if d.reverse_zones.is_empty() {
                if !reverse_zones.contains(&own) {
                    reverse_zones.push(own);
                }
            } else if !reverse_zones.iter().any(|z| in_zone(&own, z)) {
                self.problem(
                    "dns.reverse_zones",
                    format!(
                        "no zone holds the PTR names of shelves[{i}] ({}): add `{own}` or a parent",
                        shelf.ipv6_prefix
                    ),
                );
            }
        }
        if d.key.name.is_empty() || !is_dns_name(&d.key.name) {
            self.problem(
                "dns.key.name",
                format!("`{}` is not a key name", d.key.name),
            );
        }
        self.secret("dns.key.secret", &d.key.secret);
        if !(1..=TTL_MAX).contains(&d.ttl) {
            self.problem("dns.ttl", format!("{} is outside 1..={TTL_MAX}", d.ttl));
        }
        if d.reconcile_s == 0 {
            self.problem("dns.reconcile_s", "must be at least 1");
        }
        let proxy_ipv4 = d.proxy_ipv4.as_ref().and_then(|a| {
            a.parse::<Ipv4Addr>()
                .map_err(|_| {
                    self.problem("dns.proxy_ipv4", format!("`{a}` is not an IPv4 address"))
                })
                .ok()
        });
        let mut owner_zones = std::collections::BTreeMap::new();
        for (i, o) in owners.iter().enumerate() {
            let mut zones = Vec::new();
            for (j, z) in o.zones.iter().enumerate() {
                if !is_dns_name(z) || z.is_empty() {
                    self.problem(
                        format!("owners[{i}].zones[{j}]"),
                        format!("`{z}` is not a DNS zone name"),
                    );
                }
                zones.push(absolute(z));
            }
            owner_zones.insert(o.name.clone(), zones);
        }
        let aname = self.aname(&d.aname);
        (self.problems.len() == before).then(|| SiteDns {
            servers,
            zone,
            reverse_zones,
            key: model::TsigKey {
                secret: self.resolve(&d.key.secret),
                ..d.key.clone()
            },
            ttl: d.ttl,
            proxy_ipv4,
            reconcile: Duration::from_secs(d.reconcile_s),
            owner_zones,
            aname,
        })
    }

    fn aname(&mut self, a: &model::Aname) -> SiteAname {
        let mut resolvers = Vec::new();
        for (i, s) in a.resolvers.iter().enumerate() {
            match s.address.parse::<IpAddr>() {
                Ok(ip) => resolvers.push(SocketAddr::new(ip, s.port)),
                Err(_) => self.problem(
                    format!("dns.aname.resolvers[{i}].address"),
                    format!("`{}` is not an IP address", s.address),
                ),
            }
        }
        let mut allow = Vec::new();
        for (i, p) in a.allow.iter().enumerate() {
            let name = p.strip_prefix("*.").unwrap_or(p);
            if p != "*" && (name.is_empty() || !is_dns_name(name)) {
                self.problem(
                    format!("dns.aname.allow[{i}]"),
                    format!("`{p}` is not a name, `*.` and a name, or `*`"),
                );
            }
            allow.push(if p == "*" { p.clone() } else { absolute(p) });
        }
        if !allow.is_empty() && resolvers.is_empty() {
            self.problem(
                "dns.aname.resolvers",
                "needed to resolve the targets dns.aname.allow lets customers follow",
            );
        }
        if !(1..=86_400).contains(&a.floor_s) {
            self.problem(
                "dns.aname.floor_s",
                format!("{} is outside 1..=86400", a.floor_s),
            );
        }
        if !(1..=16).contains(&a.max_chain) {
            self.problem(
                "dns.aname.max_chain",
                format!("{} is outside 1..=16", a.max_chain),
            );
        }
        if !(100..=10_000).contains(&a.timeout_ms) {
            self.problem(
                "dns.aname.timeout_ms",
                format!("{} is outside 100..=10000", a.timeout_ms),
            );
        }
        SiteAname {
            resolvers,
            allow,
            floor: a.floor_s,
            max_chain: a.max_chain,
            timeout: Duration::from_millis(a.timeout_ms),
        }
    }
}
