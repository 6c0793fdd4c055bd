//! The emulated PoE switch: net-snmp's snmpd on a loopback port, answering for
//! POWER-ETHERNET-MIB, Q-BRIDGE-MIB and the two vendor power columns through the
//! pass_persist emulator `switch-profiles/emulator/poe-switch`, whose state file
//! tests and labs read and whose faults they set.

use super::netns::in_netns;
use super::proc::Proc;
use super::{Result, failed, io_err, run};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The MIB subtrees the emulator answers for.
const SUBTREES: [&str; 4] = [
    ".1.3.6.1.2.1.105",
    ".1.3.6.1.2.1.17.7",
    ".1.3.6.1.4.1.9.9.402",
    ".1.3.6.1.4.1.11.2.14.11.1.9",
];

/// What the switch looks like and how it is reached.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// The namespace snmpd runs in (on its loopback); `None`: this one.
    pub netns: Option<&'a str>,
    /// Where its state, configuration and logs go.
    pub dir: &'a Path,
    /// The emulator (`switch-profiles/emulator/poe-switch`).
    pub emulator: &'a Path,
    pub port: u16,
    pub ports: u16,
    /// Ports with PoE [default: every port].
    pub poe_ports: Option<u16>,
    /// `cisco` or `aruba`: also the vendor's per-port power column.
    pub vendor: Option<&'a str>,
    /// Every port starts switched off (else on).
    pub power_off: bool,
    /// The read-write v2c community.
    pub community: &'a str,
    /// A read-only v2c community.
    pub read_only: Option<&'a str>,
    /// A v3 authPriv user (SHA-256, AES-128): name, auth and privacy passwords.
    pub v3: Option<(&'a str, &'a str, &'a str)>,
}

/// A running emulated switch; snmpd stops when it is dropped.
pub struct PoeSwitch {
    pub port: u16,
    /// The emulator's state file.
    pub state: PathBuf,
    emulator: PathBuf,
    community: String,
    netns: Option<String>,
    _snmpd: Proc,
}

impl PoeSwitch {
    pub fn start(spec: &Spec) -> Result<PoeSwitch> {
        let dir = spec.dir;
        std::fs::create_dir_all(dir).map_err(io_err(format!("making {}", dir.display())))?;
        let emulator = std::fs::canonicalize(spec.emulator)
            .map_err(io_err(format!("the emulator {}", spec.emulator.display())))?;
        let state = dir.join("state.json");
        let mut init = Command::new(&emulator);
        init.arg("init").arg(&state);
        init.args(["--ports", &spec.ports.to_string()]);
        init.args([
            "--poe-ports",
            &spec.poe_ports.unwrap_or(spec.ports).to_string(),
        ]);
        if let Some(v) = spec.vendor {
            init.args(["--vendor", v]);
        }
        if spec.power_off {
            init.args(["--power", "off"]);
        }
        run(&format!("{} init (python3)", emulator.display()), &mut init)?;
        // snmpd runs a pass_persist program by absolute path (its shebang finds python3).
        let serve = format!("{} serve {}", emulator.display(), state.display());
        let mut conf = format!(
            "agentaddress udp:127.0.0.1:{}\nrwcommunity {} 127.0.0.1\n",
            spec.port, spec.community
        );
        if let Some(ro) = spec.read_only {
            conf += &format!("rocommunity {ro} 127.0.0.1\n");
        }
        if let Some((user, auth, privacy)) = spec.v3 {
            conf +=
                &format!("createUser {user} SHA-256 {auth} AES {privacy}\nrwuser {user} priv\n");
        }
        for tree in SUBTREES {
            conf += &format!("pass_persist {tree} {serve}\n");
        }
        let conf_path = dir.join("snmpd.conf");
        std::fs::write(&conf_path, conf).map_err(io_err("writing snmpd.conf"))?;
        let mut snmpd = in_netns(spec.netns, "snmpd");
        snmpd
            .args(["-f", "-C", "-c"])
            .arg(&conf_path)
            .arg("-Lf")
            .arg(dir.join("snmpd.log"))
            .env("SNMP_PERSISTENT_DIR", dir.join("persist"))
            .env("MIBS", "");
        let mut snmpd = Proc::spawn("snmpd", &mut snmpd, &dir.join("snmpd.out"), false)?;
        snmpd.wait_listening("udp", spec.port, Duration::from_secs(10))?;
        Ok(PoeSwitch {
            port: spec.port,
            state,
            emulator,
            community: spec.community.to_string(),
            netns: spec.netns.map(str::to_string),
            _snmpd: snmpd,
        })
    }

    /// Runs a net-snmp tool (snmpget, snmpset, snmpwalk) against it, v2c.
    pub fn net_snmp(&self, tool: &str, args: &[&str]) -> std::io::Result<Output> {
        in_netns(self.netns.as_deref(), tool)
            .args(["-v2c", "-c", &self.community, "-t", "1", "-r", "1"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(args)
            .env("MIBS", "")
            .output()
    }

    /// Sets emulator faults (`delay_ms=800`, `stuck_ports=[3]`, `clear=1`, ...).
    pub fn fault(&self, settings: &[&str]) -> Result<()> {
        let what = format!("setting faults {settings:?}");
        let mut cmd = Command::new(&self.emulator);
        cmd.arg("fault").arg(&self.state).args(settings);
        run(&what, &mut cmd).map(drop)
    }

    /// The switch's state as the emulator keeps it.
    pub fn state(&self) -> Result<serde_json::Value> {
        let text =
            std::fs::read_to_string(&self.state).map_err(io_err("reading the switch's state"))?;
        serde_json::from_str(&text).map_err(|e| failed("the switch's state", e.to_string()))
    }

    /// Admin state of a port: 1 on, 2 off.
    pub fn admin(&self, port: u16) -> Result<i64> {
        self.state()?["admin"][port.to_string()]
            .as_i64()
            .ok_or_else(|| failed("the switch's state", format!("no port {port}")))
    }
}
