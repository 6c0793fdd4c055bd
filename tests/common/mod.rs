//! Helpers shared by the integration tests: the testbed (namespaces, peers, loop
//! filesystems) is the lab crate's, shared with the benchmarks and the labs; what
//! is here adapts it to tests (temporary directories, panics on failure).
#![allow(dead_code)]

pub mod controller;
pub mod dns;
pub mod http;
pub mod nfs;
pub mod nsctl;
pub mod partition;
pub mod sink;
pub mod snmp;
pub mod sshd;
pub mod unit;
pub mod webdriver;

use pirack_core::inventory::{self, Site};
use pirack_core::switch::Profiles;
use pirack_lab::testbed;
pub use pirack_lab::testbed::netns::Netns;
use std::path::Path;
use std::process::{Command, Output};

pub fn profiles() -> Profiles {
    Profiles::load_dir(Path::new("switch-profiles")).expect("shipped profiles load")
}

pub fn site(path: &str) -> Site {
    inventory::load(Path::new(path), &profiles().names()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs the `pirack` binary built for these tests.
pub fn pirack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args(args)
        .output()
        .expect("pirack runs")
}

/// The string field `key` of every element of a JSON array (event kinds, slot
/// positions or states).
pub fn strings<'a>(v: &'a serde_json::Value, key: &str) -> Vec<&'a str> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|e| e[key].as_str().expect("a string field"))
        .collect()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether tests that build network namespaces can run here. Outside CI they skip
/// with a reason; under CI=true a missing capability fails the test.
pub fn can_use_netns(test: &str) -> bool {
    // SAFETY: geteuid(2) cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let ip = Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if root && ip {
        return true;
    }
    let why = if root {
        "iproute2 (`ip`) is missing"
    } else {
        "not root"
    };
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "{test}: {why}, and CI must run it"
    );
    eprintln!("skipped {test}: {why}");
    false
}

/// Whether this test runs as root (root builds need it); outside CI it skips
/// with a reason, under CI=true not being root fails it.
pub fn is_root(test: &str) -> bool {
    // SAFETY: geteuid(2) cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{test}: needs root under CI"
        );
        eprintln!("skipped {test}: root builds need root");
    }
    root
}

/// Whether a peer program is installed; as above, missing fails under CI.
pub fn have(test: &str, program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        || Path::new(program).is_file();
    if !found {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{test}: {program} missing, and CI must run it"
        );
        eprintln!("skipped {test}: {program} is not installed");
    }
    found
}

/// What booting virtual Pi 3s takes (`pirack hil` and `pirack hil run`).
pub const VIRTUAL_PI_PEERS: &[&str] = &["qemu-system-aarch64", "cpio", "ganesha.nfsd", "rpcbind"];

/// Whether every one of `programs` is installed, as [`have`] says.
pub fn have_all(test: &str, programs: &[&str]) -> bool {
    programs.iter().all(|p| have(test, p))
}

