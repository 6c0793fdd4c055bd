//! Roots served by a real NFS-Ganesha: each slot's root readable, with its content
//! and ownership, from its own Pi's address only, checked with libnfs's client
//! from each Pi's namespace (needs root, nfs-ganesha(-vfs), rpcbind, libnfs-utils).

mod common;

use common::{Child, Netns, pirack, text};
use pirack::roots::image::{self, Import};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

fn ready(test: &str) -> bool {
    common::can_use_netns(test)
        && ["ganesha.nfsd", "rpcbind", "nfs-ls", "nfs-cat", "ssh-keygen"]
            .iter()
            .all(|p| common::have(test, p))
}

/// nfs-cat of `path` on `server` from namespace `ns`: the bytes, or the error.
fn nfs_cat(ns: &Netns, server: &str, path: &str) -> Result<String, String> {
    let url = format!("nfs://{server}{path}?version=3&nfsport=2049&mountport=20048");
    let out = ns.command("nfs-cat").arg(&url).output().unwrap();
    match out.status.success() {
        true => Ok(text(&out.stdout)),
        false => Err(text(&out.stderr) + &text(&out.stdout)),
    }
}

#[test]
fn each_root_is_served_to_its_own_pi_only() {
    if !ready("each_root_is_served_to_its_own_pi_only") {
        return;
    }
    // The controller with slots A-01 and A-02's interfaces, and their two Pis.
    let ctl = Netns::new("nfsc");
    let pis = [Netns::new("nfs1"), Netns::new("nfs2")];
    for (i, (pi, (ctl_if, fs_ip, pi_ip))) in pis
        .iter()
        .zip([
            ("eth0.10", "10.46.189.1/30", "10.46.189.2/30"),
            ("eth0.11", "10.46.189.5/30", "10.46.189.6/30"),
        ])
        .enumerate()
    {
        let mac = format!("b8:27:eb:00:00:0{i}");
        let ok = Command::new("ip")
            .args([
                "link", "add", ctl_if, "netns", &ctl.0, "type", "veth", "peer", "name", "eth0",
                "netns", &pi.0, "address", &mac,
            ])
            .status()
            .unwrap();
        assert!(ok.success());
        ctl.ip(&["addr", "add", fs_ip, "dev", ctl_if]);
        ctl.ip(&["link", "set", ctl_if, "up"]);
        pi.ip(&["addr", "add", pi_ip, "dev", "eth0"]);
        pi.ip(&["link", "set", "eth0", "up"]);
    }

    // A site whose exports go to ganesha, with an image to build roots from.
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let d = dir.path();
    let export = d.join("export");
    let exports_file = d.join("pirack-exports.conf");
    let pid_file = d.join("ganesha.pid");
    fs::create_dir_all(d.join("hardware")).unwrap();
    fs::create_dir_all(d.join("switch-profiles")).unwrap();
    fs::copy(
        "switch-profiles/generic.yaml",
        d.join("switch-profiles/generic.yaml"),
    )
    .unwrap();
    fs::copy(
        "hardware/example-8.ledger.yaml",
        d.join("hardware/example-8.ledger.yaml"),
    )
    .unwrap();
    let yaml = fs::read_to_string("hardware/example-8.yaml")
        .unwrap()
        .replace(
            "export_root: /export",
            &format!("export_root: {}", export.display()),
        )
        + &format!(
            "\nexports:\n  backend: ganesha\n  file: {}\n  ganesha_pid_file: {}\n",
            exports_file.display(),
            pid_file.display()
        );
    let inventory = d.join("hardware/example-8.yaml");
    fs::write(&inventory, yaml).unwrap();
    let tree = d.join("tree");
    fs::create_dir_all(tree.join("etc/ssh")).unwrap();
    fs::create_dir_all(tree.join("home/pi")).unwrap();
    fs::write(tree.join("home/pi/notes"), "pi's\n").unwrap();
    nix::unistd::chown(
        &tree.join("home/pi/notes"),
        Some(1000.into()),
        Some(1000.into()),
    )
    .unwrap();
    let boot = common::boot_files(64 * 1024);
    let store = d.join("images");
    let what = Import {
        name: "tiny".into(),
        version: "1".into(),
        root: tree,
        boot: boot.path().into(),
        cmdline: String::new(),
    };
    image::import(&store, &what, &|_, _| {}).unwrap();

    // ganesha, with pirack's exports included (empty until the first root).
    fs::write(&exports_file, "# no roots yet\n").unwrap();
    let conf = d.join("ganesha.conf");
    fs::write(
        &conf,
        format!(
            "NFS_CORE_PARAM {{ Protocols = 3, 4; NFS_Port = 2049; MNT_Port = 20048; Enable_NLM = false; Enable_RQUOTA = false; }}\n\
             NFSV4 {{ Graceless = true; }}\nMDCACHE {{ Dir_Chunk = 0; }}\n%include \"{}\"\n",
            exports_file.display()
        ),
    )
    .unwrap();
    let _rpcbind = Child(
        ctl.command("rpcbind")
            .args(["-w", "-f"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let _ganesha = Child(
        ctl.command("ganesha.nfsd")
            .args(["-F", "-f"])
            .arg(&conf)
            .arg("-L")
            .arg(d.join("ganesha.log"))
            .arg("-p")
            .arg(&pid_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..50 {
        if fs::read_to_string(&pid_file).is_ok_and(|p| !p.trim().is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = pirack(&[
        "root",
        "--inventory",
        inventory.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "build",
        "--image",
        "tiny-1",
        "A-01",
        "A-02",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("exports: 2 root(s)"),
        "{}",
        text(&out.stdout)
    );
    let a01 = format!("{}/10.46.189.2", export.display());
    let a02 = format!("{}/10.46.189.6", export.display());

    // ganesha rereads its exports on SIGHUP; give it a moment.
    let mut got = Err(String::new());
    for _ in 0..50 {
        got = nfs_cat(&pis[0], "10.46.189.1", &format!("{a01}/etc/hostname"));
        if got.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(got.as_deref(), Ok("example-a-01\n"), "A-01 reads its root");
    assert_eq!(
        nfs_cat(&pis[1], "10.46.189.5", &format!("{a02}/etc/hostname")).as_deref(),
        Ok("example-a-02\n")
    );
    assert_eq!(
        nfs_cat(&pis[0], "10.46.189.1", &format!("{a01}/home/pi/notes")).as_deref(),
        Ok("pi's\n")
    );
    let listing = pis[0]
        .command("nfs-ls")
        .arg(format!(
            "nfs://10.46.189.1{a01}/home/pi?version=3&nfsport=2049&mountport=20048"
        ))
        .output()
        .unwrap();
    let listing = text(&listing.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.contains(" 1000 ") && l.ends_with("notes")),
        "ownership kept: {listing}"
    );

    // Each Pi is refused the other's root, by either server address.
    for (pi, server, root) in [
        (&pis[1], "10.46.189.5", &a01),
        (&pis[0], "10.46.189.1", &a02),
    ] {
        let refused = nfs_cat(pi, server, &format!("{root}/etc/hostname"));
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("ACCES") || e.contains("ermission")),
            "{root}: {refused:?}"
        );
    }
}
