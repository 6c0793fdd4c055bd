//! The store is the one truth while a controller runs: a board the site adopts is
//! still the slot's after a restart (even one under a `hold` policy), a board the
//! site holds boots once staff accept it (`pirack board accept`), and while the
//! controller runs, offline commands that would change what it owns and a second
//! controller on the same store refuse, naming it (needs root).

mod common;

use common::controller::token;
use common::{Child, Netns, boot_files, booting_site, can_use_netns, site_in, text};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const API: &str = "127.0.0.1:18080";

/// Where the slots' roots and their image are.
struct Booting<'a> {
    boot: &'a Path,
    images: &'a Path,
}

/// `pirack serve` in `ctl` on `inventory` and the store `db`; its JSON events.
fn serve(
    ctl: &Netns,
    inventory: &Path,
    db: &str,
    b: &Booting,
) -> (Child, mpsc::Receiver<serde_json::Value>) {
    let mut child = Child(
        ctl.command(env!("CARGO_BIN_EXE_pirack"))
            .arg("serve")
            .arg("--inventory")
            .arg(inventory)
            .args(["--db", db, "--api", API, "--json-events", "--no-export"])
            .arg("--boot-files")
            .arg(b.boot)
            .arg("--images")
            .arg(b.images)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel();
    let out = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line)
                && tx.send(v).is_err()
            {
                return;
            }
        }
    });
    (child, rx)
}

/// The first event of `kind` about `slot` within a minute.
fn wait_event(
    events: &mpsc::Receiver<serde_json::Value>,
    slot: &str,
    kind: &str,
) -> serde_json::Value {
    loop {
        let e = events
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no {kind} event for {slot}"));
        if e["slot"] == slot && e["kind"] == kind {
            return e;
        }
    }
}

/// `pirack sim` of `slots` against the controller in `ctl`, as `inventory` places
/// boards (the controller's may differ: a swapped board).
fn sim(ctl: &Netns, inventory: &Path, slots: &str, b: &Booting) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pirack"));
    c.arg("sim")
        .arg("--inventory")
        .arg(inventory)
        .args(["--slots", slots, "--json", "--power-on", "0.5"])
        .args(["--controller-netns", ctl.name()])
        .arg("--boot-files")
        .arg(b.boot)
        .arg("--images")
        .arg(b.images)
        .args(["--image", "tiny-1"]);
    c
}

fn booted(out: &Output) -> bool {
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    reports.as_array().unwrap().iter().all(|r| r["ok"] == true)
}