/// Polls `f` every 200 ms until it gives a value; fails the test after `within`.
pub fn until<T>(what: &str, within: std::time::Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let started = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// A namespace for this test run, `pt-<tag>-<pid>`, deleted on drop.
pub fn netns(tag: &str) -> Netns {
    Netns::new(&format!("pt-{tag}-{}", std::process::id())).expect("ip netns add")
}

/// A child process killed on drop.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Boot files of realistic shape (the names the Pi 3 firmware asks for), random
/// content, in a temporary directory.
pub fn boot_files(kernel_bytes: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    for (name, size) in [
        ("bootcode.bin", 52_456),
        ("start.elf", 2_965_216 / 4),
        ("fixup.dat", 7_287),
        ("bcm2710-rpi-3-b.dtb", 24_621),
        ("bcm2710-rpi-3-b-plus.dtb", 25_196),
        ("kernel8.img", kernel_bytes),
    ] {
        std::fs::write(dir.path().join(name), random(size)).unwrap();
    }
    dir
}

/// `pirack serve` in `netns` on `inventory`, booting slots from the image store
/// `images`, with its own state store; JSON events on its stdout.
pub struct Served {
    pub child: Child,
    pub _db: tempfile::TempDir,
}

pub fn serve(netns: &Netns, inventory: &Path, boot: &Path, images: &Path) -> Served {
    let db = tempfile::tempdir().unwrap();
    let child = netns
        .command(env!("CARGO_BIN_EXE_pirack"))
        .arg("serve")
        .arg("--inventory")
        .arg(inventory)
        .arg("--boot-files")
        .arg(boot)
        .arg("--images")
        .arg(images)
        .args(["--json-events", "--no-export", "--api", "127.0.0.1:0"])
        .arg("--db")
        .arg(format!("sqlite://{}/state.db", db.path().display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    Served {
        child: Child(child),
        _db: db,
    }
}

/// A controller namespace and one Pi namespace joined like slot A-01 of
/// hardware/example-8.yaml: `eth0.10` = 10.46.189.1/30 ↔ the Pi's `eth0`.
pub struct SlotLink {
    pub ctl: Netns,
    pub pi: Netns,
}

impl SlotLink {
    pub fn new(tag: &str, pi_address: Option<&str>) -> SlotLink {
        let ctl = netns(&format!("{tag}c"));
        let pi = netns(&format!("{tag}p"));
        let out = Command::new("ip")
            .args(["link", "add", "eth0.10", "netns", ctl.name()])
            .args(["type", "veth", "peer", "name", "eth0"])
            .args(["netns", pi.name(), "address", "b8:27:eb:85:c0:f2"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        ctl.ip(&["addr", "add", "10.46.189.1/30", "dev", "eth0.10"])
            .unwrap();
        ctl.ip(&["link", "set", "eth0.10", "up"]).unwrap();
        pi.ip(&["link", "set", "eth0", "up"]).unwrap();
        if let Some(a) = pi_address {
            pi.ip(&["addr", "add", a, "dev", "eth0"]).unwrap();
        }
        SlotLink { ctl, pi }
    }
}

/// A filesystem on a loop device in a temporary directory.
pub struct LoopFs {
    fs: testbed::loopfs::LoopFs,
    _dir: tempfile::TempDir,
}

impl LoopFs {
    pub fn new(mkfs: &[&str]) -> LoopFs {
        let dir = tempfile::tempdir().unwrap();
        let fs = testbed::loopfs::LoopFs::new(dir.path(), 600 << 20, mkfs).unwrap();
        LoopFs { fs, _dir: dir }
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.fs.path()
    }

    /// Bytes in use, after everything written has reached the disk.
    pub fn used(&self) -> u64 {
        self.fs.used()
    }
}

/// hardware/example-8.yaml with its ledger and profile copied into `dir`, the
/// export root moved to `export_root` when given and `extra` YAML appended;
/// returns the copied inventory's path.
pub fn example_site_in(dir: &Path, export_root: Option<&Path>, extra: &str) -> std::path::PathBuf {
    site_in(dir, "example-8", export_root, extra)
}

/// hardware/`name`.yaml, as [`example_site_in`] copies the example.
pub fn site_in(
    dir: &Path,
    name: &str,
    export_root: Option<&Path>,
    extra: &str,
) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("hardware")).unwrap();
    std::fs::create_dir_all(dir.join("switch-profiles")).unwrap();
    std::fs::copy(
        "switch-profiles/generic.yaml",
        dir.join("switch-profiles/generic.yaml"),
    )
    .unwrap();
    let ledger = format!("hardware/{name}.ledger.yaml");
    std::fs::copy(&ledger, dir.join(&ledger)).unwrap();
    let mut yaml = std::fs::read_to_string(format!("hardware/{name}.yaml")).unwrap();
    if let Some(root) = export_root {
        yaml = yaml.replace(
            "export_root: /export",
            &format!("export_root: {}", root.display()),
        );
    }
    let inventory = dir.join(format!("hardware/{name}.yaml"));
    std::fs::write(&inventory, yaml + extra).unwrap();
    inventory
}

/// A small image (`tiny-<version>`) in `store`: a root tree and Pi 3 boot files;
/// with an sshd configuration when `ssh`, so each root gets its own host keys.
pub fn tiny_image(store: &Path, version: &str, ssh: bool) -> String {
    let boot = boot_files(64 * 1024);
    image_from(store, version, ssh, boot.path())
}

/// As [`tiny_image`], with the boot files in `boot`.
pub fn image_from(store: &Path, version: &str, ssh: bool, boot: &Path) -> String {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    if ssh {
        std::fs::create_dir_all(root.join("etc/ssh")).unwrap();
    }
    std::fs::write(
        root.join("etc/os-release"),
        format!("NAME=tiny\nVERSION={version}\n"),
    )
    .unwrap();
    let import = pirack_controller::roots::image::Import {
        name: "tiny".into(),
        version: version.into(),
        root,
        boot: boot.to_path_buf(),
        cmdline: "console=ttyAMA0,115200".into(),
    };
    pirack_controller::roots::image::import(store, &import, &|_, _| {}).unwrap();
    format!("tiny-{version}")
}

/// A site whose slots boot: hardware/`name`.yaml copied into `dir` with its
/// export root there, image `tiny-1` in `dir/images` from the boot files `boot`,
/// and the roots of `slots` built from it (offline, as `pirack root build` does).
/// Returns the inventory and the image store.
pub fn booting_site(
    dir: &Path,
    name: &str,
    boot: &Path,
    slots: &[&str],
) -> (std::path::PathBuf, std::path::PathBuf) {
    let inventory = site_in(dir, name, Some(&dir.join("export")), "");
    let store = dir.join("images");
    image_from(&store, "1", false, boot);
    let out = Command::new(env!("CARGO_BIN_EXE_pirack"))
        .arg("root")
        .arg("--inventory")
        .arg(&inventory)
        .arg("--store")
        .arg(&store)
        .arg("--db")
        .arg(format!("sqlite://{}/no-controller.db", dir.display()))
        .args(["--no-export", "build", "--image", "tiny-1"])
        .args(slots)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pirack root build: {}",
        text(&out.stderr)
    );
    (inventory, store)
}

/// A fresh PostgreSQL database owned by `pirack`, dropped with it.
pub struct PgDb {
    name: String,
    pub url: String,
}

fn psql(sql: &str) {
    let ok = std::process::Command::new("su")
        .args(["postgres", "-c", &format!("psql -qc '{sql}'")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{sql}");
}

/// A database for `test` on the server PIRACK_TEST_POSTGRES names (required
/// under CI), or none with a printed reason.
pub fn postgres(test: &str) -> Option<PgDb> {
    let Ok(admin) = std::env::var("PIRACK_TEST_POSTGRES") else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{test}: CI must test PostgreSQL"
        );
        eprintln!("skipped {test}: PIRACK_TEST_POSTGRES is not set");
        return None;
    };
    let name = format!("pirack_{test}_{}", std::process::id());
    psql(&format!("DROP DATABASE IF EXISTS {name}"));
    psql(&format!("CREATE DATABASE {name} OWNER pirack"));
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    Some(PgDb { name, url })
}

impl Drop for PgDb {
    fn drop(&mut self) {
        psql(&format!("DROP DATABASE {} WITH (FORCE)", self.name));
    }
}
