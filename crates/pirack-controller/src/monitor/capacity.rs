//! Power and space: each switch's PoE supply against its budget, and the free
//! space of the roots' filesystem and the image store, now and as projected.
//! These are the staff's alerts: they cover no customer's slot.

use super::faults::Fault;
use pirack_core::inventory::SiteMonitor;
use pirack_core::monitor::capacity::seconds_to_full;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::time::Duration;

/// How often free space is sampled, and how much history the projection uses.
pub const DISK_EVERY: Duration = Duration::from_secs(60);
const DISK_SAMPLES: usize = 24 * 60;
/// The least history a projected date is given from.
const MIN_SPAN_S: f64 = 3_600.0;

/// One filesystem's free space over time.
#[derive(Debug, Default)]
pub struct Disk {
    /// Unix seconds and bytes free.
    samples: VecDeque<(f64, f64)>,
    free_pct: f64,
    total: f64,
}

/// Samples the free space under each of `paths` (a path that cannot be read
/// is left out, with a warning).
pub fn sample(disks: &mut BTreeMap<String, Disk>, paths: &[&Path], now_s: f64) {
    for p in paths {
        match nix::sys::statvfs::statvfs(*p) {
            Ok(v) => {
                let unit = v.fragment_size() as f64;
                let total = v.blocks() as f64 * unit;
                let free = v.blocks_available() as f64 * unit;
                let d = disks.entry(p.display().to_string()).or_default();
                d.note(now_s, total, free);
            }
            Err(e) => tracing::warn!("monitor: free space of {}: {e}", p.display()),
        }
    }
}

impl Disk {
    /// Takes a sample: `total` and `free` bytes at `now_s`.
    pub fn note(&mut self, now_s: f64, total: f64, free: f64) {
        self.samples.push_back((now_s, free));
        if self.samples.len() > DISK_SAMPLES {
            self.samples.pop_front();
        }
        self.total = total;
        self.free_pct = if total > 0.0 {
            free * 100.0 / total
        } else {
            100.0
        };
    }

    /// What is wrong with `name`'s space: less than `warn_pct` free, or
    /// projected to fill within `horizon`.
    pub fn judge(&self, name: &str, warn_pct: f64, horizon: Duration) -> Option<String> {
        if self.free_pct < warn_pct {
            return Some(format!("{name} has {:.1} % free", self.free_pct));
        }
        let samples: Vec<(f64, f64)> = self.samples.iter().copied().collect();
        let left = seconds_to_full(&samples, MIN_SPAN_S)?;
        (left < horizon.as_secs_f64()).then(|| {
            format!(
                "{name} is projected to fill in {:.1} days ({:.1} % of {:.0} GB free)",
                left / 86_400.0,
                self.free_pct,
                self.total / 1e9
            )
        })
    }
}

/// The faults of power and space now.
pub fn faults(
    m: &SiteMonitor,
    draw_w: &BTreeMap<String, u64>,
    disks: &BTreeMap<String, Disk>,
) -> Vec<Fault> {
    let mut out = Vec::new();
    for (switch, budget) in &m.poe_budget_w {
        let Some(draw) = draw_w.get(switch) else {
            continue;
        };
        let pct = *draw as f64 * 100.0 / f64::from(*budget);
        if pct >= f64::from(m.poe_warn_pct) {
            out.push(Fault {
                cause: format!("power:{switch}"),
                summary: format!(
                    "switch {switch}'s PoE supply draws {draw} W of its {budget} W budget ({pct:.0} %)"
                ),
                slots: Vec::new(),
            });
        }
    }
    for (path, d) in disks {
        if let Some(summary) = d.judge(path, f64::from(m.disk_warn_pct), m.disk_horizon) {
            out.push(Fault {
                cause: format!("disk:{path}"),
                summary,
                slots: Vec::new(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(budget: u32) -> SiteMonitor {
        let yaml = "site: { name: s }\nfileserver: { trunk_interface: eth0, storage_pool: 10.0.0.0/24, \
                    storage_vlans: { first: 10, last: 11 }, export_root: /export }\n\
                    shelves: [ { name: a, public_vlan: 131, ipv6: { prefix: '2001:db8:0:84:1000:1::/96', gateway: '2001:db8:0:84::1' } } ]\n\
                    switches: [ { name: sw-a, shelf: a, address: 127.0.0.1, profile: generic, snmp: { version: v2c, community: { env: C } }, ports: 4, trunk_port: 4 } ]\n\
                    slots: [ { position: A-01, switch: sw-a, port: 1 } ]\n";
        let yaml = format!("{yaml}monitor: {{ poe_budget_w: {{ sw-a: {budget} }} }}\n");
        let profiles = std::collections::BTreeSet::from(["generic".to_string()]);
        pirack_core::inventory::validate(Path::new("x.yaml"), &yaml, &profiles)
            .unwrap()
            .monitor
            .unwrap()
    }

    #[test]
    fn a_supply_near_its_budget_and_a_filling_disk_are_faults() {
        let m = site(100);
        let draw = BTreeMap::from([("sw-a".to_string(), 95u64)]);
        let mut disks = BTreeMap::new();
        let mut d = Disk {
            free_pct: 50.0,
            total: 100e9,
            ..Disk::default()
        };
        // 5 GB a day off 50 GB: ten days, within the 14-day horizon.
        for h in 0..48 {
            d.samples
                .push_back((h as f64 * 3600.0, 50e9 - h as f64 * 5e9 / 24.0));
        }
        disks.insert("/export".to_string(), d);
        let f = faults(&m, &draw, &disks);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].cause, "power:sw-a");
        assert!(
            f[1].summary.contains("projected to fill in 8.0 days"),
            "{}",
            f[1].summary
        );
        let calm = BTreeMap::from([("sw-a".to_string(), 50u64)]);
        assert!(faults(&m, &calm, &BTreeMap::new()).is_empty());
    }
}
