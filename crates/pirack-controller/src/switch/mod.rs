//! Switch I/O: the SNMP session pirack drives each switch through, PoE power per
//! port and over many ports, and the live VLAN apply. What a switch looks like is
//! the core's switch model.

pub mod many;
pub mod power;
pub mod snmp;
pub mod vlan;
