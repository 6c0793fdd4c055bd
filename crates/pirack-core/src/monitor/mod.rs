//! Watching running Pis and telling people, the pure parts: where an alert goes
//! (route URIs), when a check's result changes a slot's health (N failures
//! before down, M successes before up), and how often a route may be called.

pub mod health;
pub mod limit;
pub mod uri;
