//! Watching running Pis and telling people, the pure parts: where an alert goes
//! (route URIs), when a check's result changes a slot's health (N failures
//! before down, M successes before up), when a flapping fault's alert ends,
//! how often a route may be called, when a filesystem will be full, a day's
//! chart of a slot, and what an HTTP check was answered.

pub mod capacity;
pub mod chart;
pub mod flap;
pub mod health;
pub mod limit;
pub mod status;
pub mod uri;