/// `pirack` run inside `ctl`, where the controller's API listens.
fn pirack_in(ctl: &Netns, args: &[&str]) -> Output {
    ctl.command(env!("CARGO_BIN_EXE_pirack"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn adopted_boards_outlive_a_restart_and_held_ones_boot_once_accepted() {
    if !can_use_netns("adopted_boards_outlive_a_restart_and_held_ones_boot_once_accepted") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let boot = boot_files(256 * 1024);
    // The controller's inventory names the original boards; the Pis' has new ones
    // in A-01 (a 3B+, which tells its serial over DHCP) and A-02.
    // A-01 and A-02 have roots built from image tiny-1, which every copy shares.
    let (adopt, images) = booting_site(
        &tmp.path().join("adopt"),
        "example-8",
        boot.path(),
        &["A-01", "A-02"],
    );
    let export = tmp.path().join("adopt/export");
    let b = Booting {
        boot: boot.path(),
        images: &images,
    };
    let text_of = |p: &Path| std::fs::read_to_string(p).unwrap();
    std::fs::write(
        &adopt,
        text_of(&adopt).replace("unknown_board: hold", "unknown_board: adopt"),
    )
    .unwrap();
    let hold = site_in(&tmp.path().join("hold"), "example-8", Some(&export), "");
    let swapped = site_in(&tmp.path().join("swapped"), "example-8", Some(&export), "");
    std::fs::write(
        &swapped,
        text_of(&swapped)
            .replace(
                r#"{ serial: "7285c0f2", mac: "b8:27:eb:85:c0:f2", model: 3B, slot: A-01 }"#,
                r#"{ serial: "c0ffee01", mac: "b8:27:eb:ff:ee:01", model: 3B+, slot: A-01 }"#,
            )
            .replace(
                r#"{ serial: "b66c4c16", mac: "b8:27:eb:6c:4c:16", model: 3B+, slot: A-02 }"#,
                r#"{ serial: "c0ffee02", mac: "b8:27:eb:ff:ee:02", model: 3B+, slot: A-02 }"#,
            ),
    )
    .unwrap();
    let db = format!("sqlite://{}/state.db", tmp.path().display());
    let admin = token(&db, &["--name", "staff", "--admin"]);
    let ctl = common::netns("boards");

    // Adopted by site policy: the new board in A-01 boots at once.
    let (server, events) = serve(&ctl, &adopt, &db, &b);
    let out = sim(&ctl, &swapped, "A-01", &b).output().unwrap();
    assert!(booted(&out), "the adopted board boots");
    let seen = wait_event(&events, "A-01", "unknown_board");
    assert_eq!(
        (seen["serial"].as_str(), seen["adopted"].as_bool()),
        (Some("c0ffee01"), Some(true))
    );

    // While it runs, the controller owns the store: offline changes and a second
    // controller are refused, naming it.
    let refused = common::pirack(&[
        "root",
        "--inventory",
        adopt.to_str().unwrap(),
        "--db",
        &db,
        "--store",
        images.to_str().unwrap(),
        "build",
        "--image",
        "tiny-1",
        "A-03",
    ]);
    let err = text(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("refused while pirack serve (pid"),
        "{err}"
    );
    let refused = common::pirack(&[
        "ledger",
        "release",
        "--inventory",
        adopt.to_str().unwrap(),
        "--db",
        &db,
        "sw-a/30",
    ]);
    assert!(
        text(&refused.stderr).contains("owns the store"),
        "{}",
        text(&refused.stderr)
    );
    let second = common::netns("boards2");
    let other = second
        .command(env!("CARGO_BIN_EXE_pirack"))
        .arg("serve")
        .arg("--inventory")
        .arg(&adopt)
        .args(["--db", &db, "--api", API, "--no-export"])
        .output()
        .unwrap();
    let err = text(&other.stderr);
    assert!(
        !other.status.success() && err.contains("the store is owned by pirack serve"),
        "{err}"
    );

    // Restarted under a `hold` policy, the controller still knows the adopted
    // board from its store: it boots, and is no stranger.
    drop(server);
    let (server, events) = serve(&ctl, &hold, &db, &b);
    let out = sim(&ctl, &swapped, "A-01", &b).output().unwrap();
    assert!(
        booted(&out),
        "the adopted board still boots after the restart"
    );

    // A new board in A-02 is held, and boots once staff accept it: the simulated
    // ROM keeps asking while the board waits.
    let pi = sim(&ctl, &swapped, "A-02", &b)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let held = wait_event(&events, "A-02", "unknown_board");
    assert_eq!(
        (held["serial"].as_str(), held["adopted"].as_bool()),
        (Some("c0ffee02"), Some(false))
    );
    let url = format!("http://{API}");
    let accept = || {
        pirack_in(
            &ctl,
            &["board", "accept", "A-02", "--url", &url, "--token", &admin],
        )
    };
    // The sighting reaches the store just after the event: a moment's retry.
    let mut accepted = accept();
    for _ in 0..10 {
        if accepted.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        accepted = accept();
    }
    assert!(accepted.status.success(), "{}", text(&accepted.stderr));
    assert!(
        text(&accepted.stdout).contains("A-02: board c0ffee02 accepted"),
        "{}",
        text(&accepted.stdout)
    );
    let out = pi.wait_with_output().unwrap();
    assert!(booted(&out), "the held board boots once accepted");
    // Nothing is held any more: a second accept is a 404 with its reason.
    let again = accept();
    let err = text(&again.stderr);
    assert!(
        err.contains("404") && err.contains("holds no board"),
        "{err}"
    );
    drop(server);
}
