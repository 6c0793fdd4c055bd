//! The rack view in a real browser (headless Chromium): the page comes from the
//! controller, draws each slot the caller may see from the API with the caller's
//! token, and is not blank. The screenshot is kept as target/rack-view.png.

mod common;

use common::controller::start;
use common::{have, text};
use std::path::Path;
use std::process::Command;

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
    let inventory = common::example_site_in(tmp.path(), None, "");
    let rig = start(tmp, &inventory, false);
    let (addr, d) = (rig.addr, rig.dir.clone());

    let page = |token: &str, profile: &str, extra: &[&str]| {
        let url = format!("http://{addr}/#token={token}");
        let mut args: Vec<&str> = extra.to_vec();
        args.push(&url);
        chromium(&d.join(profile), &args)
    };
    let all = tiles(&page(&rig.admin, "admin", &["--dump-dom"]));
    assert_eq!(all.len(), 8, "{all:?}");
    assert!(all.iter().all(|(_, state)| !state.is_empty()));
    let mine = tiles(&page(&rig.acme, "acme", &["--dump-dom"]));
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
        &rig.admin,
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
