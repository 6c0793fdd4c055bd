//! `pirack demo` as a newcomer runs it, and the rack view in a real browser
//! (headless Chromium over WebDriver) watching it: the shelf's tiles turn `up` live
//! without a reload, an admin's power cycle from the page reaches the emulated
//! switch, a customer's page shows only its slots, and `--once` exits 0 when every
//! Pi is up (a stalled one recovered by the watchdog) and non-zero when time runs
//! out. The screenshot of the live shelf is kept as target/rack-view-demo.png.

mod common;

use common::webdriver::{Browser, TILES, tiles};
use common::{Child, can_use_netns, have, have_all};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// One demo at a time: each boots a shelf, and they share the image cache.
static ONE: Mutex<()> = Mutex::new(());

fn can_run(test: &str) -> bool {
    can_use_netns(test) && have_all(test, &["snmpd", "ganesha.nfsd", "rpcbind", "python3"])
}

struct Demo {
    child: Child,
    lines: Receiver<String>,
}

impl Demo {
    fn start(dir: &Path, args: &[&str]) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pirack"))
            .arg("demo")
            .arg("--dir")
            .arg(dir)
            .arg("--no-install")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                eprintln!("demo: {line}");
                let _ = tx.send(line);
            }
        });
        Demo {
            child: Child(child),
            lines,
        }
    }

    /// The first line starting with `prefix`, waiting up to `within`.
    fn line(&self, prefix: &str, within: Duration) -> String {
        let started = Instant::now();
        loop {
            let left = within.saturating_sub(started.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(_) => {}
                Err(e) => panic!("no line starting {prefix:?} within {within:?}: {e}"),
            }
        }
    }

    /// Every line until the demo exits, and how it exited.
    fn wait(mut self, within: Duration) -> (ExitStatus, Vec<String>) {
        let started = Instant::now();
        let status = loop {
            if let Some(s) = self.child.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                started.elapsed() < within,
                "the demo did not end within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let rest = self.lines.iter().collect();
        (status, rest)
    }

    fn stop(self) -> (ExitStatus, u32) {
        let pid = self.child.0.id();
        term(pid);
        (self.wait(Duration::from_secs(30)).0, pid)
    }
}

fn term(pid: u32) {
    let target = nix::unistd::Pid::from_raw(pid as i32);
    let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGTERM);
}

