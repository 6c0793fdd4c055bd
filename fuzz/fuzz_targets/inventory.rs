//! Any text as an inventory or a ledger: a list of problems, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let names = ["generic".to_string()].into_iter().collect();
    let _ = pirack_core::inventory::validate("x.yaml".as_ref(), text, &names);
    let _ = pirack_core::plan::Ledger::parse("x.ledger.yaml".as_ref(), text);
});
