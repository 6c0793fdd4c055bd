//! The commands behind the `pirack` CLI, one module per area.

pub mod acme;
pub mod alerts;
pub mod backup;
pub mod client;
pub mod dns;
pub mod inputs;
pub mod names;
pub mod netboot;
pub mod owner;
pub mod proxy;
pub mod roots;
pub mod serve;
pub mod site;
pub mod switch;
pub mod table;
pub mod tokens;
