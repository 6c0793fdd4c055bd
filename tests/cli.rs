//! The `pirack` command line, end to end on temporary copies of the shipped site.

mod common;

use common::{pirack, text};
use std::fs;
use std::path::{Path, PathBuf};

/// A copy of the example site (inventory, ledger, profiles) in a temporary directory.
fn site_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let inv = common::example_site_in(tmp.path(), None, "");
    (tmp, inv)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn plan_writes_reproducibly_and_check_shows_drift_as_a_diff() {
    let (tmp, inv) = site_copy();
    let out = tmp.path().join("out");
    let run = pirack(&["plan", "--inventory", s(&inv), "--out", s(&out)]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let first = fs::read(out.join("slots/A-01/boot/cmdline.txt")).unwrap();

    let check = pirack(&["plan", "--inventory", s(&inv), "--out", s(&out), "--check"]);
    assert!(check.status.success(), "{}", text(&check.stdout));
    assert_eq!(text(&check.stdout), "");

    fs::write(out.join("slots/A-01/boot/cmdline.txt"), "console=tty1\n").unwrap();
    fs::write(out.join("stray.txt"), "x\n").unwrap();
    let check = pirack(&["plan", "--inventory", s(&inv), "--out", s(&out), "--check"]);
    assert!(!check.status.success());
    let diff = text(&check.stdout);
    assert!(
        diff.contains("--- a/slots/A-01/boot/cmdline.txt\n+++ b/slots/A-01/boot/cmdline.txt\n"),
        "{diff}"
    );
    assert!(
        diff.contains("-console=tty1\n+dwc_otg.lpm_enable=0"),
        "{diff}"
    );
    assert!(diff.contains("--- a/stray.txt\n+++ /dev/null\n"), "{diff}");

    // Re-running restores the exact bytes and prunes the stray file.
    assert!(
        pirack(&["plan", "--inventory", s(&inv), "--out", s(&out)])
            .status
            .success()
    );
    assert_eq!(
        fs::read(out.join("slots/A-01/boot/cmdline.txt")).unwrap(),
        first
    );
    assert!(!out.join("stray.txt").exists());
}

#[test]
fn plan_refuses_a_directory_it_does_not_own() {
    let (tmp, inv) = site_copy();
    let out = tmp.path().join("precious");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("keep.txt"), "mine").unwrap();
    let run = pirack(&["plan", "--inventory", s(&inv), "--out", s(&out)]);
    assert!(!run.status.success());
    assert!(text(&run.stderr).contains("not a pirack plan directory"));
    assert_eq!(fs::read_to_string(out.join("keep.txt")).unwrap(), "mine");
}

