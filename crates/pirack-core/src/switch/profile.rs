//! Switch profiles (`switch-profiles/<name>.yaml`): how one switch family numbers its
//! ports in the MIBs pirack drives.

use super::oid::Oid;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One switch family.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub ports: PortMapping,
    pub poe: Poe,
    /// How port VLAN membership is set over SNMP.
    pub vlans: VlanControl,
    /// Whether `dot1qVlanStaticName` may be written: many switches keep it
    /// read-only, or lack it; then VLANs are left unnamed (names are optional).
    #[serde(default = "yes")]
    pub vlan_names: bool,
}

/// Where front-panel port `n` appears in the standard tables.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortMapping {
    /// `dot1dBasePort` (the Q-BRIDGE-MIB index and PortList bit) is `n + bridge_port_offset`.
    #[serde(default)]
    pub bridge_port_offset: u16,
    /// `ifIndex` is `n + if_index_offset`.
    #[serde(default)]
    pub if_index_offset: u32,
    /// POWER-ETHERNET-MIB group index (`pethPsePortGroupIndex`) of every port.
    #[serde(default = "one")]
    pub pse_group: u32,
    /// `pethPsePortIndex` is `n + pse_port_offset`.
    #[serde(default)]
    pub pse_port_offset: u32,
    /// Octets in a PortList written to this switch; `None` = just enough for its ports.
    #[serde(default)]
    pub port_list_octets: Option<usize>,
}

/// A MIB object by name (for people and errors) and number (for the wire).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MibObject {
    /// `MODULE::object`, as the vendor's MIB file names it.
    pub object: String,
    pub oid: Oid,
}

/// The PoE objects. Port columns are indexed like `pethPsePortTable`
/// (group, port); the main PSE table by group.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Poe {
    /// Port power switch, a TruthValue: 1 on, 2 off (`pethPsePortAdminEnable`).
    pub admin: MibObject,
    /// RFC 3621 detection status: 1 disabled, 2 searching, 3 deliveringPower,
    /// 4 fault, 5 test, 6 otherFault (`pethPsePortDetectionStatus`).
    pub detection: MibObject,
    /// Power drawn from the whole PSE, in watts (`pethMainPseConsumptionPower`).
    #[serde(default)]
    pub main_consumption: Option<MibObject>,
    /// The PSE's state: 1 on, 2 off, 3 faulty (`pethMainPseOperStatus`).
    #[serde(default)]
    pub main_status: Option<MibObject>,
    /// Power drawn on each port, a vendor column; RFC 3621 has none.
    #[serde(default)]
    pub port_power: Option<PortPower>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortPower {
    #[serde(flatten)]
    pub column: MibObject,
    pub unit: PowerUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PowerUnit {
    Milliwatts,
    Deciwatts,
    Watts,
}

impl PowerUnit {
    pub fn to_milliwatts(self, value: u64) -> u64 {
        match self {
            PowerUnit::Milliwatts => value,
            PowerUnit::Deciwatts => value.saturating_mul(100),
            PowerUnit::Watts => value.saturating_mul(1000),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum VlanControl {
    /// Q-BRIDGE-MIB (RFC 4363): `dot1qVlanStaticTable` rows and `dot1qPvid`.
    QBridge,
    /// VLANs are not set over SNMP on this family; pirack only renders the plan.
    None,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

impl PortMapping {
    pub fn bridge_port(&self, port: u16) -> u32 {
        u32::from(port) + u32::from(self.bridge_port_offset)
    }
    /// The front-panel port of a bridge port, if it is one.
    pub fn front_port(&self, bridge_port: u32) -> Option<u16> {
        bridge_port
            .checked_sub(u32::from(self.bridge_port_offset))
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
    }
    /// The `pethPsePortTable` index (group, port) of a front-panel port.
    pub fn pse_index(&self, port: u16) -> [u32; 2] {
        [self.pse_group, u32::from(port) + self.pse_port_offset]
    }
}

/// Every profile of a site, by name.
#[derive(Debug, Clone, Default)]
pub struct Profiles(pub BTreeMap<String, Profile>);

impl Profiles {
    pub fn names(&self) -> BTreeSet<String> {
        self.0.keys().cloned().collect()
    }
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.0.get(name)
    }

    /// Reads every `*.yaml` in `dir`; a profile's file stem must equal its name.
    pub fn load_dir(dir: &Path) -> Result<Profiles, ProfileError> {
        let read_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ProfileError::Read { path, source }
        };
        let mut out = BTreeMap::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_err(dir))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(read_err(dir))?;
        entries.sort();
        for path in entries
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        {
            let text = std::fs::read_to_string(&path).map_err(read_err(&path))?;
            let profile: Profile =
                serde_yaml::from_str(&text).map_err(|e| ProfileError::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if profile.name != stem {
                let message = format!(
                    "name `{}` differs from the file name `{stem}`",
                    profile.name
                );
                return Err(ProfileError::Parse { path, message });
            }
            out.insert(profile.name.clone(), profile);
        }
        Ok(Profiles(out))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read switch profiles at {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
}
