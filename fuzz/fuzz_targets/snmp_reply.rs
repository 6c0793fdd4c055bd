//! Any bytes as an SNMP reply: snmp2's decoder (v2c, and v3 with a session's keys)
//! and pirack's varbind checks never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pdu) = snmp2::Pdu::from_bytes(data) {
        let _ = pirack_controller::switch::snmp::varbinds(&pdu, &[]);
    }
    let mut security = snmp2::v3::Security::new(b"pirack", b"auth-secret-1");
    if let Ok(pdu) = snmp2::Pdu::from_bytes_with_security(data, Some(&mut security)) {
        let _ = pirack_controller::switch::snmp::varbinds(&pdu, &[]);
    }
});
