//! Any bytes on a slot's DHCP socket: parsed, and answered when valid, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pirack_netboot::dhcp::{Policy, Request, answer};
use std::sync::OnceLock;

fn slot() -> &'static pirack_core::plan::SlotPlan {
    static SLOT: OnceLock<pirack_core::plan::SlotPlan> = OnceLock::new();
    SLOT.get_or_init(|| {
        let names = ["generic".to_string()].into_iter().collect();
        let text = include_str!("../../hardware/example-8.yaml");
        let site = pirack_core::inventory::validate("example-8.yaml".as_ref(), text, &names).unwrap();
        let ledger = pirack_core::plan::Ledger::parse("l".as_ref(), include_str!("../../hardware/example-8.ledger.yaml")).unwrap();
        pirack_core::plan::plan(&site, &ledger).unwrap().0.slots[0].clone()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = Request::parse(data) {
        let _ = answer(&req, slot(), true, &Policy::default());
        let _ = answer(&req, slot(), false, &Policy::default());
    }
    let _ = pirack_lab::sim::frames::parse_reply(data);
});
