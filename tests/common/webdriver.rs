//! Headless Chromium driven over the W3C WebDriver protocol (Debian's chromedriver),
//! with the tests' small HTTP client: load a page, run script in it, click, accept
//! a confirmation, take a screenshot.

use super::Child;
use super::http::request;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A WebDriver element reference's key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: SocketAddr,
    session: String,
    _chromedriver: Child,
}

impl Browser {
    /// chromedriver on a free port, and one headless Chromium session with its
    /// own profile directory.
    pub fn start(profile: &Path) -> Browser {
        let port = super::controller::free_tcp_port();
        let chromedriver = Child(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts"),
        );
        let driver: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(driver).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "chromedriver did not listen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({ "capabilities": { "alwaysMatch": { "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--window-size=1280,800",
                     format!("--user-data-dir={}", profile.display())],
        }}}});
        let r = request(driver, "POST", "/session", None, Some(&caps.to_string()));
        let v = r.json();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {}", r.body))
            .to_string();
        Browser {
            driver,
            session,
            _chromedriver: chromedriver,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (ok, v) = self.try_call(method, path, body);
        assert!(ok, "WebDriver {method} {path}: {v}");
        v
    }

    /// Whether the command succeeded, and its value (or error).
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> (bool, Value) {
        let path = format!("/session/{}{path}", self.session);
        let body = body.map(|b| b.to_string());
        let r = request(self.driver, method, &path, None, body.as_deref());
        (r.status < 400, r.json()["value"].clone())
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body: `return ...`) in the page.
    pub fn eval(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Runs `script` until it returns something truthy, or panics after `within`.
    pub fn wait_for(&self, what: &str, script: &str, within: Duration) -> Value {
        let started = Instant::now();
        loop {
            let v = self.eval(script);
            if !(v.is_null() || v == false || v == "" || v == 0) {
                return v;
            }
            assert!(started.elapsed() < within, "{what}: not within {within:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Opens the rack view at `addr` as the holder of `token`, waits for
    /// `slot`'s tile and clicks it, so its detail is shown.
    pub fn open_slot(&self, addr: impl std::fmt::Display, token: &str, slot: &str) {
        self.goto(&format!("http://{addr}/#token={token}"));
        self.wait_for(
            &format!("{slot}'s tile"),
            &format!("return document.querySelector(\"button[data-slot='{slot}']\") != null;"),
            Duration::from_secs(20),
        );
        self.click(&format!("//button[@data-slot='{slot}']"));
    }

    /// Clicks the element an XPath expression finds. The rack view redraws as
    /// events arrive, so an element found may be replaced before the click lands:
    /// then it is found again.
    pub fn click(&self, xpath: &str) {
        for _ in 0..10 {
            let found = self.call(
                "POST",
                "/element",
                Some(json!({ "using": "xpath", "value": xpath })),
            );
            let id = found[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("no element at {xpath}: {found}"))
                .to_string();
            let (ok, v) = self.try_call("POST", &format!("/element/{id}/click"), Some(json!({})));
            if ok {
                return;
            }
            assert_eq!(
                v["error"], "stale element reference",
                "clicking {xpath}: {v}"
            );
        }
        panic!("{xpath} kept being replaced");
    }

    /// The text of the open alert or confirmation, accepting it.
    pub fn accept_dialog(&self) -> String {
        let text = self.call("GET", "/alert/text", None);
        self.call("POST", "/alert/accept", Some(json!({})));
        text.as_str().unwrap_or_default().to_string()
    }

    /// Resizes the window (a phone's viewport, say).
    pub fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        );
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        let b64 = self.call("GET", "/screenshot", None);
        base64(b64.as_str().expect("base64 PNG"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.session);
        let _ = std::panic::catch_unwind(|| request(self.driver, "DELETE", &path, None, None));
    }
}

/// Standard base64 (what WebDriver sends screenshots in).
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|c| *c != b'=').map(value).collect();
    digits
        .chunks(4)
        .flat_map(|c| {
            let n = c.iter().fold(0u32, |n, d| n << 6 | u32::from(*d)) << (6 * (4 - c.len()));
            let bytes = n.to_be_bytes();
            bytes[1..c.len()].to_vec()
        })
        .collect()
}

/// Where the page's tiles are and what state each shows.
pub const TILES: &str = "return [...document.querySelectorAll('[data-slot]')].map(t => [t.dataset.slot, t.dataset.state]);";

/// The tiles as (position, state) pairs.
pub fn tiles(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t[0].as_str().unwrap_or_default().to_string(),
                t[1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}
