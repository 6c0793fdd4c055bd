//! Golden tests: the shipped inventories render byte for byte to the trees under
//! tests/golden (regenerate with PIRACK_UPDATE_GOLDEN=1 and review the diff).

mod common;

use pirack_controller::output::{diff_tree, write_tree};
use pirack_core::plan::{self, Ledger, render};
use std::path::Path;

fn rendered(inventory: &str) -> render::Tree {
    let site = common::site(inventory);
    let ledger = Ledger::load(&Ledger::path_for(Path::new(inventory))).unwrap();
    let (plan, after) = plan::plan(&site, &ledger).unwrap();
    assert_eq!(
        after, ledger,
        "{inventory}: the committed ledger is complete"
    );
    render::render(&site, &plan, &common::profiles())
}

fn golden(tree: &render::Tree, dir: &str) {
    let dir = Path::new(dir);
    if std::env::var_os("PIRACK_UPDATE_GOLDEN").is_some() {
        write_tree(dir, tree).unwrap();
    }
    let diff = diff_tree(dir, tree).unwrap();
    assert!(
        diff.is_empty(),
        "{} differs from the render:\n{diff}",
        dir.display()
    );
}

#[test]
fn example_8_matches_golden_and_the_original_cluster() {
    let tree = rendered("hardware/example-8.yaml");
    golden(&tree, "tests/golden/example-8");

    // Every storage interface filters reverse paths strictly, however it is made.
    let sysctl = &tree["fileserver/sysctl.d/90-pirack-rp-filter.conf"];
    let ifupdown = &tree["fileserver/ifupdown/pirack"];
    for vlan in 10..=17 {
        let key = format!("net.ipv4.conf.eth0/{vlan}.rp_filter");
        assert!(sysctl.contains(&format!("{key} = 1\n")), "{sysctl}");
        assert!(
            ifupdown.contains(&format!("post-up sysctl -qw {key}=1\n")),
            "{ifupdown}"
        );
    }

    let cmdline = &tree["slots/A-01/boot/cmdline.txt"];
    assert_eq!(
        cmdline,
        "dwc_otg.lpm_enable=0 console=ttyAMA0,115200 console=tty1 root=/dev/nfs rootfstype=nfs \
         ip=10.46.189.2::10.46.189.1:255.255.255.252::eth0:off \
         nfsroot=10.46.189.1:/export/10.46.189.2,vers=3,tcp elevator=deadline fsck.repair=yes rootwait\n"
    );
    let ifupdown = &tree["fileserver/ifupdown/pirack"];
    for stanza in [
        "auto eth0.10\niface eth0.10 inet static\n    address 10.46.189.1\n    netmask 255.255.255.252\n",
        "auto eth0.11\niface eth0.11 inet static\n    address 10.46.189.5\n    netmask 255.255.255.252\n",
    ] {
        assert!(ifupdown.contains(stanza), "{ifupdown}");
    }
    assert!(tree["exports/pirack.exports"].contains(
        "\n/export/10.46.189.2 10.46.189.2(rw,sync,no_subtree_check,no_root_squash,fsid=1)\n"
    ));
    let public = &tree["slots/A-01/root/etc/network/interfaces.d/pirack"];
    assert!(public.contains("iface eth0.131 inet6 static\n    address 2001:db8:0:84:1000:1:0:1/64\n    gateway 2001:db8:0:84::1\n"));
    assert_eq!(
        tree["fileserver/systemd-networkd/20-pirack-eth0.10.network"]
            .lines()
            .find(|l| l.starts_with("Address=")),
        Some("Address=10.46.189.1/30")
    );
}

#[test]
fn shelf_96_renders_96_slots() {
    let tree = rendered("hardware/shelf-96.yaml");
    let slots: std::collections::BTreeSet<_> = tree
        .keys()
        .filter_map(|k| k.strip_prefix("slots/")?.split('/').next())
        .collect();
    assert_eq!(slots.len(), 96);
    assert_eq!(
        tree["exports/pirack.exports"]
            .lines()
            .filter(|l| l.starts_with('/'))
            .count(),
        96
    );
    assert_eq!(
        tree["fileserver/ifupdown/pirack"]
            .matches("\nauto eth0.")
            .count(),
        96
    );
    // The trunk carries all 96 storage VLANs and the public one.
    let ports = &tree["switch/sw-b/ports.yaml"];
    let trunk: Vec<u16> = (10..=105).chain([132]).collect();
    assert!(ports.contains(&format!("  tagged: {trunk:?}\n")), "{ports}");

    // Golden for the shared files and the first and last slot.
    let keep = |k: &String| {
        !k.starts_with("slots/") || k.starts_with("slots/A-01/") || k.starts_with("slots/D-24/")
    };
    let subset: render::Tree = tree.into_iter().filter(|(k, _)| keep(k)).collect();
    golden(&subset, "tests/golden/shelf-96");
}

#[test]
fn nfs_exports_directory_holds_the_rendered_exports() {
    for name in ["example-8", "shelf-96"] {
        let tree = rendered(&format!("hardware/{name}.yaml"));
        let path = format!("nfs-exports/{name}.exports");
        if std::env::var_os("PIRACK_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &tree["exports/pirack.exports"]).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            tree["exports/pirack.exports"],
            "{path}"
        );
    }
}

#[test]
fn two_fileservers_each_get_their_own_shelf_and_nothing_else() {
    let tree = rendered("hardware/two-fileservers.yaml");
    golden(&tree, "tests/golden/two-fileservers");
    for (fs, mine, theirs) in [("fs-a", "A-0", "B-0"), ("fs-b", "B-0", "A-0")] {
        for file in [
            format!("fileserver/{fs}/ifupdown/pirack"),
            format!("exports/{fs}/pirack.exports"),
            format!("exports/{fs}/ganesha.conf"),
        ] {
            let text = &tree[&file];
            assert!(text.contains(mine) || file.ends_with("exports"), "{file}");
            assert!(!text.contains(theirs), "{file} serves {theirs}*:\n{text}");
        }
    }
    // fs-b's slots: its pool, its VLANs, its export root, its name in /etc/hosts.
    assert!(tree["exports/fs-b/pirack.exports"].contains("/export-b/10.46.190.2 10.46.190.2("));
    assert!(tree["fileserver/fs-b/ifupdown/pirack"].contains("auto eth0.50\n"));
    assert!(tree["slots/B-01/root/etc/hosts"].contains("10.46.190.1\tfs-b\n"));
    assert!(
        tree["slots/B-01/boot/cmdline.txt"].contains("nfsroot=10.46.190.1:/export-b/10.46.190.2,")
    );
    assert!(!tree.contains_key("fileserver/ifupdown/pirack"));
}
