//! The Debian package, as a fileserver gets it: `packaging/build-deb` makes it
//! (`.ci/run` from the tests' debug binary), dpkg installs it, systemd's own
//! analyser checks its unit, and the service runs as the unit runs it (the
//! `pirack` user, its capabilities only, the file system read-only but its own
//! paths) doing real work: an image imported by root becomes a Pi's root built,
//! exported to NFS-Ganesha and deleted by the service, owners, modes, devices and
//! file capabilities kept. Every system call it made is inside the unit's
//! filter. Then the package is removed and purged.

mod common;

use common::nsctl::Api;
use common::unit::Unit;
use common::{can_use_netns, have_all, text, until};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const STATE: &str = "/var/lib/pirack";
const GANESHA_DIR: &str = "/etc/ganesha/pirack-package-test";
const API: &str = "127.0.0.1:8080";
/// The first line of the site this test writes (and may remove).
const MARK: &str = "# written by pirack's package test\n";

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Leaves the machine as it was: the package purged, its user, state and the
/// site gone.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", "pirack"])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("dpkg").args(["-P", "pirack"]).output();
        for dir in [STATE, "/etc/pirack", GANESHA_DIR] {
            let _ = std::fs::remove_dir_all(dir);
        }
        let _ = Command::new("userdel").arg("pirack").output();
        let _ = Command::new("groupdel").arg("pirack").output();
    }
}

fn deb() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debian");
    let newest = std::fs::read_dir(&dir).ok().and_then(|entries| {
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".deb"))
            .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
            .map(|e| e.path())
    });
    newest.unwrap_or_else(|| {
        panic!(
            "no package in {}: run `bash packaging/build-deb --dev` first",
            dir.display()
        )
    })
}

/// A root with what a real one holds: a user's file, a setuid program, a device,
/// a file capability, hard and symbolic links, an SSH server's configuration.
fn image_root(root: &Path) {
    for d in ["etc/ssh", "home/pi", "usr/bin", "dev"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("etc/os-release"), "NAME=tiny\nVERSION=1\n").unwrap();
    std::fs::write(root.join("home/pi/notes"), "mine\n").unwrap();
    std::os::unix::fs::chown(root.join("home/pi/notes"), Some(1000), Some(1000)).unwrap();
    std::os::unix::fs::chown(root.join("home/pi"), Some(1000), Some(1000)).unwrap();
    std::fs::write(root.join("usr/bin/su"), "#!/bin/sh\n").unwrap();
    run(
        "chmod",
        &["4755", root.join("usr/bin/su").to_str().unwrap()],
    );
    std::fs::write(root.join("usr/bin/ping"), "#!/bin/sh\n").unwrap();
    run(
        "setcap",
        &[
            "cap_net_raw+ep",
            root.join("usr/bin/ping").to_str().unwrap(),
        ],
    );
    std::fs::hard_link(root.join("usr/bin/su"), root.join("usr/bin/su.hard")).unwrap();
    std::os::unix::fs::symlink("su", root.join("usr/bin/su.link")).unwrap();
    run(
        "mknod",
        &[
            "-m",
            "666",
            root.join("dev/null").to_str().unwrap(),
            "c",
            "1",
            "3",
        ],
    );
}

/// The system calls in `@group`, its nested groups expanded.
fn syscall_group(group: &str) -> std::collections::BTreeSet<String> {
    let listing = run("systemd-analyze", &["syscall-filter", group]);
    let mut calls = std::collections::BTreeSet::new();
    for line in listing.lines().skip(1).map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        match line.strip_prefix('@') {
            Some(_) => calls.extend(syscall_group(line)),
            None => {
                calls.insert(line.to_string());
            }
        }
    }
    calls
}

