//! The managed PoE switch: what each switch family looks like over SNMP.

pub mod profile;

pub use profile::{Profile, ProfileError, Profiles};
