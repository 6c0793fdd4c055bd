//! DHCPv4 for Raspberry Pi 3 boot loaders and their Linux, one slot per storage
//! interface. `wire` checks packets, `pxe` knows what a Pi sends and needs,
//! `reply` decides answers (pure), `server` owns the sockets.

pub mod pxe;
pub mod reply;
pub mod server;
pub mod wire;

pub use reply::{Policy, Reply, Request, answer};
