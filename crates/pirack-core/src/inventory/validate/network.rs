//! Checks of the networks: the fileserver, its storage pool and VLANs, the boot
//! settings, and the shelves' public IPv6.

use super::{Checker, IFNAME_MAX, INTERFACE_VARS, ROOT_VARS, is_hostname_label};
use crate::inventory::model::{self, Inventory};
use crate::inventory::{Fileserver, Shelf};
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::Ipv6Addr;

impl Checker<'_> {
    /// The site's fileservers (`fileserver:`, or `fileservers:` for several),
    /// each checked against the slots of the shelves it serves, and each
    /// shelf's fileserver by index.
    pub(super) fn fileservers(&mut self, raw: &Inventory) -> (Vec<Fileserver>, Vec<usize>) {
        let (list, field): (Vec<&model::Fileserver>, fn(usize) -> String) =
            match (&raw.fileserver, raw.fileservers.as_slice()) {
                (Some(f), []) => (vec![f], |_| "fileserver".into()),
                (None, []) => {
                    self.problem("fileserver", "missing: the site needs a fileserver");
                    return (Vec::new(), vec![0; raw.shelves.len()]);
                }
                (one, many) => {
                    if one.is_some() {
                        self.problem(
                            "fileservers",
                            "give `fileserver:` (one) or `fileservers:` (several), not both",
                        );
                    }
                    (many.iter().collect(), |i| format!("fileservers[{i}]"))
                }
            };
        self.unique(
            "fileserver",
            list.iter()
                .enumerate()
                .map(|(i, f)| (f.name.clone(), format!("{}.name", field(i)), f.name.clone()))
                .collect(),
        );
        let shelf_fs = self.shelf_fileservers(raw, &list);
        let mut slots = vec![0; list.len()];
        for slot in &raw.slots {
            let shelf = raw
                .switches
                .iter()
                .find(|sw| sw.name == slot.switch)
                .and_then(|sw| raw.shelves.iter().position(|s| s.name == sw.shelf));
            if let Some(shelf) = shelf {
                slots[shelf_fs[shelf]] += 1;
            }
        }
        let checked: Vec<Fileserver> = list
            .iter()
            .enumerate()
            .map(|(i, f)| self.fileserver(f, &field(i), slots[i]))
            .collect();
        for (j, b) in checked.iter().enumerate() {
            for a in &checked[..j] {
                if a.storage_pool.contains(&b.storage_pool.network())
                    || b.storage_pool.contains(&a.storage_pool.network())
                {
                    self.problem(
                        format!("{}.storage_pool", field(j)),
                        format!(
                            "{} overlaps {}'s pool {}",
                            b.storage_pool, a.name, a.storage_pool
                        ),
                    );
                }
                let (x, y) = (&a.storage_vlans, &b.storage_vlans);
                if x.start() <= y.end() && y.start() <= x.end() {
                    self.problem(
                        format!("{}.storage_vlans", field(j)),
                        format!(
                            "{}..={} overlaps {}'s storage VLANs {}..={}",
                            y.start(),
                            y.end(),
                            a.name,
                            x.start(),
                            x.end()
                        ),
                    );
                }
            }
        }
        (checked, shelf_fs)
    }

    /// Each shelf's fileserver: the one it names, or the site's only one.
    fn shelf_fileservers(&mut self, raw: &Inventory, list: &[&model::Fileserver]) -> Vec<usize> {
        let names = || {
            let n: Vec<&str> = list.iter().map(|f| f.name.as_str()).collect();
            n.join(", ")
        };
        let mut out = Vec::new();
        for (i, s) in raw.shelves.iter().enumerate() {
            let at = format!("shelves[{i}].fileserver");
            let found = match &s.fileserver {
                Some(name) => {
                    let found = list.iter().position(|f| &f.name == name);
                    if found.is_none() {
                        self.problem(at, format!("unknown fileserver `{name}` ({})", names()));
                    }
                    found
                }
                None if list.len() > 1 => {
                    self.problem(
                        at,
                        format!("missing: the site has several fileservers ({})", names()),
                    );
                    None
                }
                None => None,
            };
            out.push(found.unwrap_or(0));
        }
        out
    }

    fn fileserver(&mut self, f: &model::Fileserver, at: &str, slot_count: usize) -> Fileserver {
        let field = |name: &str| format!("{at}.{name}");
        if !is_hostname_label(&f.name) {
            self.problem(field("name"), format!("`{}` is not a host name", f.name));
        }
        if f.trunk_interface.is_empty()
            || f.trunk_interface.len() > IFNAME_MAX
            || f.trunk_interface.contains(['/', ' ', '\t', ':'])
        {
            self.problem(
                field("trunk_interface"),
                format!("`{}` is not a Linux interface name", f.trunk_interface),
            );
        }
        let pool = self.storage_pool(&field("storage_pool"), &f.storage_pool, slot_count);
        let vlans = f.storage_vlans.first..=f.storage_vlans.last;
        let first_ok = self.vlan_id(field("storage_vlans.first"), *vlans.start());
        let last_ok = self.vlan_id(field("storage_vlans.last"), *vlans.end());
        if first_ok && last_ok {
            let size = vlans.len();
            if vlans.is_empty() {
                self.problem(
                    field("storage_vlans"),
                    format!(
                        "empty range: first {} is above last {}",
                        vlans.start(),
                        vlans.end()
                    ),
                );
            } else if size < slot_count {
                self.problem(
                    field("storage_vlans"),
                    format!("too small: {size} VLAN ids for {slot_count} slots"),
                );
            }
        }
        let (interface_name, ok) =
            self.template(&field("interface_name"), &f.interface_name, INTERFACE_VARS);
        if ok && !interface_name.uses("vlan") {
            self.problem(
                field("interface_name"),
                "must contain `{vlan}`: each slot needs its own interface",
            );
        } else if ok {
            let longest = interface_name.render(|v| match v {
                "trunk" => f.trunk_interface.clone(),
                _ => vlans.end().to_string(),
            });
            if longest.len() > IFNAME_MAX {
                self.problem(
                    field("interface_name"),
                    format!("renders `{longest}`, longer than the {IFNAME_MAX}-byte Linux limit"),
                );
            }
        }
        if !f.export_root.starts_with('/') || f.export_root.split('/').any(|c| c == "..") {
            self.problem(
                field("export_root"),
                format!("`{}` must be an absolute path without `..`", f.export_root),
            );
        }
        let (root_name, ok) = self.template(&field("root_name"), &f.root_name, ROOT_VARS);
        let per_slot = !ok
            || ["pi_ip", "slot", "vlan"].iter().any(|v| root_name.uses(v))
            || (root_name.uses("switch") && root_name.uses("port"));
        if !per_slot {
            self.problem(
                field("root_name"),
                "must name each slot apart: use `{pi_ip}`, `{slot}`, `{vlan}`, or `{switch}` with `{port}`",
            );
        }
        Fileserver {
            name: f.name.clone(),
            trunk_interface: f.trunk_interface.clone(),
            storage_pool: pool.unwrap_or_default(),
            storage_vlans: vlans,
            interface_name,
            export_root: f.export_root.trim_end_matches('/').to_string(),
            root_name,
        }
    }
    fn storage_pool(&mut self, field: &str, text: &str, slot_count: usize) -> Option<Ipv4Net> {
        let net: Ipv4Net = self.parse(
            field.into(),
            text.parse().map_err(|_| {
                format!("malformed CIDR `{text}`: expected an IPv4 network like 10.46.188.0/23")
            }),
        )?;
        if net.trunc() != net {
            self.problem(
                field,
                format!("`{text}` has host bits set; the network is {}", net.trunc()),
            );
            return None;
        }
        if net.prefix_len() > 30 {
            self.problem(field, format!("`{text}` is smaller than one /30"));
            return None;
        }
        let subnets = 1usize << (30 - net.prefix_len());
        if subnets < slot_count {
            self.problem(
                field,
                format!("too small: {subnets} /30 networks for {slot_count} slots"),
            );
        }
        Some(net)
    }
    pub(super) fn boot(&mut self, b: &model::Boot) {
        for (field, value) in [
            ("boot.console", &b.console),
            ("boot.kernel_args", &b.kernel_args),
        ] {
            if value.contains(['\n', '\r']) {
                self.problem(field, "the kernel command line is one line: no line breaks");
            }
        }
        for (i, line) in b.config_txt.iter().enumerate() {
            if line.contains(['\n', '\r']) {
                self.problem(
                    format!("boot.config_txt[{i}]"),
                    "one config.txt line per entry",
                );
            }
        }
    }
    pub(super) fn shelves(
        &mut self,
        raw: &Inventory,
        fileservers: &[Fileserver],
        shelf_fs: &[usize],
    ) -> Vec<Shelf> {
        self.unique(
            "shelf",
            raw.shelves
                .iter()
                .enumerate()
                .map(|(i, s)| (s.name.clone(), format!("shelves[{i}].name"), s.name.clone()))
                .collect(),
        );
        let mut out = Vec::new();
        for (i, s) in raw.shelves.iter().enumerate() {
            let at = |f: &str| format!("shelves[{i}].{f}");
            self.name(at("name"), &s.name, "shelf name");
            if self.vlan_id(at("public_vlan"), s.public_vlan)
                && fileservers
                    .iter()
                    .any(|f| f.storage_vlans.contains(&s.public_vlan))
            {
                self.problem(
                    at("public_vlan"),
                    format!(
                        "public VLAN {} lies inside the storage VLAN range",
                        s.public_vlan
                    ),
                );
            }
            let slots_here = raw
                .slots
                .iter()
                .filter(|sl| {
                    raw.switches
                        .iter()
                        .any(|sw| sw.name == sl.switch && sw.shelf == s.name)
                })
                .count();
            let prefix = self.ipv6_prefix(&at("ipv6.prefix"), &s.ipv6.prefix, slots_here);
            let on_link = s.ipv6.on_link;
            if let Some(p) = prefix
                && (on_link > p.prefix_len() || on_link == 0)
            {
                self.problem(
                    at("ipv6.on_link"),
                    format!("on-link prefix /{on_link} must be 1..={} (it contains the allocation prefix)", p.prefix_len()),
                );
            }
            let gateway: Option<Ipv6Addr> = self.parse(
                at("ipv6.gateway"),
                s.ipv6
                    .gateway
                    .parse()
                    .map_err(|_| format!("malformed IPv6 address `{}`", s.ipv6.gateway)),
            );
            if let (Some(p), Some(g)) = (prefix, gateway) {
                let link = Ipv6Net::new(p.network(), on_link.min(128)).map(|n| n.trunc());
                if link.is_ok_and(|l| !l.contains(&g)) {
                    self.problem(
                        at("ipv6.gateway"),
                        format!("gateway {g} is not on the public link /{on_link} of {p}"),
                    );
                } else if p.contains(&g) {
                    self.problem(
                        at("ipv6.gateway"),
                        format!("gateway {g} lies inside the allocation prefix {p}"),
                    );
                }
            }
            out.push(Shelf {
                name: s.name.clone(),
                fileserver: shelf_fs[i],
                public_vlan: s.public_vlan,
                ipv6_prefix: prefix.unwrap_or_default(),
                on_link,
                gateway: gateway.unwrap_or(Ipv6Addr::UNSPECIFIED),
            });
        }
        out
    }
    pub(super) fn ipv6_prefix(
        &mut self,
        field: &str,
        text: &str,
        slot_count: usize,
    ) -> Option<Ipv6Net> {
        let net: Ipv6Net = self.parse(
            field.into(),
            text.parse().map_err(|_| {
                format!("malformed IPv6 prefix `{text}`: expected e.g. 2001:db8:0:84:1000:1::/96")
            }),
        )?;
        if net.trunc() != net {
            self.problem(
                field,
                format!("`{text}` has host bits set; the prefix is {}", net.trunc()),
            );
            return None;
        }
        // Host 0 is never handed out, so a prefix of n host bits holds 2^n - 1 Pis.
        let host_bits = 128 - u32::from(net.prefix_len());
        let room = if host_bits >= 64 {
            u64::MAX
        } else {
            (1u64 << host_bits) - 1
        };
        if room < slot_count as u64 {
            self.problem(
                field,
                format!("too small: room for {room} address(es), {slot_count} slots"),
            );
        }
        Some(net)
    }
}
