//! Garbage in, clear error out: the inventory, ledger, profile, alert route and SNMP reply parsers
//! never panic, whether fed random bytes or a well-formed input with random damage.

use pirack_core::inventory::{SourceMap, validate};
use pirack_core::plan::Ledger;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::path::Path;

fn profiles() -> BTreeSet<String> {
    BTreeSet::from(["generic".to_string()])
}

/// One edit: delete, insert or replace a byte at a position.
fn damage(text: &str, edits: &[(prop::sample::Index, u8, u8)]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for (at, op, b) in edits {
        let i = at
            .index(bytes.len().max(1))
            .min(bytes.len().saturating_sub(1));
        match op % 3 {
            0 if !bytes.is_empty() => {
                bytes.remove(i);
            }
            1 => bytes.insert(i, *b),
            _ if !bytes.is_empty() => bytes[i] = *b,
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,400}") {
        let _ = validate(Path::new("x.yaml"), &text, &profiles());
        let _ = Ledger::parse(Path::new("x.ledger.yaml"), &text);
        let _ = SourceMap::build(&text).locate("slots[0].port");
    }

    #[test]
    fn damaged_inventory_fails_cleanly(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<u8>()), 1..8)) {
        let text = damage(include_str!("../hardware/example-8.yaml"), &edits);
        if let Err(problems) = validate(Path::new("x.yaml"), &text, &profiles()) {
            prop_assert!(!problems.0.is_empty());
            for p in &problems.0 {
                prop_assert!(p.to_string().starts_with("x.yaml:"), "{p}");
            }
        }
    }

    #[test]
    fn damaged_alert_routes_fail_cleanly_and_keep_their_secrets(
        which in 0usize..8,
        secret in "[a-z0-9]{12,40}",
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<u8>()), 0..4),
    ) {
        let good = [
            format!("prowl:{secret}"), format!("nma://{secret}"), format!("ntfy://127.0.0.1:80/{secret}"),
            format!("pover://{secret}@{secret}"), format!("gotify://h.example/{secret}"),
            format!("json://[::1]:9/{secret}"), format!("mailto:{secret}@example.com"),
            format!("alertmanagers://am.example:9093/{secret}"),
        ];
        let uri = damage(&good[which], &edits);
        match pirack_core::monitor::uri::parse(&uri) {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().contains(&secret), "{e}"),
        }
    }

    #[test]
    fn http_status_lines_read_back_or_fail_cleanly(
        code in 100u16..600,
        reason in "[ -~]{0,30}",
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<u8>()), 0..3),
    ) {
        use pirack_core::monitor::status::status;
        let line = format!("HTTP/1.1 {code} {reason}\r\nServer: pi\r\n");
        prop_assert_eq!(status(line.as_bytes()), Ok(code));
        let _ = status(damage(&line, &edits).as_bytes());
    }

    #[test]
    fn restic_lines_read_back_or_are_other(
        files in 0u64..1_000_000,
        id in "[0-9a-f]{8,64}",
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<u8>()), 0..4),
    ) {
        use pirack_core::backup::restic::{Line, line};
        let summary = format!(r#"{{"message_type":"summary","files_new":{files},"data_added":1,"snapshot_id":"{id}"}}"#);
        match line(&summary) {
            Line::Summary(s) => prop_assert_eq!((s.files_new, s.snapshot_id), (files, id)),
            other => prop_assert!(false, "{other:?}"),
        }
        let _ = line(&damage(&summary, &edits));
        let _ = pirack_core::backup::restic::snapshots(&damage("[]", &edits));
        let _ = pirack_core::backup::restic::stats(&damage(r#"{"total_size":1}"#, &edits));
    }

    #[test]
    fn sftp_df_reads_back_or_fails_cleanly(
        total in 1u64..1 << 40,
        used_pct in 0u64..=100,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<u8>()), 0..4),
    ) {
        use pirack_core::backup::space::{Space, sftp_df};
        let used = total * used_pct / 100;
        let out = format!(
            "sftp> df /b\n        Size         Used        Avail       (Root)    %Capacity\n {total:>12} {used:>12} {:>12} {:>12} {used_pct:>11}%\n",
            total - used,
            total - used
        );
        prop_assert_eq!(sftp_df(&out), Ok(Space { total: total * 1024, free: (total - used) * 1024 }));
        let _ = sftp_df(&damage(&out, &edits));
    }

    #[test]
    fn damaged_ledger_fails_cleanly(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<u8>()), 1..8)) {
        let text = damage(include_str!("../hardware/example-8.ledger.yaml"), &edits);
        if let Err(e) = Ledger::parse(Path::new("l.yaml"), &text) {
            prop_assert!(e.to_string().starts_with("l.yaml:"), "{e}");
        }
    }
}

