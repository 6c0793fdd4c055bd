//! The managed PoE switch: what each switch family looks like over SNMP, and the
//! SNMP session pirack drives it through.

pub mod drift;
pub mod many;
pub mod oid;
pub mod portlist;
pub mod power;
pub mod profile;
pub mod snmp;
pub mod vlan;

pub use oid::Oid;
pub use profile::{Profile, ProfileError, Profiles};
