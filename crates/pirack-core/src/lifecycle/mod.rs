//! The slot lifecycle: its states and the triggers that move them.

pub mod state;

pub use state::{Illegal, State, Trigger, next};
