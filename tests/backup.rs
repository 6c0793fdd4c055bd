//! Backups with real restic to two targets: a path on this machine and an
//! SFTP server (OpenSSH's sshd in a namespace, its host key pinned). A root
//! on btrfs (a subvolume, so backed up from a read-only snapshot) is backed
//! up, changed, backed up again, then restored from the first snapshot:
//! contents, owners, modes, hard links and symbolic links as they were. A
//! key that does not open its repository is a clear error; with the SFTP
//! server unreachable the other target still gets its backup.

mod common;

use common::{Child, LoopFs, can_use_netns, have, text};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Output};

/// What a tree is: each path's kind, owner, mode and content (or target),
/// hard links as links to the first path of their inode.
fn manifest(root: &Path) -> BTreeMap<String, String> {
    fn walk(
        dir: &Path,
        root: &Path,
        inodes: &mut BTreeMap<u64, String>,
        out: &mut BTreeMap<String, String>,
    ) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let head = format!("{:o} {}:{}", m.mode(), m.uid(), m.gid());
            let what = if m.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                walk(&p, root, inodes, out);
                "dir".into()
            } else if let Some(first) = inodes.get(&m.ino()).filter(|_| m.nlink() > 1) {
                format!("hard link to {first}")
            } else {
                inodes.insert(m.ino(), rel.clone());
                let bytes = std::fs::read(&p).unwrap();
                let sum = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
                });
                format!("file {} bytes {sum:016x}", bytes.len())
            };
            out.insert(rel, format!("{head} {what}"));
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut BTreeMap::new(), &mut out);
    out
}

/// `pirack` with the repository's switch profiles and no controller's store
/// (the slots' owners are then the inventory's).
fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pirack"));
    c.args(args)
        .env(
            "PIRACK_PROFILES",
            std::fs::canonicalize("switch-profiles").unwrap(),
        )
        .env("PIRACK_DB", "sqlite:///nonexistent/pirack-test.db");
    c
}

fn pirack(args: &[&str]) -> Output {
    command(args).output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", text(&out.stderr));
}

