//! Inventory validation: one pass that collects every problem, each pinned to the
//! line and column of the offending value.

use super::model::{self, Inventory, SecretRef};
use super::{
    Board, Fileserver, Location, MacAddr, Problem, Problems, Serial, Shelf, Site, Slot, SlotKey,
    SourceMap, Switch,
};
use crate::template::Template;
use ipnet::{Ipv4Net, Ipv6Net};
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;

/// Placeholders each template field may use.
pub const HOSTNAME_VARS: &[&str] = &["site", "shelf", "position", "port"];
pub const INTERFACE_VARS: &[&str] = &["trunk", "vlan"];
pub const ROOT_VARS: &[&str] = &["pi_ip", "slot", "switch", "port", "vlan"];

/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;

/// Parses and checks an inventory; `file` is only used to name it in problems.
pub fn validate(file: &Path, text: &str, profiles: &BTreeSet<String>) -> Result<Site, Problems> {
    let raw: Inventory = serde_yaml::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| Location {
                line: l.line(),
                column: l.column(),
            })
            .unwrap_or_default();
        let message = e.to_string();
        // The YAML error names the field as a path prefix ("slots[2].port: invalid
        // type ..."); lift it out so the problem reads like every other one.
        let (field, message) = match message.split_once(": ") {
            Some((path, rest)) if !path.contains(' ') => (path.to_string(), rest.to_string()),
            _ => ("(document)".to_string(), message),
        };
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        Problems(vec![Problem {
            file: file.to_path_buf(),
            at,
            field,
            message,
        }])
    })?;
    let mut c = Checker {
        file,
        profiles,
        map: SourceMap::build(text),
        problems: Vec::new(),
    };
    let site = c.site(&raw);
    if c.problems.is_empty() {
        Ok(site)
    } else {
        c.problems.sort_by_key(|p| p.at);
        Err(Problems(c.problems))
    }
}

