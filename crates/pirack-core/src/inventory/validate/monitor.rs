//! Checks of the `monitor:` section: sane intervals and thresholds, overrides
//! for owners and slots that exist, and routes that parse.

use super::Checker;
use crate::inventory::{SiteMonitor, Slot, Switch, model};
use crate::monitor::{flap, uri};
use std::time::Duration;

impl Checker<'_> {
    pub(super) fn monitor(
        &mut self,
        m: &model::Monitor,
        owners: &[model::Owner],
        switches: &[Switch],
        slots: &[Slot],
        proxied: bool,
    ) -> Option<SiteMonitor> {
        let before = self.problems.len();
        self.checks("monitor.checks", &m.checks, proxied);
        // Overrides are judged on the site's checks when those are sound, else
        // on the defaults: a site's mistake is reported once.
        let base = if self.problems.len() == before {
            m.checks.clone()
        } else {
            model::Checks::default()
        };
        for (name, o) in &m.owners {
            if !owners.iter().any(|w| &w.name == name) {
                self.problem(
                    format!("monitor.owners.{name}"),
                    format!("no owner is called `{name}`"),
                );
            }
            self.checks(&format!("monitor.owners.{name}"), &base.with(o), proxied);
        }
        for (position, o) in &m.slots {
            if !slots.iter().any(|s| &s.position == position) {
                self.problem(
                    format!("monitor.slots.{position}"),
                    format!("no slot is at `{position}`"),
                );
            }
            self.checks(&format!("monitor.slots.{position}"), &base.with(o), proxied);
        }
        let mut routes = Vec::new();
        let mut warnings = Vec::new();
        for (i, r) in m.routes.iter().enumerate() {
            match uri::parse(r) {
                Ok(route) => {
                    warnings.extend(
                        route
                            .warnings
                            .iter()
                            .map(|w| format!("monitor.routes[{i}]: {w}")),
                    );
                    routes.push(route.target);
                }
                Err(e) => self.problem(format!("monitor.routes[{i}]"), e.to_string()),
            }
        }
        for (field, value, range) in [
            ("monitor.repeat_s", m.repeat_s, 60..=7 * 86_400),
            ("monitor.rate_max", u64::from(m.rate_max), 1..=1_000_000),
            ("monitor.rate_per_s", m.rate_per_s, 1..=86_400),
            ("monitor.flap_opens", u64::from(m.flap_opens), 2..=100),
            ("monitor.flap_window_s", m.flap_window_s, 60..=7 * 86_400),
            ("monitor.flap_quiet_s", m.flap_quiet_s, 1..=86_400),
            ("monitor.poe_warn_pct", u64::from(m.poe_warn_pct), 1..=100),
            ("monitor.disk_warn_pct", u64::from(m.disk_warn_pct), 1..=99),
            (
                "monitor.disk_horizon_days",
                u64::from(m.disk_horizon_days),
                1..=365,
            ),
        ] {
            if !range.contains(&value) {
                self.problem(
                    field,
                    format!("{value} is outside {}..={}", range.start(), range.end()),
                );
            }
        }
        for (name, w) in &m.poe_budget_w {
            if !switches.iter().any(|s| &s.name == name) {
                self.problem(
                    format!("monitor.poe_budget_w.{name}"),
                    format!("no switch is called `{name}`"),
                );
            } else if *w == 0 {
                self.problem(
                    format!("monitor.poe_budget_w.{name}"),
                    "a budget is at least 1 W",
                );
            }
        }
        for (field, url) in [
            ("monitor.providers.prowl", &m.providers.prowl),
            ("monitor.providers.nma", &m.providers.nma),
            ("monitor.providers.pushover", &m.providers.pushover),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.contains(' ') {
                self.problem(field, format!("`{url}` is not an http(s) URL"));
            }
        }
        if let Some(smtp) = &m.smtp {
            let port = smtp.server.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
            if !matches!(port, Some(Ok(p)) if p > 0) {
                self.problem(
                    "monitor.smtp.server",
                    format!("`{}` is not host:port", smtp.server),
                );
            }
            if !smtp.from.contains('@') || smtp.from.contains(['<', '>', ' ']) {
                self.problem(
                    "monitor.smtp.from",
                    format!("`{}` is not a mail address", smtp.from),
                );
            }
        }
        let mut networks = Vec::new();
        for (i, n) in m.customer_route_networks.iter().enumerate() {
            match n.parse::<ipnet::IpNet>() {
                Ok(net) => networks.push(net),
                Err(_) => self.problem(
                    format!("monitor.customer_route_networks[{i}]"),
                    format!("`{n}` is not a network (`10.0.0.0/8`, `fd00::/8`)"),
                ),
            }
        }
        if m.smtp.is_none() && routes.iter().any(|t| matches!(t, uri::Target::Mail { .. })) {
            self.problem("monitor.smtp", "mailto: routes need an smtp relay");
        }
        (self.problems.len() == before).then(|| SiteMonitor {
            checks: m.checks.clone(),
            owners: m.owners.clone(),
            slots: m.slots.clone(),
            routes,
            warnings,
            repeat: Duration::from_secs(m.repeat_s),
            rate_max: m.rate_max,
            rate_per: Duration::from_secs(m.rate_per_s),
            flap: flap::Rule {
                opens: m.flap_opens as usize,
                window_ms: m.flap_window_s as i64 * 1_000,
                quiet_ms: m.flap_quiet_s as i64 * 1_000,
            },
            providers: m.providers.clone(),
            smtp: m.smtp.clone(),
            poe_budget_w: m.poe_budget_w.clone(),
            poe_warn_pct: m.poe_warn_pct,
            disk_warn_pct: m.disk_warn_pct,
            disk_horizon: Duration::from_secs(u64::from(m.disk_horizon_days) * 86_400),
            customer_route_networks: networks,
        })
    }

    fn checks(&mut self, at: &str, c: &model::Checks, proxied: bool) {
        for (field, value, range) in [
            ("interval_s", c.interval_s, 1..=3_600),
            ("timeout_ms", c.timeout_ms, 10..=60_000),
            ("down_after", u64::from(c.down_after), 1..=100),
            ("up_after", u64::from(c.up_after), 1..=100),
        ] {
            if !range.contains(&value) {
                self.problem(
                    format!("{at}.{field}"),
                    format!("{value} is outside {}..={}", range.start(), range.end()),
                );
            }
        }
        if c.timeout_ms > c.interval_s * 1_000 {
            self.problem(
                format!("{at}.timeout_ms"),
                "must not be longer than the interval",
            );
        }
        if c.ports.contains(&0) {
            self.problem(format!("{at}.ports"), "port 0 cannot be checked");
        }
        let http = c.http.as_ref().filter(|h| h.enabled);
        if !c.ping && c.ports.is_empty() && http.is_none() {
            self.problem(at.to_string(), "no check left: ping, a port or http");
        }
        if let Some(h) = http {
            if !proxied {
                self.problem(
                    format!("{at}.http"),
                    "goes through the proxy: add a `proxy:` section",
                );
            }
            if !h.path.starts_with('/') || h.path.bytes().any(|b| b <= b' ' || b == 0x7f) {
                self.problem(
                    format!("{at}.http.path"),
                    format!("`{}` is not an absolute path without spaces", h.path),
                );
            }
            let [lo, hi] = h.ok_status;
            if !(100..=599).contains(&lo) || !(lo..=599).contains(&hi) {
                self.problem(
                    format!("{at}.http.ok_status"),
                    format!("[{lo}, {hi}] is not a range of statuses within 100..=599"),
                );
            }
        }
    }
}
