//! The site inventory: what is racked where. Read from YAML under `hardware/`,
//! validated as a whole (every problem reported with file, line, column and field),
//! and handed on as a checked [`Site`] that later stages can trust.

mod ids;
pub mod model;
mod source_map;
mod validate;

pub use ids::{MacAddr, Serial, SlotKey};
pub use model::{BoardPolicy, Boot, ExportBackend, Exports, Model, Netboot, Owner, SlotKind, Snmp};
pub use source_map::{Location, SourceMap};
pub use validate::{hostname, validate};

use crate::template::Template;
use ipnet::{Ipv4Net, Ipv6Net};
use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

/// A validated site. Indexes (`Switch::shelf`, `Slot::switch`, `Slot::owner`) point
/// into the vectors here and are known to be in range.
#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    pub domain: Option<String>,
    pub hostname: Template,
    pub unknown_board: BoardPolicy,
    /// One or more, each serving its shelves.
    pub fileservers: Vec<Fileserver>,
    pub boot: Boot,
    /// Netboot settings, `boot_files` resolved against the inventory's directory.
    pub netboot: Netboot,
    pub exports: Exports,
    pub watchdog: model::Watchdog,
    pub shelves: Vec<Shelf>,
    pub switches: Vec<Switch>,
    pub owners: Vec<Owner>,
    pub dns: Option<SiteDns>,
    pub proxy: Option<SiteProxy>,
    pub monitor: Option<SiteMonitor>,
    pub backup: Option<crate::backup::plan::SiteBackup>,
    pub slots: Vec<Slot>,
}

/// The checked `monitor:` section.
#[derive(Debug, Clone)]
pub struct SiteMonitor {
    pub checks: model::Checks,
    pub owners: std::collections::BTreeMap<String, model::ChecksOverride>,
    /// By position.
    pub slots: std::collections::BTreeMap<String, model::ChecksOverride>,
    /// The staff's routes.
    pub routes: Vec<crate::monitor::uri::Target>,
    /// What people should know about the routes (NMA's closed service).
    pub warnings: Vec<String>,
    pub repeat: std::time::Duration,
    pub rate_max: u32,
    pub rate_per: std::time::Duration,
    pub flap: crate::monitor::flap::Rule,
    pub providers: model::Providers,
    pub smtp: Option<model::Smtp>,
    /// By switch name.
    pub poe_budget_w: std::collections::BTreeMap<String, u32>,
    pub poe_warn_pct: u8,
    pub disk_warn_pct: u8,
    pub disk_horizon: std::time::Duration,
    pub customer_route_networks: Vec<ipnet::IpNet>,
}

impl SiteMonitor {
    /// Whether a customer's route may reach `ip`: a public address, or one in
    /// the networks the site allows.
    pub fn customer_may_reach(&self, ip: std::net::IpAddr) -> bool {
        crate::monitor::uri::is_public(ip)
            || self.customer_route_networks.iter().any(|n| n.contains(&ip))
    }

    /// The checks of the slot at `position` held by `owner`: the site's, its
    /// owner's changes, then the slot's own.
    pub fn checks_for(&self, owner: Option<&str>, position: &str) -> model::Checks {
        let mut c = self.checks.clone();
        if let Some(o) = owner.and_then(|o| self.owners.get(o)) {
            c = c.with(o);
        }
        if let Some(s) = self.slots.get(position) {
            c = c.with(s);
        }
        c
    }
}

/// The checked `proxy:` section.
#[derive(Debug, Clone)]
pub struct SiteProxy {
    pub http: Vec<std::net::SocketAddr>,
    pub tls: Vec<std::net::SocketAddr>,
    pub header_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
    pub connect_timeout: std::time::Duration,
    pub max_connections: usize,
    pub per_backend: usize,
    pub tls_default: Option<std::net::SocketAddr>,
    /// `None`: one per CPU.
    pub threads: Option<usize>,
}

