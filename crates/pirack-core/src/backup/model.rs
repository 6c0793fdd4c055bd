//! The `backup:` section of the inventory.

use crate::inventory::model::SecretRef;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Backups of every provisioned slot's root, taken on the fileserver.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// The directory pirack keeps each repository's key in (it makes them,
    /// mode 0600): `<keys>/<target>/<owner>.key`.
    pub keys: String,
    /// Where backups go: each slot's backup goes to every one of them.
    pub targets: Vec<Target>,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default)]
    pub retention: Retention,
    /// A slot whose last good backup at a target is older than this is stale.
    #[serde(default = "default_fresh_h")]
    pub fresh_h: u32,
    /// A target with less free than this is short of space.
    #[serde(default = "default_space_warn_pct")]
    pub space_warn_pct: u8,
    /// `restic check` reads one part in this many of the data each time,
    /// a different part each day.
    #[serde(default = "default_check_parts")]
    pub check_parts: u32,
    /// Per owner (by name), then per slot (by position).
    #[serde(default)]
    pub owners: BTreeMap<String, Override>,
    #[serde(default)]
    pub slots: BTreeMap<String, Override>,
}

/// One place backups go: a path on the fileserver (a local or mounted
/// disk), an SFTP server, or a restic REST server; exactly one of them.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub name: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub sftp: Option<Sftp>,
    #[serde(default)]
    pub rest: Option<Rest>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sftp {
    pub host: String,
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    pub user: String,
    /// The directory the owners' repositories go under.
    pub path: String,
    /// The private key pirack logs in with.
    pub identity: SecretRef,
    /// The server's host key, as an OpenSSH known_hosts file: never trusted on
    /// first use.
    pub known_hosts: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rest {
    /// `https://host:8000/` (restic's `rest:` repositories under it).
    pub url: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<SecretRef>,
}

/// When backups run: every `every_h` hours, each slot at its own offset in
/// the `window_h` hours from `start` (UTC, `HH:MM`). Hours may be fractions
/// (`0.25`: every quarter of an hour), down to 0.01 (36 s).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    #[serde(default = "default_every_h")]
    pub every_h: f64,
    #[serde(default = "default_start")]
    pub start: String,
    #[serde(default = "default_window_h")]
    pub window_h: f64,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            every_h: default_every_h(),
            start: default_start(),
            window_h: default_window_h(),
        }
    }
}

/// Snapshots kept (`restic forget --keep-daily ...`), then pruned.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    #[serde(default = "default_daily")]
    pub daily: u32,
    #[serde(default = "default_weekly")]
    pub weekly: u32,
    #[serde(default = "default_monthly")]
    pub monthly: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            daily: default_daily(),
            weekly: default_weekly(),
            monthly: default_monthly(),
        }
    }
}

/// An owner's or a slot's changes to the site's backups.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// False: no backups (the owner keeps its own).
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub schedule: Option<Schedule>,
    #[serde(default)]
    pub retention: Option<Retention>,
    #[serde(default)]
    pub fresh_h: Option<u32>,
}

fn default_fresh_h() -> u32 {
    36
}
fn default_space_warn_pct() -> u8 {
    10
}
fn default_check_parts() -> u32 {
    30
}
fn default_ssh_port() -> u16 {
    22
}
fn default_every_h() -> f64 {
    24.0
}
fn default_start() -> String {
    "01:00".into()
}
fn default_window_h() -> f64 {
    4.0
}
fn default_daily() -> u32 {
    7
}
fn default_weekly() -> u32 {
    4
}
fn default_monthly() -> u32 {
    6
}
