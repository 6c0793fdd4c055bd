//! Any bytes as a TFTP packet: parsed without a panic, and what parses re-emits to
//! a packet that parses to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pirack_netboot::tftp::wire::Repr;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Repr::parse(data) {
        let again = r.to_vec();
        let back = Repr::parse(&again).expect("emitted packets parse");
        assert_eq!(back.to_vec(), again);
    }
    if let Ok(name) = std::str::from_utf8(data) {
        let _ = pirack_netboot::tftp::tree::components(name);
    }
});