/// The checked `dns:` section; every name absolute and lower-case.
#[derive(Debug, Clone)]
pub struct SiteDns {
    pub servers: Vec<std::net::SocketAddr>,
    pub zone: String,
    pub reverse_zones: Vec<String>,
    /// The key, its secret file resolved against the inventory's directory.
    pub key: model::TsigKey,
    pub ttl: u32,
    pub proxy_ipv4: Option<std::net::Ipv4Addr>,
    pub reconcile: std::time::Duration,
    /// The zones owners manage names in (`owners[].zones`), by owner.
    pub owner_zones: std::collections::BTreeMap<String, Vec<String>>,
    pub aname: SiteAname,
}

/// The checked `dns.aname:` section.
#[derive(Debug, Clone)]
pub struct SiteAname {
    pub resolvers: Vec<std::net::SocketAddr>,
    /// Absolute names; `*.` before one allows the names under it, `*` any.
    pub allow: Vec<String>,
    pub floor: u32,
    pub max_chain: usize,
    pub timeout: std::time::Duration,
}

impl SiteDns {
    /// The forward zone, the reverse zones, then the owners' zones.
    pub fn zones(&self) -> Vec<String> {
        let mut out: Vec<String> = std::iter::once(self.zone.clone())
            .chain(self.reverse_zones.iter().cloned())
            .collect();
        for z in self.owner_zones.values().flatten() {
            if !out.contains(z) {
                out.push(z.clone());
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct Fileserver {
    pub name: String,
    pub trunk_interface: String,
    pub storage_pool: Ipv4Net,
    pub storage_vlans: RangeInclusive<u16>,
    pub interface_name: Template,
    pub export_root: String,
    pub root_name: Template,
}

#[derive(Debug, Clone)]
pub struct Shelf {
    pub name: String,
    /// Index into [`Site::fileservers`].
    pub fileserver: usize,
    pub public_vlan: u16,
    pub ipv6_prefix: Ipv6Net,
    pub on_link: u8,
    pub gateway: Ipv6Addr,
}

#[derive(Debug, Clone)]
pub struct Switch {
    pub name: String,
    pub shelf: usize,
    pub address: IpAddr,
    pub snmp_port: u16,
    pub profile: String,
    pub snmp: Snmp,
    pub ports: u16,
    pub trunk_port: u16,
    pub snmp_timeout: std::time::Duration,
    pub snmp_retries: u32,
    pub power: model::PowerPolicy,
}

#[derive(Debug, Clone)]
pub struct Slot {
    pub key: SlotKey,
    pub position: String,
    pub switch: usize,
    pub pinned_vlan: Option<u16>,
    pub owner: Option<usize>,
    pub board: Option<Board>,
    pub kind: model::SlotKind,
}

impl Slot {
    pub fn port(&self) -> u16 {
        self.key.port
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Board {
    pub serial: Serial,
    pub mac: MacAddr,
    pub model: Model,
}

impl Site {
    /// The shelf a slot belongs to (through its switch).
    pub fn shelf_of(&self, slot: &Slot) -> &Shelf {
        &self.shelves[self.switches[slot.switch].shelf]
    }

    /// The fileserver serving a slot (through its shelf).
    pub fn fileserver_of(&self, slot: &Slot) -> &Fileserver {
        &self.fileservers[self.shelf_of(slot).fileserver]
    }

    /// A fileserver by name.
    pub fn fileserver(&self, name: &str) -> Option<&Fileserver> {
        self.fileservers.iter().find(|f| f.name == name)
    }
}

/// One thing wrong with an input file, at the place it is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub at: Location,
    /// Path of the offending field, e.g. `boards[3].serial`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.at.line,
            self.at.column,
            self.field,
            self.message
        )
    }
}

/// Every problem found in one pass, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Problems),
}

/// Reads and validates an inventory file against the known switch profile names.
pub fn load(path: &Path, profiles: &BTreeSet<String>) -> Result<Site, InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    validate(path, &text, profiles).map_err(InventoryError::Invalid)
}

/// JSON Schema of the inventory file, for editors.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(model::Inventory)).expect("schema is JSON")
}
