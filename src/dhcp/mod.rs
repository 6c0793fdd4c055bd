//! DHCPv4 for Raspberry Pi 3 boot loaders and their Linux, one slot per storage
//! interface. `pxe` knows what a Pi sends and needs, `reply` decides answers
//! (pure), `server` owns the sockets.

pub mod pxe;
pub mod reply;
pub mod server;

pub use reply::{Policy, Reply, Request, answer};
