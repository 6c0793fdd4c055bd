//! TFTP for the Pi boot loaders: a per-slot virtual tree (`tree`), requests taken by
//! `server` and sent by a tokio transfer engine of pirack's own (`transfers`), over
//! a checked packet codec (`wire`).
//!
//! Not async-tftp: it ignores a client's ERROR (the firmware's probe then holds a
//! session for retries × timeout and drops the re-request from the same port), it
//! serialises every open behind one handler mutex, and it runs a second executor and
//! reactor thread beside tokio. Each is a boot-storm cost the crate cannot be
//! configured out of.

pub mod server;
pub mod transfers;
pub mod tree;
pub mod wire;

pub use server::{Config, Server};
pub use tree::{FileCache, Refusal, Source};
