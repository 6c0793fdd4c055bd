//! pirack's labs: everything that stands in for hardware or wires a test bed, none
//! of it in the controller. The Pi 3 boot ROM simulator (`sim`), virtual Pi 3s
//! under QEMU with their power driver (`qemu`), the network namespaces and real
//! peers (snmpd as the PoE switch, NFS-Ganesha) that the tests, the benchmarks and
//! the labs share, and the one-command labs themselves: `pirack demo` and
//! `pirack hil`.

pub mod demo;
pub mod forward;
pub mod hil;
pub mod qemu;
mod setup;
pub mod signals;
pub mod sim;
mod site;
pub mod testbed;
mod watch;