struct Checker<'a> {
    file: &'a Path,
    profiles: &'a BTreeSet<String>,
    map: SourceMap,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let field = field.into();
        self.problems.push(Problem {
            file: self.file.to_path_buf(),
            at: self.map.locate(&field),
            field,
            message: message.into(),
        });
    }

    fn line(&self, field: &str) -> usize {
        self.map.locate(field).line
    }

    /// Reports every later occurrence of a repeated value, naming the first one.
    fn unique<K: Eq + std::hash::Hash>(&mut self, what: &str, items: Vec<(K, String, String)>) {
        let mut seen: HashMap<K, String> = HashMap::new();
        for (key, field, shown) in items {
            match seen.get(&key) {
                Some(first) => {
                    let line = self.line(first);
                    self.problem(
                        field,
                        format!("duplicate {what} {shown} (first at line {line})"),
                    );
                }
                None => {
                    seen.insert(key, field);
                }
            }
        }
    }

    fn parse<T>(&mut self, field: String, r: Result<T, String>) -> Option<T> {
        r.map_err(|e| self.problem(field, e)).ok()
    }

    /// A checked template; on error, the problem is recorded and an empty
    /// template stands in so the other checks still run.
    fn template(&mut self, field: &str, source: &str, vars: &[&str]) -> (Template, bool) {
        match Template::parse(source, vars) {
            Ok(t) => (t, true),
            Err(e) => {
                self.problem(field, e);
                (Template::parse("", &[]).expect("empty template"), false)
            }
        }
    }

    fn name(&mut self, field: String, name: &str, what: &str) {
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && !name.starts_with('.');
        if !ok {
            self.problem(
                field,
                format!("{what} `{name}` must be 1-32 letters, digits, `-`, `_` or `.` (used in file and VLAN names)"),
            );
        }
    }

    fn vlan_id(&mut self, field: String, id: u16) -> bool {
        let ok = (1..=4094).contains(&id);
        if !ok {
            self.problem(field, format!("VLAN id {id} is outside 1..=4094"));
        }
        ok
    }

    fn site(&mut self, raw: &Inventory) -> Site {
        self.name("site.name".into(), &raw.site.name, "site name");
        if let Some(d) = &raw.site.domain
            && !is_dns_name(d)
        {
            self.problem("site.domain", format!("`{d}` is not a DNS domain name"));
        }
        let (hostname, hostname_ok) =
            self.template("site.hostname", &raw.site.hostname, HOSTNAME_VARS);
        let fileserver = self.fileserver(&raw.fileserver, raw.slots.len());
        self.boot(&raw.boot);
        let shelves = self.shelves(raw, &fileserver);
        let switches = self.switches(raw);
        let owners = raw.owners.clone();
        self.unique(
            "owner",
            owners
                .iter()
                .enumerate()
                .map(|(i, o)| (o.name.clone(), format!("owners[{i}].name"), o.name.clone()))
                .collect(),
        );
        let mut slots = self.slots(raw, &fileserver, &switches);
        self.boards(raw, &mut slots);
        if hostname_ok {
            self.hostnames(raw, &hostname, &slots);
        }
        Site {
            name: raw.site.name.clone(),
            domain: raw.site.domain.clone(),
            hostname,
            unknown_board: raw.site.unknown_board,
            fileserver,
            boot: raw.boot.clone(),
            netboot: model::Netboot {
                boot_files: self
                    .file
                    .parent()
                    .unwrap_or(Path::new(""))
                    .join(&raw.netboot.boot_files)
                    .to_string_lossy()
                    .into_owned(),
                ..raw.netboot.clone()
            },
            exports: raw.exports.clone(),
            shelves,
            switches,
            owners,
            slots,
        }
    }

    fn fileserver(&mut self, f: &model::Fileserver, slot_count: usize) -> Fileserver {
        if !is_hostname_label(&f.name) {
            self.problem(
                "fileserver.name",
                format!("`{}` is not a host name", f.name),
            );
        }
        if f.trunk_interface.is_empty()
            || f.trunk_interface.len() > IFNAME_MAX
            || f.trunk_interface.contains(['/', ' ', '\t', ':'])
        {
            self.problem(
                "fileserver.trunk_interface",
                format!("`{}` is not a Linux interface name", f.trunk_interface),
            );
        }
        let pool = self.storage_pool(&f.storage_pool, slot_count);
        let vlans = f.storage_vlans.first..=f.storage_vlans.last;
        let first_ok = self.vlan_id("fileserver.storage_vlans.first".into(), *vlans.start());
        let last_ok = self.vlan_id("fileserver.storage_vlans.last".into(), *vlans.end());
        if first_ok && last_ok {
            let size = vlans.len();
            if vlans.is_empty() {
                self.problem(
                    "fileserver.storage_vlans",
                    format!(
                        "empty range: first {} is above last {}",
                        vlans.start(),
                        vlans.end()
                    ),
                );
            } else if size < slot_count {
                self.problem(
                    "fileserver.storage_vlans",
                    format!("too small: {size} VLAN ids for {slot_count} slots"),
                );
            }
        }
        let (interface_name, ok) = self.template(
            "fileserver.interface_name",
            &f.interface_name,
            INTERFACE_VARS,
        );
        if ok && !interface_name.uses("vlan") {
            self.problem(
                "fileserver.interface_name",
                "must contain `{vlan}`: each slot needs its own interface",
            );
        } else if ok {
            let longest = interface_name.render(|v| match v {
                "trunk" => f.trunk_interface.clone(),
                _ => vlans.end().to_string(),
            });
            if longest.len() > IFNAME_MAX {
                self.problem(
                    "fileserver.interface_name",
                    format!("renders `{longest}`, longer than the {IFNAME_MAX}-byte Linux limit"),
                );
            }
        }
        if !f.export_root.starts_with('/') || f.export_root.split('/').any(|c| c == "..") {
            self.problem(
                "fileserver.export_root",
                format!("`{}` must be an absolute path without `..`", f.export_root),
            );
        }
        let (root_name, ok) = self.template("fileserver.root_name", &f.root_name, ROOT_VARS);
        let per_slot = !ok
            || ["pi_ip", "slot", "vlan"].iter().any(|v| root_name.uses(v))
            || (root_name.uses("switch") && root_name.uses("port"));
        if !per_slot {
            self.problem(
                "fileserver.root_name",
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

    fn storage_pool(&mut self, text: &str, slot_count: usize) -> Option<Ipv4Net> {
        let field = "fileserver.storage_pool";
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

    fn boot(&mut self, b: &model::Boot) {
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

    fn shelves(&mut self, raw: &Inventory, fs: &Fileserver) -> Vec<Shelf> {
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
                && fs.storage_vlans.contains(&s.public_vlan)
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
                public_vlan: s.public_vlan,
                ipv6_prefix: prefix.unwrap_or_default(),
                on_link,
                gateway: gateway.unwrap_or(Ipv6Addr::UNSPECIFIED),
            });
        }
        out
    }

    fn ipv6_prefix(&mut self, field: &str, text: &str, slot_count: usize) -> Option<Ipv6Net> {
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

    fn switches(&mut self, raw: &Inventory) -> Vec<Switch> {
        self.unique(
            "switch",
            raw.switches
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    (
                        s.name.clone(),
                        format!("switches[{i}].name"),
                        s.name.clone(),
                    )
                })
                .collect(),
        );
        let mut out = Vec::new();
        for (i, s) in raw.switches.iter().enumerate() {
            let at = |f: &str| format!("switches[{i}].{f}");
            self.name(at("name"), &s.name, "switch name");
            let shelf = raw.shelves.iter().position(|sh| sh.name == s.shelf);
            if shelf.is_none() {
                self.problem(at("shelf"), format!("unknown shelf `{}`", s.shelf));
            }
            let address: Option<IpAddr> = self.parse(
                at("address"),
                s.address.parse().map_err(|_| {
                    format!(
                        "malformed management address `{}`: expected an IP address",
                        s.address
                    )
                }),
            );
            if !self.profiles.contains(&s.profile) {
                let known: Vec<_> = self.profiles.iter().map(String::as_str).collect();
                self.problem(
                    at("profile"),
                    format!(
                        "unknown switch profile `{}`; known: {}",
                        s.profile,
                        known.join(", ")
                    ),
                );
            }
            if s.ports == 0 {
                self.problem(at("ports"), "a switch needs at least one port");
            }
            if s.trunk_port == 0 || s.trunk_port > s.ports {
                self.problem(
                    at("trunk_port"),
                    format!("port {} is not among ports 1..={}", s.trunk_port, s.ports),
                );
            }
            self.snmp(&at("snmp"), &s.snmp);
            out.push(Switch {
                name: s.name.clone(),
                shelf: shelf.unwrap_or_default(),
                address: address.unwrap_or(IpAddr::V4([0, 0, 0, 0].into())),
                snmp_port: s.snmp_port,
                profile: s.profile.clone(),
                snmp: s.snmp.clone(),
                ports: s.ports,
                trunk_port: s.trunk_port,
            });
        }
        out
    }

    fn snmp(&mut self, field: &str, snmp: &model::Snmp) {
        let secrets = match snmp {
            model::Snmp::V2c { community } => vec![(format!("{field}.community"), community)],
            model::Snmp::V3 {
                user,
                auth,
                privacy,
            } => {
                if user.is_empty() {
                    self.problem(format!("{field}.user"), "empty SNMPv3 user name");
                }
                vec![
                    (format!("{field}.auth.password"), &auth.password),
                    (format!("{field}.privacy.password"), &privacy.password),
                ]
            }
        };
        for (field, secret) in secrets {
            match secret {
                SecretRef::Env(v)
                    if v.is_empty()
                        || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
                {
                    self.problem(
                        format!("{field}.env"),
                        format!("`{v}` is not an environment variable name"),
                    );
                }
                SecretRef::File(p) if p.is_empty() => {
                    self.problem(format!("{field}.file"), "empty secret file path");
                }
                SecretRef::Inline => self.problem(
                    field,
                    "secrets are never written inline: use `{ env: VAR }` or `{ file: PATH }`",
                ),
                _ => {}
            }
        }
    }

    fn slots(&mut self, raw: &Inventory, fs: &Fileserver, switches: &[Switch]) -> Vec<Slot> {
        let slot_field = |i: usize, f: &str| format!("slots[{i}].{f}");
        self.unique(
            "position",
            raw.slots
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    (
                        s.position.clone(),
                        slot_field(i, "position"),
                        s.position.clone(),
                    )
                })
                .collect(),
        );
        self.unique(
            "port",
            raw.slots
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let key = (s.switch.clone(), s.port);
                    (
                        key,
                        slot_field(i, "port"),
                        format!("{} on switch {}", s.port, s.switch),
                    )
                })
                .collect(),
        );
        self.unique(
            "pinned VLAN",
            raw.slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.vlan.map(|v| (v, slot_field(i, "vlan"), v.to_string())))
                .collect(),
        );
        let mut out = Vec::new();
        for (i, s) in raw.slots.iter().enumerate() {
            self.name(slot_field(i, "position"), &s.position, "position");
            let switch = switches.iter().position(|sw| sw.name == s.switch);
            match switch.map(|w| &switches[w]) {
                None => self.problem(
                    slot_field(i, "switch"),
                    format!("unknown switch `{}`", s.switch),
                ),
                Some(sw) if s.port == 0 || s.port > sw.ports => self.problem(
                    slot_field(i, "port"),
                    format!(
                        "port {} is not among switch {}'s ports 1..={}",
                        s.port, sw.name, sw.ports
                    ),
                ),
                Some(sw) if s.port == sw.trunk_port => self.problem(
                    slot_field(i, "port"),
                    format!("port {} is switch {}'s trunk port", s.port, sw.name),
                ),
                Some(_) => {}
            }
            if let Some(v) = s.vlan
                && self.vlan_id(slot_field(i, "vlan"), v)
                && !fs.storage_vlans.contains(&v)
            {
                self.problem(
                    slot_field(i, "vlan"),
                    format!(
                        "pinned VLAN {v} is outside the storage range {}..={}",
                        fs.storage_vlans.start(),
                        fs.storage_vlans.end()
                    ),
                );
            }
            let owner = s.owner.as_ref().and_then(|o| {
                let found = raw.owners.iter().position(|x| &x.name == o);
                if found.is_none() {
                    self.problem(slot_field(i, "owner"), format!("unknown owner `{o}`"));
                }
                found
            });
            out.push(Slot {
                key: SlotKey {
                    switch: s.switch.clone(),
                    port: s.port,
                },
                position: s.position.clone(),
                switch: switch.unwrap_or_default(),
                pinned_vlan: s.vlan,
                owner,
                board: None,
            });
        }
        out
    }

    fn boards(&mut self, raw: &Inventory, slots: &mut [Slot]) {
        let field = |i: usize, f: &str| format!("boards[{i}].{f}");
        let mut parsed = Vec::new();
        for (i, b) in raw.boards.iter().enumerate() {
            let serial: Option<Serial> = self.parse(field(i, "serial"), b.serial.parse());
            let mac: Option<MacAddr> = self.parse(field(i, "mac"), b.mac.parse());
            if let (Some(s), Some(m)) = (serial, mac)
                && m.is_raspberry_pi_oui()
                && m != MacAddr::of_pi3(s)
            {
                self.problem(
                    field(i, "mac"),
                    format!(
                        "MAC {m} disagrees with serial {s}: a Pi 3's MAC is {}",
                        MacAddr::of_pi3(s)
                    ),
                );
            }
            parsed.push((serial, mac));
        }
        self.unique(
            "serial",
            parsed
                .iter()
                .enumerate()
                .filter_map(|(i, (s, _))| s.map(|s| (s, field(i, "serial"), s.to_string())))
                .collect(),
        );
        self.unique(
            "MAC",
            parsed
                .iter()
                .enumerate()
                .filter_map(|(i, (_, m))| m.map(|m| (m, field(i, "mac"), m.to_string())))
                .collect(),
        );
        self.unique(
            "board for slot",
            raw.boards
                .iter()
                .enumerate()
                .map(|(i, b)| (b.slot.clone(), field(i, "slot"), b.slot.clone()))
                .collect(),
        );
        for (i, (b, (serial, mac))) in raw.boards.iter().zip(parsed).enumerate() {
            match slots.iter_mut().find(|s| s.position == b.slot) {
                None => self.problem(
                    field(i, "slot"),
                    format!("board in no slot: no slot has position `{}`", b.slot),
                ),
                Some(slot) => {
                    if let (Some(serial), Some(mac), None) = (serial, mac, &slot.board) {
                        slot.board = Some(Board {
                            serial,
                            mac,
                            model: b.model,
                        });
                    }
                }
            }
        }
    }

    /// Every slot's rendered hostname must be a valid, unique host name. Slots
    /// whose position repeats an earlier one are already reported as such.
    fn hostnames(&mut self, raw: &Inventory, t: &Template, slots: &[Slot]) {
        let mut seen = Vec::new();
        let mut positions = BTreeSet::new();
        for (i, slot) in slots.iter().enumerate() {
            if !positions.insert(slot.position.as_str()) {
                continue;
            }
            let shelf = raw
                .switches
                .get(slot.switch)
                .map_or("", |sw| sw.shelf.as_str());
            let name = hostname(t, &raw.site.name, shelf, slot);
            if !is_hostname_label(&name) {
                self.problem(
                    format!("slots[{i}].position"),
                    format!("hostname `{name}` (from site.hostname) is not a valid host name"),
                );
            }
            seen.push((name.clone(), format!("slots[{i}].position"), name));
        }
        self.unique("hostname", seen);
    }
}

/// A slot's hostname: the site template, lower-cased.
pub fn hostname(t: &Template, site: &str, shelf: &str, slot: &Slot) -> String {
    t.render(|v| match v {
        "site" => site.to_string(),
        "shelf" => shelf.to_string(),
        "position" => slot.position.clone(),
        _ => slot.port().to_string(),
    })
    .to_lowercase()
}

fn is_hostname_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_name(s: &str) -> bool {
    s.len() <= 253 && s.trim_end_matches('.').split('.').all(is_hostname_label)
}