impl Drop for Demo {
    /// A failed test still lets the demo take its namespaces and peers down.
    fn drop(&mut self) {
        term(self.child.0.id());
        let started = Instant::now();
        while matches!(self.child.0.try_wait(), Ok(None))
            && started.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn namespaces() -> String {
    common::text(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
}

fn switch_history(dir: &Path) -> Vec<(u64, u64)> {
    let state = std::fs::read_to_string(dir.join("run/switch/state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    state["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h[0].as_u64().unwrap(), h[1].as_u64().unwrap()))
        .collect()
}

#[test]
fn the_rack_view_follows_a_demo_live_and_power_cycles_from_the_page() {
    let test = "rack view on a demo";
    if !can_run(test) || !have(test, "chromium") || !have(test, "chromedriver") {
        return;
    }
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let port = common::controller::free_tcp_port().to_string();
    // The browser first: the page is open before any Pi has power, and never reloaded.
    let browser = Browser::start(&tmp.path().join("admin-profile"));
    let demo = Demo::start(tmp.path(), &["--no-stall", "--port", &port]);
    let admin_url = demo.line("rack view (admin):", Duration::from_secs(300));
    let admin_url = admin_url.split_whitespace().last().unwrap().to_string();
    let customer = demo.line("rack view (acme):", Duration::from_secs(5));
    let customer_url = customer.split_whitespace().last().unwrap().to_string();

    browser.goto(&admin_url);
    let first = tiles(&browser.wait_for(
        "eight tiles",
        &format!("const t = (() => {{ {TILES} }})(); return t.length == 8 && t;"),
        Duration::from_secs(20),
    ));
    assert_eq!(first.len(), 8, "{first:?}");
    assert!(
        first.iter().all(|(_, s)| s != "up"),
        "nothing is up before power-on: {first:?}"
    );
    let mut seen = std::collections::BTreeSet::new();
    let started = Instant::now();
    loop {
        let now = tiles(&browser.eval(TILES));
        seen.extend(now.iter().map(|(_, s)| s.clone()));
        if now.len() == 8 && now.iter().all(|(_, s)| s == "up") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "not all up on the page: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        seen.iter()
            .any(|s| ["dhcp", "tftp", "kernel_loaded", "nfs_mounted"].contains(&s.as_str())),
        "the page showed the boot on its way, not just its end: {seen:?}"
    );
    let shot = browser.screenshot();
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("../rack-view-demo.png"),
        &shot,
    )
    .unwrap();
    assert_eq!(&shot[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        shot.len() > 15_000,
        "the screenshot looks blank: {} bytes",
        shot.len()
    );

    // On a phone-sized screen the shelf wraps: every tile inside the width.
    browser.resize(390, 844);
    let fits = browser.eval(
        "const w = document.documentElement.clientWidth; \
         return document.documentElement.scrollWidth <= w && \
           [...document.querySelectorAll('[data-slot]')].every(t => t.getBoundingClientRect().right <= w);",
    );
    assert_eq!(fits, true, "the rack view overflows a phone's width");
    browser.resize(1280, 800);

    // An admin power-cycles A-02 from its detail pane; the switch sees it off, then on.
    let before = switch_history(tmp.path()).len();
    browser.click("//button[@data-slot='A-02']");
    browser.wait_for(
        "the admin buttons",
        "return document.querySelectorAll('button.act').length > 0;",
        Duration::from_secs(10),
    );
    browser.click("//button[@class='act' and text()='Power cycle']");
    assert_eq!(browser.accept_dialog(), "Power cycle A-02?");
    let started = Instant::now();
    let cycle = loop {
        let h = switch_history(tmp.path());
        let new: Vec<(u64, u64)> = h[before..].to_vec();
        if new.contains(&(2, 1)) {
            break new;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the switch never saw A-02's cycle: {new:?}; the page says {}",
            browser.eval("return document.body.innerText;")
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(cycle, [(2, 2), (2, 1)], "port 2 off, then on, nothing else");
    browser.wait_for(
        "A-02 up again after its cycle",
        "const t = document.querySelector('[data-slot=\"A-02\"]'); return t && t.dataset.state == 'up' && document.getElementById('events').textContent.includes('recover:');",
        Duration::from_secs(120),
    );

    // A customer's page: its slots only, and no buttons that change anything.
    let theirs = Browser::start(&tmp.path().join("acme-profile"));
    theirs.goto(&customer_url);
    let mine = tiles(&theirs.wait_for(
        "acme's tiles",
        &format!("const t = (() => {{ {TILES} }})(); return t.length > 0 && t;"),
        Duration::from_secs(20),
    ));
    let positions: Vec<&str> = mine.iter().map(|(p, _)| p.as_str()).collect();
    // The example gives acme A-01..A-04; the demo gives the ownerless slots to the first customer.
    assert_eq!(positions, ["A-01", "A-02", "A-03", "A-04", "A-07", "A-08"]);
    theirs.click("//button[@data-slot='A-01']");
    theirs.wait_for(
        "A-01's detail",
        "return document.querySelector('#detail table') != null;",
        Duration::from_secs(10),
    );
    assert_eq!(
        theirs.eval("return document.querySelectorAll('button.act').length;"),
        0
    );
    drop((theirs, browser));

    let (status, pid) = demo.stop();
    assert!(
        status.success(),
        "the demo stops cleanly on SIGTERM: {status}"
    );
    assert!(
        !namespaces().contains(&format!("pirack-demo-{pid}")),
        "its namespace is gone"
    );
}

#[test]
fn demo_once_exits_zero_when_every_pi_is_up_and_non_zero_when_time_runs_out() {
    let test = "demo --once";
    if !can_run(test) {
        return;
    }
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let port = common::controller::free_tcp_port().to_string();
    let demo = Demo::start(tmp.path(), &["--once", "--slots", "3", "--port", &port]);
    let (status, lines) = demo.wait(Duration::from_secs(400));
    assert!(status.success(), "every Pi up: {status}");
    let all = lines.join("\n");
    assert!(
        all.contains("A-03: stalled in tftp; the watchdog power-cycled its port (recovery 1)"),
        "{all}"
    );
    let a03 = lines
        .iter()
        .find(|l| l.starts_with("A-03 "))
        .expect("A-03's summary line");
    let cols: Vec<&str> = a03.split_whitespace().collect();
    assert_eq!(
        (cols[3], cols[4]),
        ("2", "1"),
        "two boots, one recovery: {a03}"
    );
    // Each stage as the controller saw it: the NFS mount to `up` takes time.
    for slot in ["A-01", "A-02"] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(slot) && l.contains("powering_on "))
            .unwrap_or_else(|| panic!("{slot}'s stage timings: {all}"));
        let nfs: f64 = line
            .split("nfs_mounted ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{slot}'s NFS stage: {line}"));
        assert!(nfs > 0.0 && line.contains("kernel_loaded "), "{line}");
    }

    // Too little time for any Pi: non-zero, and nothing left behind.
    let sims = || namespaces().matches("pirack-sim-").count();
    let before = sims();
    let demo = Demo::start(
        tmp.path(),
        &["--once", "--slots", "1", "--timeout", "2", "--port", &port],
    );
    let pid = demo.child.0.id();
    let (status, _) = demo.wait(Duration::from_secs(120));
    assert!(!status.success(), "not up within 2 s is a failure");
    assert!(!namespaces().contains(&format!("pirack-demo-{pid}")));
    assert_eq!(sims(), before, "the simulated Pis' namespaces are gone");
}
