//! The JSON Schema from `pirack schema` accepts the shipped inventories and rejects
//! a broken one, checked by an independent validator (Python's jsonschema, Debian
//! package python3-jsonschema, which .ci/run installs).

mod common;

use std::process::Command;

const PY: &str = "/usr/bin/python3";
const SCRIPT: &str = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
bad = 0
for path in sys.argv[2:]:
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(yaml.safe_load(open(path))))
    print(path, "invalid" if errors else "valid", *[e.message for e in errors[:1]])
"#;

fn have_validator() -> bool {
    Command::new(PY)
        .args(["-c", "import jsonschema, yaml"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn independent_validator_agrees_with_the_schema() {
    if !have_validator() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must install python3-jsonschema and python3-yaml"
        );
        eprintln!(
            "skipped: {PY} lacks jsonschema/yaml (apt-get install python3-jsonschema python3-yaml)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let schema = tmp.path().join("schema.json");
    std::fs::write(&schema, common::pirack(&["schema"]).stdout).unwrap();
    let out = Command::new(PY)
        .args(["-c", SCRIPT, schema.to_str().unwrap()])
        .args([
            "hardware/example-8.yaml",
            "hardware/shelf-96.yaml",
            "tests/fixtures/invalid/unknown-field.yaml",
            "tests/fixtures/invalid/wrong-type.yaml",
        ])
        .output()
        .unwrap();
    let report = common::text(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        common::text(&out.stderr)
    );
    let lines: Vec<&str> = report.lines().collect();
    assert!(
        lines[0].starts_with("hardware/example-8.yaml valid"),
        "{report}"
    );
    assert!(
        lines[1].starts_with("hardware/shelf-96.yaml valid"),
        "{report}"
    );
    assert!(
        lines[2].starts_with("tests/fixtures/invalid/unknown-field.yaml invalid"),
        "{report}"
    );
    assert!(
        lines[3].starts_with("tests/fixtures/invalid/wrong-type.yaml invalid"),
        "{report}"
    );
}