/// The system calls (and socket families) of `program` and its children in an
/// `strace -f` log, from its `execve` on.
fn calls_of(log: &str, program: &str) -> (Vec<String>, Vec<String>) {
    let mut ours = std::collections::BTreeSet::new();
    let (mut calls, mut families) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    for line in log.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        let name = match rest.strip_prefix("<... ") {
            Some(r) => r.split(' ').next().unwrap_or_default(),
            None => rest.split('(').next().unwrap_or_default(),
        };
        if !ours.contains(pid) {
            if name == "execve" && rest.contains(&format!("\"{program}\"")) && rest.ends_with("= 0")
            {
                ours.insert(pid.to_string());
            }
            continue;
        }
        if name.is_empty() || name.starts_with("---") || name.starts_with("+++") {
            continue;
        }
        calls.insert(name.to_string());
        if matches!(name, "clone" | "clone3" | "fork" | "vfork")
            && let Some(child) = rest.rsplit("= ").next()
            && child.parse::<u32>().is_ok()
        {
            ours.insert(child.to_string());
        }
        if name == "socket"
            && let Some(family) = rest
                .strip_prefix("socket(")
                .and_then(|r| r.split(',').next())
        {
            families.insert(family.to_string());
        }
    }
    (calls.into_iter().collect(), families.into_iter().collect())
}

