//! Real SNMP agents on loopback for the switch tests: net-snmp's snmpd running the
//! PoE switch emulator (`switch-profiles/emulator/poe-switch`) as a pass_persist handler, and
//! snmpsim serving a recorded switch.

use super::Child;
use pirack_lab::testbed::switch::{PoeSwitch, Spec};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const COMMUNITY: &str = "private";
pub const V3_USER: &str = "pirack";
pub const V3_AUTH: &str = "auth-secret-1";
pub const V3_PRIV: &str = "priv-secret-1";
const EMULATOR: &str = "switch-profiles/emulator/poe-switch";

/// A UDP port nothing listens on (bound and released; loopback only).
pub fn free_udp_port() -> u16 {
    pirack_lab::testbed::free_udp_port().unwrap()
}

/// snmpd with the emulated PoE switch (the testbed's), on its own port, with a
/// read-only community `public`, the read-write one and a v3 user; stopped on
/// drop.
pub struct Agent {
    switch: PoeSwitch,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Agent {
    type Target = PoeSwitch;
    fn deref(&self) -> &PoeSwitch {
        &self.switch
    }
}

impl Agent {
    pub fn start(ports: u16, poe_ports: u16, vendor: Option<&str>) -> Agent {
        Agent::start_in(None, ports, poe_ports, vendor)
    }

    /// The agent inside namespace `netns` (on its loopback).
    pub fn start_in(
        netns: Option<&str>,
        ports: u16,
        poe_ports: u16,
        vendor: Option<&str>,
    ) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let switch = PoeSwitch::start(&Spec {
            netns,
            dir: dir.path(),
            emulator: Path::new(EMULATOR),
            port: free_udp_port(),
            ports,
            poe_ports: Some(poe_ports),
            vendor,
            power_off: false,
            community: COMMUNITY,
            read_only: Some("public"),
            v3: Some((V3_USER, V3_AUTH, V3_PRIV)),
        })
        .unwrap();
        let agent = Agent { switch, _dir: dir };
        agent.wait_ready();
        agent
    }

    /// Waits until the emulator answers through snmpd.
    fn wait_ready(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if self
                .net_snmp("snmpget", &["1.3.6.1.2.1.105.1.3.1.1.4.1"])
                .status
                .success()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("snmpd on port {} did not come up", self.port);
    }

    /// Runs a net-snmp tool (snmpget, snmpset, snmpwalk) against this agent, v2c.
    pub fn net_snmp(&self, tool: &str, args: &[&str]) -> Output {
        self.switch.net_snmp(tool, args).unwrap()
    }

    /// Sets emulator faults (`delay_ms=800`, `stuck_ports=[3]`, `clear=1`, ...).
    pub fn fault(&self, settings: &[&str]) {
        self.switch.fault(settings).unwrap();
    }

    /// The emulated switch's state as the emulator keeps it.
    pub fn state(&self) -> serde_json::Value {
        self.switch.state().unwrap()
    }

    /// Admin state of a port: 1 on, 2 off.
    pub fn admin(&self, port: u16) -> i64 {
        self.switch.admin(port).unwrap()
    }
}

/// snmpsim serving `records` (`oid|tag|value` lines) to community `public`.
pub struct Simulator {
    pub port: u16,
    _dir: tempfile::TempDir,
    _child: Child,
}

impl Simulator {
    pub fn start(records: &str) -> Simulator {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::write(data.join("public.snmprec"), records).unwrap();
        // snmpsim drops root; its cache must stay writable for the user it becomes.
        let ok = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let port = free_udp_port();
        let child = Command::new("snmpsimd")
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--cache-dir={}", cache.display()))
            .arg(format!("--agent-udpv4-endpoint=127.0.0.1:{port}"))
            .args(["--process-user=nobody", "--process-group=nogroup"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("snmpsimd starts");
        let sim = Simulator {
            port,
            _dir: dir,
            _child: Child(child),
        };
        let started = Instant::now();
        loop {
            let up = Command::new("snmpget")
                .args(["-v2c", "-c", "public", "-t", "1", "-r", "0"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("1.3.6.1.2.1.105.1.3.1.1.4.1")
                .env("MIBS", "")
                .output()
                .unwrap()
                .status
                .success();
            if up {
                return sim;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "snmpsimd did not come up"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// How a test inventory reaches its switch.
pub enum Creds {
    V2c,
    /// v3 authPriv with secret files; the two passwords given.
    V3 {
        auth: &'static str,
        privacy: &'static str,
    },
}

/// The example site (8 slots on sw-a) in `dir`, pointed at a local agent on `port`
/// with `profile` and the given switch settings (YAML lines under the switch).
pub fn site_for(dir: &Path, port: u16, profile: &str, creds: Creds, settings: &str) -> PathBuf {
    let inventory = super::example_site_in(dir, None, "");
    for extra in ["cisco-catalyst.yaml", "aruba-procurve.yaml"] {
        std::fs::copy(
            Path::new("switch-profiles").join(extra),
            dir.join("switch-profiles").join(extra),
        )
        .unwrap();
    }
    let mut yaml = std::fs::read_to_string(&inventory).unwrap();
    yaml = yaml.replace("snmp_port: 16161", &format!("snmp_port: {port}"));
    yaml = yaml.replace("profile: generic", &format!("profile: {profile}"));
    let mut switch_lines = String::from("    trunk_port: 10\n");
    for line in settings.lines() {
        switch_lines += &format!("    {line}\n");
    }
    yaml = yaml.replace("    trunk_port: 10\n", &switch_lines);
    if let Creds::V3 { auth, privacy } = creds {
        assert!(yaml.contains("version: v2c"));
        let secret = |name: &str, value: &str| {
            let path = dir.join("hardware").join(name);
            std::fs::write(&path, format!("{value}\n")).unwrap();
            let mut perms = std::fs::metadata(&path).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
            std::fs::set_permissions(&path, perms).unwrap();
        };
        secret("sw-a.auth", auth);
        secret("sw-a.priv", privacy);
        yaml = yaml.replace(
            "      version: v2c\n      community: { env: PIRACK_SW_A_COMMUNITY }\n",
            &format!(
                "      version: v3\n      user: {V3_USER}\n\
                 \x20     auth: {{ protocol: sha256, password: {{ file: sw-a.auth }} }}\n\
                 \x20     privacy: {{ protocol: aes128, password: {{ file: sw-a.priv }} }}\n"
            ),
        );
    }
    assert!(
        yaml.contains(&format!("snmp_port: {port}"))
            && yaml.contains(&format!("profile: {profile}"))
    );
    std::fs::write(&inventory, yaml).unwrap();
    inventory
}

/// Runs pirack with the community the v2c inventories name.
pub fn pirack_snmp(args: &[&str]) -> Output {
    pirack_community(args, COMMUNITY)
}

pub fn pirack_community(args: &[&str], community: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args(args)
        .env("PIRACK_SW_A_COMMUNITY", community)
        .output()
        .expect("pirack runs")
}
