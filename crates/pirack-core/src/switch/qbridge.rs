//! Q-BRIDGE-MIB (RFC 4363): where a switch keeps its static VLANs and port VLAN
//! ids. Named once here for the rendered SETs (`pirack plan`) and the live apply
//! (`pirack switch apply`).

/// dot1qVlanStaticEntry: a column below is appended, then `.<vlan id>`.
pub const VLAN_STATIC_ENTRY: &str = "1.3.6.1.2.1.17.7.1.4.3.1";
/// dot1qPvid, indexed by dot1dBasePort.
pub const PVID: &str = "1.3.6.1.2.1.17.7.1.4.5.1.1";
/// RowStatus createAndGo.
pub const CREATE_AND_GO: i32 = 4;

/// The dot1qVlanStaticEntry columns pirack reads and writes.
pub mod column {
    pub const NAME: u32 = 1;
    pub const EGRESS: u32 = 2;
    pub const FORBIDDEN: u32 = 3;
    pub const UNTAGGED: u32 = 4;
    pub const ROW_STATUS: u32 = 5;
}
