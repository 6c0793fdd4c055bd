//! `pirack serve` inside a controller namespace, beside simulated Pis in
//! theirs, and its API reached with `curl` from inside that namespace.

use super::{Child, Netns, text};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The API of a controller listening at `addr` inside `ns`.
pub struct Api<'a> {
    pub ns: &'a Netns,
    pub addr: &'a str,
}

impl Api<'_> {
    /// One call, its JSON answer.
    pub fn call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> serde_json::Value {
        let mut c = self.ns.command("curl");
        c.args(["-sS", "--max-time", "20", "-X", method, "-H"])
            .arg(format!("Authorization: Bearer {token}"))
            .arg(format!("http://{}{path}", self.addr));
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "-d", b]);
        }
        let out = c.output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: {e}: {}{}",
                text(&out.stdout),
                text(&out.stderr)
            )
        })
    }

    /// Polls the operation `op` (as a call started it) until it ends; its final JSON.
    pub fn wait(&self, token: &str, op: &serde_json::Value) -> serde_json::Value {
        let id = op["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no operation in {op}"));
        super::until("the operation", Duration::from_secs(120), || {
            let o = self.call(token, "GET", &format!("/v1/operations/{id}"), None);
            (o["status"] != "running").then_some(o)
        })
    }

    /// Starts `pirack serve` on `inventory` with its store and images in `d`
    /// (its log appended to `d/serve.log`, so a restart keeps the first run's),
    /// and waits for `/healthz`.
    pub fn serve(&self, inventory: &Path, d: &Path, boot: &Path) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("serve.log"))
            .unwrap();
        let child = Child(
            self.ns
                .command(env!("CARGO_BIN_EXE_pirack"))
                .arg("serve")
                .arg("--inventory")
                .arg(inventory)
                .arg("--db")
                .arg(format!("sqlite://{}/state.db", d.display()))
                .args(["--api", self.addr])
                .arg("--images")
                .arg(d.join("images"))
                .arg("--boot-files")
                .arg(boot)
                .env("PIRACK_SW_A_COMMUNITY", super::snmp::COMMUNITY)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let started = Instant::now();
        let healthz = format!("http://{}/healthz", self.addr);
        while !self
            .ns
            .command("curl")
            .args(["-sf", "--max-time", "1", &healthz])
            .output()
            .unwrap()
            .status
            .success()
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "serve did not come up"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        child
    }
}