/// A v2c GetResponse as an agent sends it: pethPsePortAdminEnable.1.7 = 1,
/// dot1qVlanStaticName.10 = "pirack", dot1qPvid.7 = Gauge32 16.
fn snmp_reply() -> Vec<u8> {
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag, body.len() as u8];
        out.extend(body);
        out
    }
    let oid = |arcs: &[u8]| tlv(0x06, &[&[0x2b][..], &arcs[2..]].concat());
    let varbind = |arcs: &[u8], value: Vec<u8>| tlv(0x30, &[oid(arcs), value].concat());
    let list = [
        varbind(&[1, 3, 6, 1, 2, 1, 105, 1, 1, 1, 3, 1, 7], tlv(0x02, &[1])),
        varbind(
            &[1, 3, 6, 1, 2, 1, 17, 7, 1, 4, 3, 1, 1, 10],
            tlv(0x04, b"pirack"),
        ),
        varbind(
            &[1, 3, 6, 1, 2, 1, 17, 7, 1, 4, 5, 1, 1, 7],
            tlv(0x42, &[16]),
        ),
    ]
    .concat();
    let pdu = [
        tlv(0x02, &[0x2a]),
        tlv(0x02, &[0]),
        tlv(0x02, &[0]),
        tlv(0x30, &list),
    ]
    .concat();
    let msg = [tlv(0x02, &[1]), tlv(0x04, b"private"), tlv(0xa2, &pdu)].concat();
    tlv(0x30, &msg)
}

/// What pirack makes of reply bytes: the decoded varbinds, or an error.
fn decode_snmp(bytes: &[u8]) -> Option<Vec<pirack_controller::switch::snmp::Varbind>> {
    let pdu = snmp2::Pdu::from_bytes(bytes).ok()?;
    pirack_controller::switch::snmp::varbinds(&pdu, &[]).ok()
}

#[test]
fn a_well_formed_snmp_reply_decodes() {
    use pirack_controller::switch::snmp::Value;
    let got = decode_snmp(&snmp_reply()).expect("decodes");
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].oid.to_string(), "1.3.6.1.2.1.105.1.1.1.3.1.7");
    assert_eq!(got[0].value, Value::Integer(1));
    assert_eq!(got[1].value, Value::Octets(b"pirack".to_vec()));
    assert_eq!(got[2].value, Value::Unsigned(16));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn snmp_replies_never_panic(
        noise in prop::collection::vec(any::<u8>(), 0..300),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        let _ = decode_snmp(&noise);
        let mut damaged = snmp_reply();
        for (at, op, b) in &edits {
            let i = at.index(damaged.len());
            match op % 3 {
                0 => { damaged.remove(i); }
                1 => damaged.insert(i, *b),
                _ => damaged[i] = *b,
            }
            if damaged.is_empty() { break; }
        }
        let _ = decode_snmp(&damaged);
        // The v3 path too: a message that needs decrypting with a session's keys.
        let mut security = snmp2::v3::Security::new(b"pirack", b"auth-secret-1");
        let _ = snmp2::Pdu::from_bytes_with_security(&noise, Some(&mut security));
        let mut security = snmp2::v3::Security::new(b"pirack", b"auth-secret-1");
        let _ = snmp2::Pdu::from_bytes_with_security(&damaged, Some(&mut security));
    }
}
