//! pirack: a netboot and bare-metal Raspberry Pi cluster orchestrator.
//!
//! Data flows one way: [`inventory`] (what is racked) → [`plan`] (addresses and
//! rendered configs, pure) → effects at the edges ([`output`] for files, [`switch`]
//! for the switches).

pub mod api;
pub mod boards;
pub mod controller;
pub mod dhcp;
pub mod events;
pub mod firmware;
pub mod hil;
pub mod inventory;
pub mod lifecycle;
pub mod netboot;
pub mod netif;
pub mod output;
pub mod plan;
pub mod roots;
pub mod sim;
pub mod store;
pub mod switch;
pub mod template;
pub mod tftp;
pub mod walk;
