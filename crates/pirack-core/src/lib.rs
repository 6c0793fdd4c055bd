//! pirack's pure core: the inventory (what is racked), the address plan and every
//! file rendered from it, the slot lifecycle table, the switch model and the Pi 3
//! firmware's facts. No runtime, no sockets, no writes: each item is a function of
//! its inputs, so the golden, property and fuzz tests need nothing else.

pub mod backup;
pub mod dns;
pub mod firmware;
pub mod inventory;
pub mod lifecycle;
pub mod monitor;
pub mod plan;
pub mod switch;
pub mod template;
pub mod text;
