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

/// A slot powered on with no Pi behind it: its tile counts the time in its
/// stage against the watchdog's deadline and turns amber near it; the summary
/// puts the failure the watchdog then declares first; a URL points at a slot.
#[test]
fn a_stalled_slot_turns_amber_then_fails_first_in_the_summary() {
    let test = "rack_view_stall";
    if !common::is_root(test) || !have(test, "snmpd") || !have(test, "chromedriver") {
        return;
    }
    use common::http::post;
    use common::snmp::{Agent, Creds, site_for};
    use std::time::Duration;
    let agent = Agent::start(10, 10, None);
    let tmp = tempfile::tempdir().unwrap();
    let fast = "snmp_timeout_ms: 500\nsnmp_retries: 1\npower: { drain_ms: 200, readback_ms: 2000 }";
    let inventory = site_for(tmp.path(), agent.port, "generic", Creds::V2c, fast);
    let yaml = std::fs::read_to_string(&inventory).unwrap()
        + "\nwatchdog: { powering_on_s: 8, max_recoveries: 0 }\n";
    std::fs::write(&inventory, yaml).unwrap();
    let rig = start(tmp, &inventory, false);
    let a = rig.addr;
    let op = post(
        a,
        "/v1/slots",
        Some(&rig.globex),
        r#"{"image":"tiny-1","slot":"A-05"}"#,
    );
    assert_eq!(rig.wait(&op.json())["status"], "succeeded");
    let op = post(
        a,
        "/v1/slots/A-05/power",
        Some(&rig.admin),
        r#"{"action":"on"}"#,
    );
    assert_eq!(rig.wait(&op.json())["status"], "succeeded", "{}", op.body);

    let profile = tempfile::tempdir().unwrap();
    let browser = common::webdriver::Browser::start(profile.path());
    browser.goto(&format!("http://{a}/#token={}&slot=A-05", rig.admin));
    let within = Duration::from_secs(20);
    // The slot in the URL is shown, and the token is dropped from it.
    browser.wait_for(
        "A-05's detail from the URL",
        "return document.querySelector('#detail table') != null \
         && document.querySelector('#detail table').textContent.includes('A-05 (sw-a/5)');",
        within,
    );
    assert_eq!(browser.eval("return location.hash;"), "#slot=A-05");
    browser.wait_for(
        "the summary counts the booting slot",
        "const s = document.querySelector('#summary span[data-state=powering_on]'); \
         return s != null && s.textContent === 'powering on 1';",
        within,
    );
    let tile = "document.querySelector(\"button[data-slot='A-05']\")";
    let clock = browser.wait_for(
        "A-05 amber near the watchdog's deadline",
        &format!("const t = {tile}; return t != null && t.dataset.late === 'warn' && t.querySelector('.clock').textContent;"),
        within,
    );
    assert!(
        clock.as_str().is_some_and(|c| c.ends_with(" s of 8 s")),
        "{clock}"
    );
    // Amber counts as trouble: the filter keeps A-05 and hides the idle rest.
    browser.click("//input[@id='trouble']");
    browser.wait_for(
        "the filter showing A-05 alone",
        &format!(
            "const t = {tile}; const idle = document.querySelector(\"button[data-slot='A-01']\"); \
             return t != null && idle != null && !t.hidden && idle.hidden;"
        ),
        within,
    );
    browser.click("//input[@id='trouble']");
    // The watchdog gives up (no recoveries allowed): failed, first in the summary.
    browser.wait_for(
        "the failure first in the summary",
        &format!(
            "const first = document.querySelector('#summary span'); const t = {tile}; \
             return first != null && first.dataset.state === 'failed' && t.dataset.state === 'failed';"
        ),
        within,
    );
    // A click points the URL at the slot.
    browser.click("//button[@data-slot='A-01']");
    browser.wait_for(
        "the URL names A-01",
        "return location.hash === '#slot=A-01';",
        within,
    );
}

/// A shelf drawn as it hangs: a line per row, each slot in its column, a gap
/// where a position has no slot.
#[test]
fn the_shelf_is_drawn_in_its_physical_rows() {
    let test = "rack_view_rows";
    if !have(test, "chromium") || !have(test, "chromedriver") {
        return;
    }
    use std::time::Duration;
    let tmp = tempfile::tempdir().unwrap();
    let inventory = common::example_site_in(tmp.path(), None, "");
    // Slots 5-8 moved to a second row, B-03 left empty.
    let mut yaml = std::fs::read_to_string(&inventory).unwrap();
    for (from, to) in [
        ("A-05", "B-01"),
        ("A-06", "B-02"),
        ("A-07", "B-04"),
        ("A-08", "B-05"),
    ] {
        yaml = yaml.replace(from, to);
    }
    std::fs::write(&inventory, yaml).unwrap();
    let rig = start(tmp, &inventory, false);
    let profile = tempfile::tempdir().unwrap();
    let browser = common::webdriver::Browser::start(profile.path());
    browser.goto(&format!("http://{}/#token={}", rig.addr, rig.admin));
    let layout = browser.wait_for(
        "the shelf's rows",
        "const at = p => { const t = document.querySelector(`button[data-slot='${p}']`); \
           if (!t) return null; const r = t.getBoundingClientRect(); return [Math.round(r.left), Math.round(r.top)]; }; \
         const all = ['A-01', 'A-04', 'B-01', 'B-04', 'B-05'].map(at); \
         if (all.includes(null)) return false; \
         return { at: all, rows: [...document.querySelectorAll('.row-label')].map(l => l.textContent), \
                  shelf: document.querySelector('.shelf h2').textContent };",
        Duration::from_secs(20),
    );
    let at = |i: usize| {
        let p = &layout["at"][i];
        (p[0].as_i64().unwrap(), p[1].as_i64().unwrap())
    };
    let (a01, a04, b01, b04, b05) = (at(0), at(1), at(2), at(3), at(4));
    assert_eq!(layout["rows"], serde_json::json!(["A", "B"]), "{layout}");
    assert_eq!(layout["shelf"], "Shelf a", "{layout}");
    assert_eq!(a01.1, a04.1, "a row is one line: {layout}");
    assert!(b01.1 > a01.1 && b01.0 == a01.0, "B-01 under A-01: {layout}");
    assert!(
        b04.0 == a04.0 && b04.1 == b01.1,
        "B-04 under A-04, B-03 a gap: {layout}"
    );
    assert!(b05.0 > a04.0, "{layout}");
    // On a phone each row wraps under its label, every tile inside the width.
    browser.resize(390, 844);
    let phone = browser.wait_for(
        "the rows wrapped",
        "const w = document.documentElement.clientWidth; \
         const t = [...document.querySelectorAll('[data-slot]')]; \
         const label = [...document.querySelectorAll('.row-label')][1].getBoundingClientRect(); \
         const b01 = document.querySelector(\"button[data-slot='B-01']\").getBoundingClientRect(); \
         return t.every(x => x.getBoundingClientRect().right <= w) && label.bottom <= b01.top + 1;",
        Duration::from_secs(10),
    );
    assert_eq!(phone, true);
}