#[test]
fn the_package_installs_serves_as_its_own_user_and_removes_cleanly() {
    let test = "package";
    if std::env::var("CI").as_deref() != Ok("true")
        && std::env::var_os("PIRACK_TEST_PACKAGE").is_none()
    {
        eprintln!(
            "skipped {test}: it installs pirack system-wide; as root, run \
             `bash packaging/build-deb --dev` and set PIRACK_TEST_PACKAGE=1"
        );
        return;
    }
    if !can_use_netns(test)
        || !have_all(
            test,
            &[
                "dpkg",
                "setpriv",
                "strace",
                "systemd-analyze",
                "setcap",
                "ganesha.nfsd",
            ],
        )
    {
        return;
    }
    let deb = deb();
    // Never over a real installation's site.
    if let Ok(site) = std::fs::read_to_string("/etc/pirack/site.yaml") {
        assert!(
            site.starts_with(MARK),
            "/etc/pirack/site.yaml is a real site: not testing the package over it"
        );
    }
    drop(Cleanup);
    let _cleanup = Cleanup;

    // Installed: its user, directories, manual page and completions.
    run("dpkg", &["-i", deb.to_str().unwrap()]);
    let passwd = run("getent", &["passwd", "pirack"]);
    assert!(
        passwd.contains(":/var/lib/pirack:") && passwd.trim_end().ends_with("nologin"),
        "{passwd}"
    );
    let id = |flag: &str| run("id", &[flag, "pirack"]).trim().parse::<u32>().unwrap();
    let (uid, gid) = (id("-u"), id("-g"));
    let owner = |p: &str| {
        let m = std::fs::metadata(p).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    assert_eq!(owner(STATE), (uid, gid, 0o750));
    assert_eq!(owner("/etc/pirack"), (0, gid, 0o750));
    assert_eq!(owner("/etc/pirack/pirack.env"), (0, gid, 0o640));
    let files = run("dpkg", &["-L", "pirack"]);
    let man = run("zcat", &["/usr/share/man/man1/pirack.1.gz"]);
    assert!(
        man.contains(".TH pirack 1") && man.contains("serve"),
        "{man:.200}"
    );
    assert!(files.contains("/usr/share/man/man1/pirack-backup-restore.1.gz"));
    let bash = std::fs::read_to_string("/usr/share/bash-completion/completions/pirack").unwrap();
    assert!(bash.contains("complete -F _pirack"), "{bash:.200}");
    assert!(files.contains("/usr/share/pirack/switch-profiles/generic.yaml"));

    // The unit, as systemd reads it: valid, and its exposure.
    let unit_file = files
        .lines()
        .find(|l| l.ends_with("/pirack.service"))
        .expect("a unit")
        .to_string();
    let verify = Command::new("systemd-analyze")
        .args(["verify", &unit_file])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=true", &unit_file])
        .output()
        .unwrap();
    let said = text(&security.stdout);
    let exposure: f64 = said
        .lines()
        .find_map(|l| l.split("exposure level for pirack.service: ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}{}", text(&security.stderr)));
    eprintln!("systemd-analyze security: exposure {exposure} of 10");
    assert!(exposure <= 3.5, "{said}");
    let unit = Unit::load(Path::new(&unit_file));

    // The site: a shelf in a namespace, NFS-Ganesha there serving the exports.
    let ns = common::netns("pkg");
    ns.ip(&["link", "add", "pk0", "type", "veth", "peer", "name", "pk1"])
        .unwrap();
    for link in ["lo", "pk0", "pk1"] {
        ns.ip(&["link", "set", link, "up"]).unwrap();
    }
    ns.ip(&["addr", "add", "10.46.189.1/30", "dev", "pk0"])
        .unwrap();
    std::fs::create_dir_all(GANESHA_DIR).unwrap();
    let _ganesha = common::nfs::Ganesha::start(&ns, Path::new(GANESHA_DIR));
    let site = MARK.to_string()
        + &std::fs::read_to_string("hardware/example-8.yaml")
            .unwrap()
            .replace(
                "export_root: /export",
                "export_root: /var/lib/pirack/export",
            )
        + &common::nfs::inventory_section(Path::new(GANESHA_DIR));
    std::fs::write("/etc/pirack/site.yaml", site).unwrap();
    std::fs::create_dir_all("/var/lib/pirack/boot").unwrap();
    let env = std::fs::read_to_string("/etc/pirack/pirack.env").unwrap();
    std::fs::write(
        "/etc/pirack/pirack.env",
        env + &format!("PIRACK_SW_A_COMMUNITY={}\n", common::snmp::COMMUNITY),
    )
    .unwrap();

    // Staff import an image as root; a token made as the service's user.
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    image_root(&root);
    let boot = common::boot_files(64 * 1024);
    run(
        "/usr/bin/pirack",
        &[
            "image",
            "import",
            "--name",
            "tiny",
            "--version",
            "1",
            "--root",
            root.to_str().unwrap(),
            "--boot",
            boot.path().to_str().unwrap(),
        ],
    );
    let admin = run(
        "setpriv",
        &[
            "--reuid",
            "pirack",
            "--regid",
            "pirack",
            "--init-groups",
            "/usr/bin/pirack",
            "token",
            "create",
            "--name",
            "ops",
            "--admin",
        ],
    )
    .trim()
    .to_string();

    // The unit's sandbox: its state writable, the rest of the system not,
    // /etc/shadow out of sight even with DAC_OVERRIDE.
    let probe = |script: &str| {
        unit.sandboxed(&ns, None, &["sh", "-c", script])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(probe(
        "touch /var/lib/pirack/.probe && rm /var/lib/pirack/.probe"
    ));
    for denied in [
        "touch /etc/pirack/.probe",
        "touch /usr/.probe",
        "grep -q root /etc/shadow",
        "ls -A /root | grep -q .",
    ] {
        assert!(!probe(denied), "the service may: {denied}");
    }

    // The service as the unit starts it, traced.
    let trace = Path::new(STATE).join(".package-test.strace");
    let log = work.path().join("serve.log");
    let mut serve = common::Child(
        unit.command(&ns, Some(&trace))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let serve_log = || std::fs::read_to_string(&log).unwrap_or_default();
    until("/healthz", Duration::from_secs(60), || {
        let out = ns
            .command("curl")
            .args(["-sf", &format!("http://{API}/healthz")])
            .output()
            .unwrap();
        if let Ok(Some(status)) = serve.0.try_wait() {
            panic!("pirack serve exited: {status}\n{}", serve_log());
        }
        out.status.success().then_some(())
    });
    let pid = run("pgrep", &["-u", "pirack", "-x", "pirack"])
        .trim()
        .to_string();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_string()
    };
    assert!(
        field("Uid:")
            .split_whitespace()
            .all(|u| u == uid.to_string()),
        "{status}"
    );
    assert_eq!(field("NoNewPrivs:"), "1");
    let caps = |hex: String| run("capsh", &[&format!("--decode={hex}")]);
    let effective = caps(field("CapEff:"));
    for cap in unit.words("AmbientCapabilities") {
        assert!(effective.contains(&cap.to_lowercase()), "{effective}");
    }
    assert!(!effective.contains("cap_sys_admin"), "{effective}");
    assert_eq!(caps(field("CapBnd:")), effective);
    let sockets = text(&ns.command("ss").args(["-Hulnp"]).output().unwrap().stdout);
    for port in [":67 ", ":69 "] {
        assert!(
            sockets
                .lines()
                .any(|l| l.contains(port) && l.contains("\"pirack\"")),
            "{port}: {sockets}"
        );
    }

    // Real work: a customer's Pi provisioned, its root built and exported.
    let api = Api { ns: &ns, addr: API };
    let op = api.call(
        &admin,
        "POST",
        "/v1/slots",
        Some(r#"{"image":"tiny-1","owner":"acme","slot":"A-01"}"#),
    );
    let done = api.wait(&admin, &op);
    assert_eq!(done["status"], "succeeded", "{done}\n{}", serve_log());
    let slot = api.call(&admin, "GET", "/v1/slots/A-01", None);
    let pi = slot["storage_ip"]
        .as_str()
        .unwrap_or_else(|| panic!("{slot}"));
    let built = Path::new("/var/lib/pirack/export").join(pi);
    let meta = |rel: &str| std::fs::symlink_metadata(built.join(rel)).unwrap();
    assert_eq!(
        (meta(".").uid(), meta(".").gid(), meta(".").mode() & 0o7777),
        (0, 0, 0o755)
    );
    let notes = meta("home/pi/notes");
    assert_eq!((notes.uid(), notes.gid()), (1000, 1000));
    assert_eq!(meta("usr/bin/su").mode() & 0o7777, 0o4755);
    assert_eq!(meta("usr/bin/su").ino(), meta("usr/bin/su.hard").ino());
    assert_eq!(
        std::fs::read_link(built.join("usr/bin/su.link")).unwrap(),
        Path::new("su")
    );
    let dev = meta("dev/null");
    assert!(dev.file_type().is_char_device() && dev.rdev() == libc::makedev(1, 3));
    let getcap = run("getcap", &[built.join("usr/bin/ping").to_str().unwrap()]);
    assert!(getcap.contains("cap_net_raw"), "{getcap}");
    for written in [
        "etc/hostname",
        "etc/machine-id",
        "root/.ssh",
        "root/.ssh/authorized_keys",
        "etc/ssh/ssh_host_ed25519_key",
    ] {
        assert_eq!(
            (meta(written).uid(), meta(written).gid()),
            (0, 0),
            "{written}"
        );
    }
    let exports =
        std::fs::read_to_string(Path::new(GANESHA_DIR).join("pirack-exports.conf")).unwrap();
    assert!(exports.contains(built.to_str().unwrap()), "{exports}");

    // And taken away again.
    let op = api.call(&admin, "DELETE", "/v1/slots/A-01", None);
    let done = api.wait(&admin, &op);
    assert_eq!(done["status"], "succeeded", "{done}\n{}", serve_log());
    assert!(!built.exists(), "the root is gone");

    // Stopped as systemd stops it: SIGTERM, then gone well within its timeout.
    run("kill", &["-TERM", &pid]);
    let stopped = until("pirack to stop", Duration::from_secs(30), || {
        serve.0.try_wait().unwrap()
    });
    assert!(stopped.success(), "{stopped}\n{}", serve_log());

    // Inside the unit's system call filter and address families.
    let (calls, families) = calls_of(&std::fs::read_to_string(&trace).unwrap(), "/usr/bin/pirack");
    std::fs::remove_file(&trace).unwrap();
    let filter = unit.one("SystemCallFilter").expect("SystemCallFilter=");
    let allowed = syscall_group(filter);
    let outside: Vec<&String> = calls.iter().filter(|c| !allowed.contains(*c)).collect();
    assert!(
        outside.is_empty(),
        "system calls outside {filter}: {outside:?}"
    );
    let families_allowed = unit.words("RestrictAddressFamilies");
    assert!(
        families.iter().all(|f| families_allowed.contains(f)),
        "{families:?} beyond {families_allowed:?}"
    );
    eprintln!(
        "{} distinct system calls, all in {filter}; socket families {families:?}",
        calls.len()
    );

    // Removed: the program and unit gone, the configuration kept until purged,
    // the site's own files and the state (roots, store, keys) kept after.
    run("dpkg", &["-r", "pirack"]);
    assert!(!Path::new("/usr/bin/pirack").exists() && !Path::new(&unit_file).exists());
    assert!(Path::new("/etc/pirack/pirack.env").exists());
    run("dpkg", &["-P", "pirack"]);
    assert!(!Path::new("/etc/pirack/pirack.env").exists());
    assert!(Path::new("/etc/pirack/site.yaml").exists() && Path::new(STATE).is_dir());
    let listed = Command::new("dpkg")
        .args(["-s", "pirack"])
        .output()
        .unwrap();
    assert!(!listed.status.success(), "{}", text(&listed.stdout));
}
