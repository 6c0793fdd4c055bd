//! `pirack serve` for the API tests: a controller on loopback with its own store,
//! images `tiny-1` and `tiny-2`, an export root and tokens for an admin and two
//! customers.

use super::http::get;
use super::{Child, text};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub fn free_tcp_port() -> u16 {
    pirack_lab::testbed::free_tcp_port().unwrap()
}

/// A running controller with its store, images, export root and tokens.
pub struct Rig {
    pub addr: SocketAddr,
    pub admin: String,
    pub acme: String,
    pub globex: String,
    pub dir: PathBuf,
    /// The store's URL.
    pub db: String,
    /// How to start the controller again: its command line and environment.
    serve_args: Vec<String>,
    env: Vec<(String, String)>,
    _tmp: tempfile::TempDir,
    serve: Child,
}

/// Records `names` as customers the site knows (beyond the inventory's).
pub fn owners(db: &str, names: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args(["owner", "add", "--db", db])
        .args(names)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

pub fn token(db: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args(["token", "create", "--db", db])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// Starts `pirack serve` on `inventory` (already written into `tmp`), with images
/// `tiny-1` and `tiny-2`.
pub fn start(tmp: tempfile::TempDir, inventory: &Path, ssh: bool) -> Rig {
    let db = format!("sqlite://{}/state.db", tmp.path().display());
    start_on(tmp, inventory, ssh, db)
}

/// As [`start`], with the store at `db`.
pub fn start_on(tmp: tempfile::TempDir, inventory: &Path, ssh: bool, db: String) -> Rig {
    start_full(tmp, inventory, ssh, db, false, Vec::new(), &[])
}

/// As [`start_on`], with `extra` arguments for `pirack serve`.
pub fn start_on_with(
    tmp: tempfile::TempDir,
    inventory: &Path,
    ssh: bool,
    db: String,
    extra: &[&str],
) -> Rig {
    start_full(tmp, inventory, ssh, db, false, Vec::new(), extra)
}

/// As [`start`], with `extra` arguments for `pirack serve`.
pub fn start_with(tmp: tempfile::TempDir, inventory: &Path, extra: &[&str]) -> Rig {
    let db = format!("sqlite://{}/state.db", tmp.path().display());
    start_full(tmp, inventory, false, db, false, Vec::new(), extra)
}

/// As [`start`], with exports following the roots (the inventory names the NFS
/// server) and `env` set for the controller.
pub fn start_exporting(
    tmp: tempfile::TempDir,
    inventory: &Path,
    ssh: bool,
    env: Vec<(String, String)>,
) -> Rig {
    let db = format!("sqlite://{}/state.db", tmp.path().display());
    start_full(tmp, inventory, ssh, db, true, env, &[])
}

fn start_full(
    tmp: tempfile::TempDir,
    inventory: &Path,
    ssh: bool,
    db: String,
    export: bool,
    env: Vec<(String, String)>,
    extra: &[&str],
) -> Rig {
    let dir = tmp.path().to_path_buf();
    let yaml = std::fs::read_to_string(inventory).unwrap().replace(
        "export_root: /export",
        &format!("export_root: {}", dir.join("export").display()),
    );
    std::fs::write(inventory, yaml).unwrap();
    let images = dir.join("images");
    super::tiny_image(&images, "1", ssh);
    super::tiny_image(&images, "2", ssh);
    // The site's customers: the inventory's two and a third without slots of its own.
    owners(&db, &["acme", "globex", "initech"]);
    let admin = token(&db, &["--name", "ops", "--admin"]);
    let acme = token(&db, &["--name", "acme", "--owner", "acme"]);
    let globex = token(&db, &["--name", "globex", "--owner", "globex"]);
    let port = free_tcp_port();
    let mut serve_args: Vec<String> = [
        "serve",
        "--inventory",
        inventory.to_str().unwrap(),
        "--db",
        &db,
        "--api",
        &format!("127.0.0.1:{port}"),
        "--images",
        images.to_str().unwrap(),
        "--dhcp-port",
        &super::snmp::free_udp_port().to_string(),
        "--tftp-port",
        &super::snmp::free_udp_port().to_string(),
    ]
    .map(String::from)
    .to_vec();
    if !export {
        serve_args.push("--no-export".into());
    }
    serve_args.extend(extra.iter().map(|a| a.to_string()));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let serve = spawn_serve(&dir, &serve_args, &env, addr);
    Rig {
        addr,
        db,
        admin,
        acme,
        globex,
        dir,
        serve_args,
        env,
        _tmp: tmp,
        serve,
    }
}

fn spawn_serve(dir: &Path, args: &[String], env: &[(String, String)], addr: SocketAddr) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .unwrap();
    let child = Child(
        Command::new(env!("CARGO_BIN_EXE_pirack"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("PIRACK_SW_A_COMMUNITY", super::snmp::COMMUNITY)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "API did not come up: {}",
            std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

impl Rig {
    /// SIGKILLs the controller and starts it again on the same store.
    /// The controller's process id.
    pub fn pid(&self) -> u32 {
        self.serve.0.id()
    }

    /// Another controller on the same store and inventory (`--standby` and
    /// `extra`), its log in `<name>.log`; not waited for (a standby answers only
    /// once it has taken over). Its API, DHCP and TFTP on ports of its own, as on
    /// another machine: a stalled controller here keeps its sockets.
    pub fn standby(&self, name: &str, extra: &[&str]) -> (Child, SocketAddr) {
        let mut args = vec!["--standby"];
        args.extend(extra);
        self.another(name, &[], &args)
    }

    /// Another controller as [`Rig::standby`], with the flags in `set` given
    /// these values instead (added if the first has none) and `extra` added.
    pub fn another(&self, name: &str, set: &[(&str, &str)], extra: &[&str]) -> (Child, SocketAddr) {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
        let mut args = self.serve_args.clone();
        let own = [
            ("--api", addr.to_string()),
            ("--dhcp-port", super::snmp::free_udp_port().to_string()),
            ("--tftp-port", super::snmp::free_udp_port().to_string()),
        ];
        let given = set.iter().map(|(f, v)| (*f, v.to_string()));
        for (flag, value) in own.into_iter().chain(given) {
            match args.iter().position(|a| a == flag) {
                Some(at) => args[at + 1] = value,
                None => args.extend([flag.to_string(), value]),
            }
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pirack"))
            .args(&args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("PIRACK_SW_A_COMMUNITY", super::snmp::COMMUNITY)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        (Child(child), addr)
    }

    /// SIGKILLs the controller (its process reaped).
    pub fn kill(&mut self) {
        self.serve.0.kill().unwrap();
        self.serve.0.wait().unwrap();
    }

    pub fn kill_and_restart(&mut self) {
        self.serve.0.kill().unwrap();
        self.serve.0.wait().unwrap();
        self.serve = spawn_serve(&self.dir, &self.serve_args, &self.env, self.addr);
    }

    /// Polls an operation until it ends; its final JSON. A controller just
    /// restarted may drop a connection: tried again while it runs, its log
    /// shown if it died.
    pub fn wait(&self, op: &serde_json::Value) -> serde_json::Value {
        let id = op["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no operation in {op}"));
        let started = Instant::now();
        loop {
            let path = format!("/v1/operations/{id}");
            let now =
                match super::http::try_request(self.addr, "GET", &path, Some(&self.admin), None) {
                    Ok(r) => r.json(),
                    Err(e) => {
                        // Exited: no process, or a zombie not yet reaped.
                        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()));
                        if stat.is_err() || stat.is_ok_and(|s| s.contains(") Z ")) {
                            panic!(
                                "GET {path}: {e}; the controller exited:\n{}",
                                std::fs::read_to_string(self.dir.join("serve.log"))
                                    .unwrap_or_default()
                            );
                        }
                        assert!(
                            started.elapsed() < Duration::from_secs(10),
                            "GET {path}: {e}"
                        );
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                };
            if now["status"] != "running" {
                return now;
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "operation {id} never ended"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn slot(&self, slot: &str) -> serde_json::Value {
        get(self.addr, &format!("/v1/slots/{slot}"), Some(&self.admin)).json()
    }
}
