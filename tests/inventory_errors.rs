//! Every malformed inventory under tests/fixtures/invalid fails with exactly the
//! problems its `.expected` file lists, each naming file, line, column and field.

mod common;

use pirack_core::inventory::validate;
use std::path::{Path, PathBuf};

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("tests/fixtures/invalid")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    assert!(v.len() >= 8, "fixtures missing: {v:?}");
    v
}

fn expected(fixture: &Path) -> String {
    std::fs::read_to_string(fixture.with_extension("expected")).unwrap()
}

#[test]
fn each_fixture_reports_exactly_its_expected_problems() {
    let names = common::profiles().names();
    for f in fixtures() {
        let text = std::fs::read_to_string(&f).unwrap();
        let problems = validate(&f, &text, &names).expect_err(&f.display().to_string());
        assert_eq!(format!("{problems}\n"), expected(&f), "{}", f.display());
        for p in &problems.0 {
            assert!(
                p.at.line >= 2,
                "{p}: every fixture's problems lie below its comment line"
            );
        }
    }
}

#[test]
fn check_command_fails_listing_every_problem() {
    for f in fixtures() {
        let path = f.to_str().unwrap();
        let out = common::pirack(&["check", "--inventory", path]);
        assert!(!out.status.success(), "{path} passed check");
        let stderr = common::text(&out.stderr);
        for line in expected(&f).lines() {
            assert!(
                stderr.contains(line),
                "{path}: missing `{line}` in:\n{stderr}"
            );
        }
    }
}

#[test]
fn shipped_inventories_pass_check() {
    for path in [
        "hardware/example-8.yaml",
        "hardware/shelf-96.yaml",
        "hardware/two-fileservers.yaml",
    ] {
        let out = common::pirack(&["check", "--inventory", path]);
        assert!(
            out.status.success(),
            "{path}: {}",
            common::text(&out.stderr)
        );
        assert!(common::text(&out.stdout).contains(": ok: "));
    }
}

#[test]
fn a_missing_inventory_is_a_clear_error() {
    let out = common::pirack(&["check", "--inventory", "hardware/nope.yaml"]);
    assert!(!out.status.success());
    assert!(common::text(&out.stderr).contains("cannot read hardware/nope.yaml"));
}
