//! Checks of the hardware: switches and their SNMP secrets, slots, boards, and the
//! host names the slots get.

use super::{Checker, hostname, is_hostname_label};
use crate::inventory::model::{self, Inventory, SecretRef};
use crate::inventory::{Board, Fileserver, MacAddr, Serial, Shelf, Slot, SlotKey, Switch};
use crate::template::Template;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

impl Checker<'_> {
    pub(super) fn switches(&mut self, raw: &Inventory) -> Vec<Switch> {
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
            if s.power.batch == 0 {
                self.problem(at("power.batch"), "a batch needs at least one port");
            }
            if s.snmp_timeout_ms == 0 {
                self.problem(at("snmp_timeout_ms"), "a timeout must be above 0 ms");
            }
            out.push(Switch {
                name: s.name.clone(),
                shelf: shelf.unwrap_or_default(),
                address: address.unwrap_or(IpAddr::V4([0, 0, 0, 0].into())),
                snmp_port: s.snmp_port,
                profile: s.profile.clone(),
                snmp: self.resolve_secrets(&s.snmp),
                ports: s.ports,
                trunk_port: s.trunk_port,
                snmp_timeout: Duration::from_millis(s.snmp_timeout_ms),
                snmp_retries: s.snmp_retries,
                power: s.power.clone(),
            });
        }
        out
    }
    /// Secret files named relative to the inventory are read from its directory.
    pub(super) fn resolve(&self, r: &SecretRef) -> SecretRef {
        let dir = self.file.parent().unwrap_or(Path::new(""));
        match r {
            SecretRef::File(p) => SecretRef::File(dir.join(p).to_string_lossy().into_owned()),
            other => other.clone(),
        }
    }

    fn resolve_secrets(&self, snmp: &model::Snmp) -> model::Snmp {
        let resolve = |r: &SecretRef| self.resolve(r);
        match snmp {
            model::Snmp::V2c { community } => model::Snmp::V2c {
                community: resolve(community),
            },
            model::Snmp::V3 {
                user,
                auth,
                privacy,
            } => model::Snmp::V3 {
                user: user.clone(),
                auth: model::V3Auth {
                    password: resolve(&auth.password),
                    ..auth.clone()
                },
                privacy: model::V3Privacy {
                    password: resolve(&privacy.password),
                    ..privacy.clone()
                },
            },
        }
    }

    pub(super) fn snmp(&mut self, field: &str, snmp: &model::Snmp) {
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
            self.secret(&field, secret);
        }
    }

    /// A secret reference: by environment variable or file, never inline.
    pub(super) fn secret(&mut self, field: &str, secret: &SecretRef) {
        match secret {
            SecretRef::Env(v)
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
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

    pub(super) fn slots(
        &mut self,
        raw: &Inventory,
        fileservers: &[Fileserver],
        shelves: &[Shelf],
        switches: &[Switch],
    ) -> Vec<Slot> {
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
            let fs = switch
                .and_then(|w| shelves.get(switches[w].shelf))
                .and_then(|shelf| fileservers.get(shelf.fileserver));
            if let Some(v) = s.vlan
                && self.vlan_id(slot_field(i, "vlan"), v)
                && let Some(fs) = fs
                && !fs.storage_vlans.contains(&v)
            {
                self.problem(
                    slot_field(i, "vlan"),
                    format!(
                        "pinned VLAN {v} is outside {} storage range {}..={}",
                        match fileservers.len() {
                            1 => "the".to_string(),
                            _ => format!("fileserver {}'s", fs.name),
                        },
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
                kind: s.kind,
            });
        }
        out
    }
    pub(super) fn boards(&mut self, raw: &Inventory, slots: &mut [Slot]) {
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
    pub(super) fn hostnames(&mut self, raw: &Inventory, t: &Template, slots: &[Slot]) {
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
