//! Garbage in, clear error out: the inventory, ledger and profile parsers never
//! panic, whether fed random text or a shipped file with random damage.

use pirack::inventory::{SourceMap, validate};
use pirack::plan::Ledger;
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
    fn damaged_ledger_fails_cleanly(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<u8>()), 1..8)) {
        let text = damage(include_str!("../hardware/example-8.ledger.yaml"), &edits);
        if let Err(e) = Ledger::parse(Path::new("l.yaml"), &text) {
            prop_assert!(e.to_string().starts_with("l.yaml:"), "{e}");
        }
    }
}
