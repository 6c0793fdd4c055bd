//! Watching running Pis and telling people, the pure parts: where an alert goes
//! (route URIs), when a check's result changes a slot's health (N failures
//! before down, M successes before up), how often a route may be called, and
//! when a filesystem will be full.

pub mod capacity;
pub mod health;
pub mod limit;
pub mod uri;
