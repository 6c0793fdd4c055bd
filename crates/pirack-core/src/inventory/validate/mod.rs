//! Inventory validation: one pass that collects every problem, each pinned to the
//! line and column of the offending value. The checks of the networks and of the
//! hardware live in their own files.

mod backup;
mod dns;
mod hardware;
mod monitor;
mod network;
mod proxy;

use super::model::{self, Inventory};
use super::{Location, Problem, Problems, Site, Slot, SourceMap};
use crate::template::Template;
use std::collections::{BTreeSet, HashMap};
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
        let (fileservers, shelf_fs) = self.fileservers(raw);
        self.boot(&raw.boot);
        let shelves = self.shelves(raw, &fileservers, &shelf_fs);
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
        let mut slots = self.slots(raw, &fileservers, &shelves, &switches);
        self.boards(raw, &mut slots);
        if hostname_ok {
            self.hostnames(raw, &hostname, &slots);
        }
        let dns = raw
            .dns
            .as_ref()
            .and_then(|d| self.dns(d, raw.site.domain.as_deref(), &shelves, &raw.owners));
        let proxy = raw.proxy.as_ref().and_then(|p| self.proxy(p, dns.as_ref()));
        let monitor = raw
            .monitor
            .as_ref()
            .and_then(|m| self.monitor(m, &raw.owners, &switches, &slots, raw.proxy.is_some()));
        let backup = raw
            .backup
            .as_ref()
            .and_then(|b| self.backup(b, &raw.owners, &slots));
        Site {
            name: raw.site.name.clone(),
            domain: raw.site.domain.clone(),
            hostname,
            unknown_board: raw.site.unknown_board,
            fileservers,
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
            watchdog: raw.watchdog.clone(),
            shelves,
            switches,
            owners,
            dns,
            proxy,
            monitor,
            backup,
            slots,
        }
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

pub(super) fn is_dns_name(s: &str) -> bool {
    s.len() <= 253 && s.trim_end_matches('.').split('.').all(is_hostname_label)
}
