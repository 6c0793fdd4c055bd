//! The managed PoE switch as a model: what each switch family looks like over SNMP
//! (profiles, OIDs, PortList bitmaps), what a port reads, the VLAN layout a switch
//! should have and the drift from it. The SNMP session itself is the controller's.

pub mod drift;
pub mod layout;
pub mod oid;
pub mod port;
pub mod portlist;
pub mod profile;
pub mod qbridge;

pub use oid::Oid;
pub use profile::{Profile, ProfileError, Profiles};
