//! The rack view in a real browser (headless Chromium): the page comes from the
//! controller, draws each slot the caller may see from the API with the caller's
//! token, and is not blank. The screenshot is kept as target/rack-view.png.

mod common;

use common::{Child, have, text};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn token(db: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args(["token", "create", "--db", db])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// Chromium, headless, as the machine notes say it must run here.
fn chromium(profile: &Path, args: &[&str]) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--window-size=1280,800",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .unwrap();
    text(&out.stdout)
}

fn tiles(dom: &str) -> Vec<(String, String)> {
    dom.match_indices("data-slot=\"")
        .map(|(i, _)| {
            let rest = &dom[i + 11..];
            let slot = rest[..rest.find('"').unwrap()].to_string();
            let state = rest
                .split("data-state=\"")
                .nth(1)
                .map(|s| s[..s.find('"').unwrap()].to_string())
                .unwrap_or_default();
            (slot, state)
        })
        .collect()
}

#[test]
fn the_rack_view_shows_each_caller_its_slots() {
    if !have("the_rack_view", "chromium") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let inventory = common::example_site_in(d, Some(&d.join("export")), "");
    let db = format!("sqlite://{}/state.db", d.display());
    let admin = token(&db, &["--name", "ops", "--admin"]);
    let acme = token(&db, &["--name", "acme", "--owner", "acme"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _serve = Child(
        Command::new(env!("CARGO_BIN_EXE_pirack"))
            .arg("serve")
            .arg("--inventory")
            .arg(&inventory)
            .args(["--db", &db, "--api", &addr.to_string(), "--no-export"])
            .args(["--dhcp-port", &common::snmp::free_udp_port().to_string()])
            .args(["--tftp-port", &common::snmp::free_udp_port().to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve did not come up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let page = |token: &str, profile: &str, extra: &[&str]| {
        let url = format!("http://{addr}/#token={token}");
        let mut args: Vec<&str> = extra.to_vec();
        args.push(&url);
        chromium(&d.join(profile), &args)
    };
    let all = tiles(&page(&admin, "admin", &["--dump-dom"]));
    assert_eq!(all.len(), 8, "{all:?}");
    assert!(all.iter().all(|(_, state)| !state.is_empty()));
    let mine = tiles(&page(&acme, "acme", &["--dump-dom"]));
    let positions: Vec<&str> = mine.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        positions,
        ["A-01", "A-02", "A-03", "A-04"],
        "a customer sees its own slots only"
    );
    let nobody = tiles(&page("pirack_nope_nope", "nobody", &["--dump-dom"]));
    assert!(nobody.is_empty(), "a bad token sees nothing");

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../rack-view.png");
    let _ = std::fs::remove_file(&shot);
    page(
        &admin,
        "shot",
        &[&format!("--screenshot={}", shot.display())],
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // A blank 1280×800 page compresses to about 5 KB; eight coloured tiles do not.
    assert!(
        png.len() > 15_000,
        "the screenshot looks blank: {} bytes",
        png.len()
    );
}
