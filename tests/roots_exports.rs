//! The CI image (images/ci-tiny/recipe: busybox, the real Pi firmware and Debian's
//! arm64 kernel) imported, roots built for all 8 example slots and served by a real
//! NFS-Ganesha: each root readable, with its content and ownership, from its own
//! Pi's address only, checked with libnfs's client from each Pi's namespace (needs
//! root, network to Debian, nfs-ganesha(-vfs), rpcbind, libnfs-utils).

mod common;

use common::{Netns, pirack, text};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

fn ready(test: &str) -> bool {
    common::can_use_netns(test)
        && common::have_all(
            test,
            &[
                "ganesha.nfsd",
                "rpcbind",
                "nfs-ls",
                "nfs-cat",
                "ssh-keygen",
                "apt-get",
            ],
        )
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
fn the_ci_image_serves_every_example_slot_to_its_own_pi_only() {
    if !ready("the_ci_image_serves_every_example_slot_to_its_own_pi_only") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let d = dir.path();
    let ci = d.join("ci-tiny");
    let built = Command::new("images/ci-tiny/recipe")
        .arg(&ci)
        .output()
        .unwrap();
    assert!(built.status.success(), "recipe: {}", text(&built.stderr));

    // The controller with every slot's interface, and one namespace per Pi.
    let site = common::site("hardware/example-8.yaml");
    let ledger =
        pirack_core::plan::Ledger::load(std::path::Path::new("hardware/example-8.ledger.yaml"))
            .unwrap();
    let (plan, _) = pirack_core::plan::plan(&site, &ledger).unwrap();
    let ctl = common::netns("nfsc");
    let pis: Vec<Netns> = plan
        .slots
        .iter()
        .map(|s| common::netns(&format!("nfs{}", s.key.port)))
        .collect();
    for (s, pi) in plan.slots.iter().zip(&pis) {
        let mac = &s.board.as_ref().unwrap().mac;
        let ok = Command::new("ip")
            .args([
                "link",
                "add",
                &s.interface,
                "netns",
                ctl.name(),
                "type",
                "veth",
            ])
            .args(["peer", "name", "eth0", "netns", pi.name(), "address", mac])
            .status()
            .unwrap();
        assert!(ok.success());
        ctl.ip(&[
            "addr",
            "add",
            &format!("{}/30", s.fileserver_ip),
            "dev",
            &s.interface,
        ])
        .unwrap();
        ctl.ip(&["link", "set", &s.interface, "up"]).unwrap();
        pi.ip(&["addr", "add", &format!("{}/30", s.pi_ip), "dev", "eth0"])
            .unwrap();
        pi.ip(&["link", "set", "eth0", "up"]).unwrap();
    }

    // The example site, its roots and exports under the temporary directory, ganesha.
    let export = d.join("export");
    let inventory = common::example_site_in(d, Some(&export), &common::nfs::inventory_section(d));
    let inventory = inventory.to_str().unwrap();
    let store = d.join("images");
    let store = store.to_str().unwrap();
    let root_tar = ci.join("root.tar.gz");
    let boot = ci.join("boot");
    let out = pirack(&[
        "image",
        "--store",
        store,
        "import",
        "--name",
        "ci-tiny",
        "--version",
        "1",
    ]);
    assert!(!out.status.success(), "import needs --root and --boot");
    let out = pirack(&[
        "image",
        "--store",
        store,
        "import",
        "--name",
        "ci-tiny",
        "--version",
        "1",
        "--root",
        root_tar.to_str().unwrap(),
        "--boot",
        boot.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "import: {}", text(&out.stderr));

    let _ganesha = common::nfs::Ganesha::start(&ctl, d);

    let mut args = vec![
        "root",
        "--inventory",
        inventory,
        "--store",
        store,
        "build",
        "--image",
        "ci-tiny-1",
    ];
    args.extend(plan.slots.iter().map(|s| s.position.as_str()));
    let out = pirack(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("exports: 8 root(s)"),
        "{}",
        text(&out.stdout)
    );

    let root_of = |i: usize| format!("{}/{}", export.display(), plan.slots[i].pi_ip);
    for (i, s) in plan.slots.iter().enumerate() {
        let server = s.fileserver_ip.to_string();
        // ganesha rereads its exports on SIGHUP; give it a moment the first time.
        let mut got = Err(String::new());
        for _ in 0..50 {
            got = nfs_cat(&pis[i], &server, &format!("{}/etc/hostname", root_of(i)));
            if got.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(
            got,
            Ok(format!("{}\n", s.hostname)),
            "{} reads its own root",
            s.position
        );
        let other = root_of((i + 1) % plan.slots.len());
        let refused = nfs_cat(&pis[i], &server, &format!("{other}/etc/hostname"));
        let denied = refused
            .as_ref()
            .is_err_and(|e| e.contains("ACCES") || e.contains("ermission"));
        assert!(
            denied,
            "{} must not read its neighbour's root: {refused:?}",
            s.position
        );
    }
    // Content and ownership as the image has them.
    let busybox = nfs_cat(
        &pis[0],
        "10.46.189.1",
        &format!("{}/bin/busybox", root_of(0)),
    )
    .unwrap();
    assert!(busybox.len() > 100_000, "the real busybox");
    let url = format!(
        "nfs://10.46.189.1{}/home?version=3&nfsport=2049&mountport=20048",
        root_of(0)
    );
    let listing = text(&pis[0].command("nfs-ls").arg(url).output().unwrap().stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.contains(" 1000 ") && l.ends_with("pi")),
        "ownership kept: {listing}"
    );
}
