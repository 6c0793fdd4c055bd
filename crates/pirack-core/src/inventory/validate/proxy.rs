//! Checks of the `proxy:` section: its listeners, timeouts and caps, and that
//! the address DNS gives the slots' names is one it listens on.

use super::Checker;
use crate::inventory::{SiteDns, SiteProxy, model};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

impl Checker<'_> {
    pub(super) fn proxy(&mut self, p: &model::Proxy, dns: Option<&SiteDns>) -> Option<SiteProxy> {
        let before = self.problems.len();
        if p.listen.is_empty() {
            self.problem("proxy.listen", "at least one address is needed");
        }
        let mut ips = Vec::new();
        for (i, a) in p.listen.iter().enumerate() {
            match a.parse::<IpAddr>() {
                Ok(ip) => ips.push(ip),
                Err(_) => self.problem(
                    format!("proxy.listen[{i}]"),
                    format!("`{a}` is not an IP address"),
                ),
            }
        }
        if p.http_port == p.tls_port {
            self.problem("proxy.tls_port", "must differ from proxy.http_port");
        }
        for (field, value, range) in [
            (
                "proxy.header_timeout_ms",
                p.header_timeout_ms,
                100..=120_000,
            ),
            ("proxy.idle_timeout_s", p.idle_timeout_s, 1..=86_400),
            (
                "proxy.connect_timeout_ms",
                p.connect_timeout_ms,
                100..=60_000,
            ),
            (
                "proxy.max_connections",
                p.max_connections as u64,
                1..=1_000_000,
            ),
            ("proxy.per_backend", p.per_backend as u64, 1..=1_000_000),
            ("proxy.threads", p.threads.unwrap_or(1), 1..=256),
        ] {
            if !range.contains(&value) {
                self.problem(
                    field,
                    format!("{value} is outside {}..={}", range.start(), range.end()),
                );
            }
        }
        let tls_default = p.tls_default.as_ref().and_then(|d| {
            d.parse::<SocketAddr>()
                .map_err(|_| {
                    self.problem(
                        "proxy.tls_default",
                        format!("`{d}` is not an address and port (`[2001:db8::1]:443`)"),
                    )
                })
                .ok()
        });
        if let Some(v4) = dns.and_then(|d| d.proxy_ipv4)
            && !ips.contains(&IpAddr::V4(v4))
            && !ips.iter().any(IpAddr::is_unspecified)
        {
            self.problem(
                "proxy.listen",
                format!("dns.proxy_ipv4 {v4} (the slots' A records) is not among these addresses"),
            );
        }
        (self.problems.len() == before).then(|| SiteProxy {
            http: ips
                .iter()
                .map(|ip| SocketAddr::new(*ip, p.http_port))
                .collect(),
            tls: ips
                .iter()
                .map(|ip| SocketAddr::new(*ip, p.tls_port))
                .collect(),
            header_timeout: Duration::from_millis(p.header_timeout_ms),
            idle_timeout: Duration::from_secs(p.idle_timeout_s),
            connect_timeout: Duration::from_millis(p.connect_timeout_ms),
            max_connections: p.max_connections,
            per_backend: p.per_backend,
            tls_default,
            threads: p.threads.map(|t| t as usize),
        })
    }
}