/// A Pi's root with every kind of thing a restore must bring back.
fn fill(root: &Path) {
    for d in ["etc", "home/pi/.ssh", "usr/bin", "var/empty"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("etc/hostname"), "a-01\n").unwrap();
    std::fs::write(
        root.join("home/pi/.ssh/authorized_keys"),
        "ssh-ed25519 AAAA pi\n",
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("home/pi/.ssh"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("home/pi/.ssh/authorized_keys"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    sh(Command::new("chown")
        .args(["-R", "1000:1000"])
        .arg(root.join("home/pi")));
    std::fs::write(root.join("usr/bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(
        root.join("usr/bin/tool"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    std::fs::hard_link(root.join("usr/bin/tool"), root.join("usr/bin/tool-again")).unwrap();
    symlink("tool", root.join("usr/bin/t")).unwrap();
    symlink("/etc/hostname", root.join("etc/name")).unwrap();
    let big: Vec<u8> = (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(root.join("var/data.bin"), big).unwrap();
}

/// The example site with its roots on `export` and `targets` (YAML list
/// items) as its backup targets, keys in `d/keys`; its path and A-01's root,
/// made a btrfs subvolume.
fn site_with(d: &Path, export: &Path, targets: &str) -> (String, std::path::PathBuf) {
    let yaml = std::fs::read_to_string("hardware/example-8.yaml")
        .unwrap()
        .replace(
            "export_root: /export",
            &format!("export_root: {}", export.display()),
        )
        + &format!(
            "\nbackup:\n  keys: {}\n  targets:\n{targets}",
            d.join("keys").display()
        );
    let inventory = d.join("site.yaml");
    std::fs::write(&inventory, yaml).unwrap();
    let inv = inventory.to_str().unwrap().to_string();
    let site = common::site(&inv);
    let (plan, _) = pirack_core::plan::plan(&site, &Default::default()).unwrap();
    let root = Path::new(&plan.slots[0].root).to_path_buf();
    sh(Command::new("btrfs")
        .args(["-q", "subvolume", "create"])
        .arg(&root));
    (inv, root)
}

#[test]
fn a_root_backed_up_to_two_targets_restores_as_it_was() {
    let test = "backup";
    if !can_use_netns(test)
        || !have(test, "restic")
        || !have(test, "/usr/sbin/sshd")
        || !have(test, "ssh-keygen")
        || !have(test, "mkfs.btrfs")
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let fs = LoopFs::new(&["mkfs.btrfs", "-q", "-f"]);
    let export = fs.path();

    // The SFTP server: sshd in a namespace at 10.77.0.2, reached over a veth.
    let ns = common::netns("bk");
    let host_if = format!("bk{}", std::process::id() % 100_000);
    sh(Command::new("ip").args([
        "link",
        "add",
        &host_if,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ns.name(),
    ]));
    sh(Command::new("ip").args(["addr", "add", "10.77.0.1/30", "dev", &host_if]));
    sh(Command::new("ip").args(["link", "set", &host_if, "up"]));
    ns.ip(&["addr", "add", "10.77.0.2/30", "dev", "eth0"])
        .unwrap();
    ns.ip(&["link", "set", "eth0", "up"]).unwrap();
    ns.ip(&["link", "set", "lo", "up"]).unwrap();
    let ssh = d.join("ssh");
    let listen = "10.77.0.2:22".parse().unwrap();
    common::sshd::configure(&ssh, listen);
    let store = d.join("offsite");
    std::fs::create_dir_all(&store).unwrap();
    let sshd = common::sshd::start(ns.command("/usr/sbin/sshd"), &ssh, listen);

    let targets = format!(
        "    - {{ name: local, path: {local} }}\n    \
         - {{ name: offsite, sftp: {{ host: 10.77.0.2, user: root, path: {store}, identity: {{ file: {id} }}, known_hosts: {kh} }} }}\n",
        local = d.join("local").display(),
        store = store.display(),
        id = ssh.join("id").display(),
        kh = ssh.join("known_hosts").display(),
    );
    let (inv, root) = site_with(d, &export, &targets);
    let inv = inv.as_str();
    fill(&root);
    let first = manifest(&root);

    let out = ok(pirack(&["backup", "--inventory", inv, "run", "A-01"]));
    for target in ["local", "offsite"] {
        assert!(
            out.contains(&format!("A-01 to {target}: snapshot"))
                && out.contains("read-only btrfs snapshot"),
            "{out}"
        );
    }
    for key in ["local/acme.key", "offsite/acme.key"] {
        let m = std::fs::metadata(d.join("keys").join(key)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600, "{key}");
    }
    assert!(
        store.join("acme/config").exists(),
        "acme's repository on the SFTP server"
    );

    // Changed, and backed up again: only the change is new.
    std::fs::write(root.join("etc/hostname"), "changed\n").unwrap();
    std::fs::remove_file(root.join("usr/bin/t")).unwrap();
    std::fs::write(root.join("home/pi/new"), "new\n").unwrap();
    let out = ok(pirack(&["backup", "--inventory", inv, "run", "A-01"]));
    assert!(out.contains("1 new, 1 changed"), "{out}");
    let listed: serde_json::Value = serde_json::from_str(&ok(pirack(&[
        "backup",
        "--inventory",
        inv,
        "list",
        "A-01",
        "--json",
    ])))
    .unwrap();
    let at = |t: &str| -> Vec<String> {
        listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["target"] == t)
            .map(|s| s["short_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!((at("local").len(), at("offsite").len()), (2, 2), "{listed}");

    // Restored from the first snapshot at the SFTP server: as it was.
    let refused = pirack(&["backup", "--inventory", inv, "restore", "A-01"]);
    assert!(!refused.status.success() && text(&refused.stderr).contains("--powered-off"));
    let first_id = &at("offsite")[0];
    let out = ok(pirack(&[
        "backup",
        "--inventory",
        inv,
        "restore",
        "A-01",
        "--snapshot",
        first_id,
        "--target",
        "offsite",
        "--powered-off",
        "--no-export",
    ]));
    assert!(
        out.contains(&format!("now from snapshot {first_id} of ")) && out.contains(" at offsite"),
        "{out}"
    );
    assert_eq!(manifest(&root), first);

    // The SFTP server gone: the local target still gets its backup.
    drop(sshd);
    let out = pirack(&["backup", "--inventory", inv, "run", "A-01"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stdout).contains("A-01 to local: snapshot"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("A-01 to offsite: target offsite"),
        "{}",
        text(&out.stderr)
    );

    // A key that does not open its repository.
    let key = d.join("keys/local/acme.key");
    std::fs::write(&key, "not the key").unwrap();
    let out = pirack(&[
        "backup",
        "--inventory",
        inv,
        "run",
        "A-01",
        "--target",
        "local",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not open this repository"),
        "{}",
        text(&out.stderr)
    );
    let _ = Command::new("ip").args(["link", "del", &host_if]).status();
}

/// The restic processes this process has taken in (and no other child, so
/// the other test's children are left to their own waits).
fn orphaned_restics() -> Vec<i32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let (comm, rest) = stat.split_once(") ")?;
            let ppid = rest.split(' ').nth(1)?;
            (comm.ends_with("(restic") && ppid == me)
                .then(|| e.file_name().to_str()?.parse().ok())?
        })
        .collect()
}

#[test]
fn a_backup_killed_midway_leaves_the_repository_sound_and_the_next_succeeds() {
    let test = "backup_killed";
    if !common::is_root(test) || !have(test, "restic") || !have(test, "mkfs.btrfs") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let fs = LoopFs::new(&["mkfs.btrfs", "-q", "-f"]);
    let targets = format!(
        "    - {{ name: local, path: {} }}\n",
        d.join("local").display()
    );
    let (inv, root) = site_with(d, &fs.path(), &targets);
    let inv = inv.as_str();
    // 192 MiB that do not compress: long enough to be killed part-way.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..12 {
        let chunk: Vec<u8> = (0..16 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(root.join(format!("blob{i}")), chunk).unwrap();
    }

    // As init does on a real machine, this process takes in the orphans of
    // the pirack it kills and reaps them: a dead restic must not linger as a
    // zombie, which restic would take for the live holder of its lock.
    // SAFETY: prctl with an integer argument changes only this process.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);
    let mut run = command(&["backup", "--inventory", inv, "run", "A-01"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let data = d.join("local/acme/data");
    let started = std::time::Instant::now();
    let packs = || {
        std::fs::read_dir(&data)
            .map(|dirs| {
                dirs.flatten()
                    .filter_map(|sub| std::fs::read_dir(sub.path()).ok())
                    .map(|f| f.count())
                    .sum::<usize>()
            })
            .unwrap_or(0)
    };
    while packs() < 3 {
        assert!(
            run.try_wait().unwrap().is_none(),
            "the backup ended before it could be killed"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    run.kill().unwrap();
    run.wait().unwrap();
    // restic goes with it (it dies with pirack), leaving part of its data.
    let reaped = std::time::Instant::now();
    while reaped.elapsed() < std::time::Duration::from_secs(2) {
        for pid in orphaned_restics() {
            // SAFETY: waitpid on one child of ours, not blocking.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let out = ok(pirack(&["backup", "--inventory", inv, "check", "A-01"]));
    assert!(out.contains("A-01 at local: repository checked"), "{out}");
    let listed = ok(pirack(&[
        "backup",
        "--inventory",
        inv,
        "list",
        "A-01",
        "--json",
    ]));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        0,
        "no snapshot from the killed run"
    );
    let out = ok(pirack(&["backup", "--inventory", inv, "run", "A-01"]));
    assert!(out.contains("A-01 to local: snapshot"), "{out}");
    let out = ok(pirack(&["backup", "--inventory", inv, "check", "A-01"]));
    assert!(out.contains("repository checked"), "{out}");
    let out = ok(pirack(&["backup", "--inventory", inv, "forget", "A-01"]));
    assert!(out.contains("retention applied"), "{out}");
}

#[test]
fn a_rest_target_with_a_password_takes_backups_and_restores() {
    let test = "backup_rest";
    if !common::is_root(test)
        || !have(test, "restic")
        || !have(test, "rclone")
        || !have(test, "mkfs.btrfs")
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let fs = LoopFs::new(&["mkfs.btrfs", "-q", "-f"]);
    // rclone's restic REST server on loopback, behind a user and password.
    let port = pirack_lab::testbed::free_tcp_port().unwrap();
    let served = d.join("rest");
    std::fs::create_dir_all(&served).unwrap();
    let rclone = Child(
        Command::new("rclone")
            .args(["serve", "restic", "--addr", &format!("127.0.0.1:{port}")])
            .args(["--user", "pirack", "--pass", "s3cret-pw"])
            .arg(&served)
            .stderr(std::fs::File::create(d.join("rclone.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let pw = d.join("rest.pw");
    std::fs::write(&pw, "s3cret-pw\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let targets = format!(
        "    - {{ name: rest, rest: {{ url: 'http://127.0.0.1:{port}/', user: pirack, password: {{ file: {} }} }} }}\n",
        pw.display()
    );
    let (inv, root) = site_with(d, &fs.path(), &targets);
    let inv = inv.as_str();
    fill(&root);
    let first = manifest(&root);
    let out = ok(pirack(&["backup", "--inventory", inv, "run", "A-01"]));
    assert!(out.contains("A-01 to rest: snapshot"), "{out}");
    assert!(
        served.join("acme/config").exists(),
        "acme's repository behind REST"
    );
    let shown = ok(pirack(&["backup", "--inventory", inv, "show", "A-01"]));
    assert!(shown.contains("A-01 at rest: 1 snapshot(s)"), "{shown}");
    assert!(
        !shown.contains("s3cret"),
        "the password is never shown: {shown}"
    );

    std::fs::write(root.join("etc/hostname"), "changed\n").unwrap();
    let out = ok(pirack(&[
        "backup",
        "--inventory",
        inv,
        "restore",
        "A-01",
        "--powered-off",
        "--no-export",
    ]));
    assert!(out.contains(" at rest "), "{out}");
    assert_eq!(manifest(&root), first);

    // The server gone: a clear failure naming the target, the password not in it.
    drop(rclone);
    let out = pirack(&["backup", "--inventory", inv, "run", "A-01"]);
    assert!(!out.status.success());
    let said = text(&out.stderr);
    assert!(
        said.contains("A-01 to rest: target rest") && said.contains("connection refused"),
        "{said}"
    );
    assert!(!said.contains("s3cret"), "{said}");
}
