//! The port VLAN layout a switch should have: each Pi port untagged in its own
//! storage VLAN (also its PVID) and tagged in the shelf's public VLAN, the trunk
//! tagged in all of them. The plan computes it; drift compares a switch against it.

use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwitchPlan {
    pub switch: String,
    pub address: IpAddr,
    pub profile: String,
    pub trunk_port: u16,
    /// Port count, which sizes the PortList bitmaps.
    pub ports: u16,
    pub pi_ports: Vec<PortPlan>,
    pub vlans: Vec<VlanPlan>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortPlan {
    pub port: u16,
    pub position: String,
    pub pvid: u16,
    pub untagged: u16,
    pub tagged: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VlanPlan {
    pub id: u16,
    pub name: String,
    /// Front-panel ports, ascending.
    pub egress: Vec<u16>,
    pub untagged: Vec<u16>,
}
