//! Helpers shared by the integration tests.
#![allow(dead_code)]

use pirack::inventory::{self, Site};
use pirack::switch::Profiles;
use std::path::Path;
use std::process::{Command, Output};

pub fn profiles() -> Profiles {
    Profiles::load_dir(Path::new("switch-profiles")).expect("shipped profiles load")
}

pub fn site(path: &str) -> Site {
    inventory::load(Path::new(path), &profiles().names()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs the `pirack` binary built for these tests.
pub fn pirack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args(args)
        .output()
        .expect("pirack runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