#[test]
fn plan_json_describes_every_slot() {
    let (_tmp, inv) = site_copy();
    let run = pirack(&["plan", "--inventory", s(&inv), "--json"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let slots = doc["plan"]["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 8);
    assert_eq!(slots[0]["pi_ip"], "10.46.189.2");
    assert_eq!(slots[0]["key"], "sw-a/1");
    assert_eq!(slots[0]["board"]["serial"], "7285c0f2");
    assert_eq!(doc["switches"][0]["vlans"].as_array().unwrap().len(), 9);
    assert!(
        doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "exports/pirack.exports")
    );
}

#[test]
fn removed_slots_stay_reserved_until_released() {
    let (tmp, inv) = site_copy();
    let ledger = inv.with_file_name("example-8.ledger.yaml");
    // Take A-03 (sw-a/3) out of the inventory and add a new slot on port 9.
    let yaml = fs::read_to_string(&inv).unwrap();
    let yaml = yaml
        .replace("  - { position: A-03, switch: sw-a, port: 3, owner: acme }\n", "")
        .replace("slot: A-03 }", "slot: A-09 }")
        .replace("  - { position: A-08, switch: sw-a, port: 8 }\n", "  - { position: A-08, switch: sw-a, port: 8 }\n  - { position: A-09, switch: sw-a, port: 9 }\n");
    fs::write(&inv, yaml).unwrap();
    let out = tmp.path().join("out");

    let check = pirack(&["plan", "--inventory", s(&inv), "--out", s(&out), "--check"]);
    assert!(
        !check.status.success(),
        "a ledger missing A-09 fails --check"
    );
    let run = pirack(&["plan", "--inventory", s(&inv), "--out", s(&out)]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let exports = fs::read_to_string(out.join("exports/pirack.exports")).unwrap();
    assert!(
        !exports.contains("10.46.189.10("),
        "A-03's address is not reused: {exports}"
    );
    assert!(
        exports.contains("/export/10.46.189.34 10.46.189.34("),
        "{exports}"
    );

    let show = text(&pirack(&["ledger", "show", "--inventory", s(&inv)]).stdout);
    let line = show.lines().find(|l| l.starts_with("sw-a/3 ")).unwrap();
    assert!(line.contains("removed (reserved until released)"), "{show}");

    let active = pirack(&["ledger", "release", "--inventory", s(&inv), "sw-a/1"]);
    assert!(!active.status.success());
    assert!(
        text(&active.stderr).contains("still in"),
        "{}",
        text(&active.stderr)
    );

    let release = pirack(&["ledger", "release", "--inventory", s(&inv), "sw-a/3"]);
    assert!(release.status.success(), "{}", text(&release.stderr));
    assert!(!fs::read_to_string(&ledger).unwrap().contains("sw-a/3:"));
    let again = pirack(&["ledger", "release", "--inventory", s(&inv), "sw-a/3"]);
    assert!(!again.status.success());
}

#[test]
fn schema_is_json_schema_of_the_inventory() {
    let run = pirack(&["schema"]);
    assert!(run.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert!(
        schema["$schema"]
            .as_str()
            .unwrap()
            .contains("json-schema.org")
    );
    let required: Vec<_> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for field in ["site", "shelves", "switches", "slots"] {
        assert!(required.contains(&field), "{required:?}");
    }
    // One fileserver, or several; validation wants exactly one of the two.
    for field in ["fileserver", "fileservers"] {
        assert!(schema["properties"][field].is_object(), "{field}");
    }
    assert_eq!(
        schema["$defs"]["Board"]["properties"]["serial"]["pattern"],
        "^[0-9a-f]{8}$"
    );
}

#[test]
fn completions_and_the_manual_page_come_from_the_cli_definition() {
    let bash = pirack(&["completions", "bash"]);
    assert!(bash.status.success() && text(&bash.stdout).contains("_pirack()"));
    assert!(
        text(&bash.stdout).contains("provision"),
        "every command completes"
    );
    let zsh = pirack(&["completions", "zsh"]);
    assert!(text(&zsh.stdout).starts_with("#compdef pirack"));
    let man = pirack(&["manpage"]);
    let page = text(&man.stdout);
    assert!(
        man.status.success() && page.contains(".TH pirack 1"),
        "{page}"
    );
    assert!(page.contains("completions"), "{page}");
    // A page per command, `man pirack-backup-restore` as with git's.
    let pages = tempfile::tempdir().unwrap();
    let dir = pages.path().join("man1");
    let out = pirack(&["manpage", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let restore = std::fs::read_to_string(dir.join("pirack-backup-restore.1")).unwrap();
    assert!(
        restore.contains(".TH pirack-backup-restore 1") && restore.contains("snapshot"),
        "{restore}"
    );
    let serve = std::fs::read_to_string(dir.join("pirack-serve.1")).unwrap();
    assert!(serve.contains("tftp"), "{serve}");
    let bad = pirack(&["completions", "tcsh"]);
    assert!(!bad.status.success());
}

/// The example CI job calls `pirack hil run` only with options it has.
#[test]
fn the_example_ci_job_uses_real_options() {
    let job: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string("examples/hil-ci.yml").unwrap()).unwrap();
    let steps = job["jobs"]["boot-on-virtual-pis"]["steps"]
        .as_sequence()
        .expect("steps");
    let run = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains("pirack hil run"))
        .expect("a step running pirack hil run");
    let help = pirack(&["hil", "run", "--help"]);
    let help = text(&help.stdout);
    let flags: Vec<&str> = run
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .collect();
    assert!(flags.len() >= 6, "{run}");
    for flag in flags {
        assert!(
            help.contains(&format!("{flag} ")),
            "{flag} is not an option of pirack hil run"
        );
    }
}

#[test]
fn hil_run_as_another_user_says_exactly_what_needs_root() {
    if !common::is_root("hil_run_as_another_user_says_exactly_what_needs_root") {
        return;
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_pirack"))
        .args([
            "hil",
            "run",
            "--image",
            "/nonexistent",
            "--boot",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    let said = text(&out.stderr);
    assert!(!out.status.success(), "{said}");
    for why in [
        "needs root",
        "CAP_NET_ADMIN",
        "ports 67 and 69",
        "CAP_CHOWN",
    ] {
        assert!(said.contains(why), "{why} not in: {said}");
    }
}
