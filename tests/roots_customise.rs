//! A fresh root becomes slot A-01's Pi: the plan's files, new identity, the
//! owner's keys, and no first-boot helpers that break an NFS root.

mod common;

use pirack_controller::roots::customise;
use pirack_core::plan::{Ledger, plan};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[test]
fn a_root_becomes_its_slots_pi() {
    if !common::have("a_root_becomes_its_slots_pi", "ssh-keygen") {
        return;
    }
    let site = common::site("hardware/example-8.yaml");
    let (p, _) = plan(
        &site,
        &Ledger::load(Path::new("hardware/example-8.ledger.yaml")).unwrap(),
    )
    .unwrap();
    let slot = &p.slots[0];
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for d in [
        "etc/ssh",
        "var/lib/dbus",
        "etc/systemd/system/multi-user.target.wants",
    ] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::write(r.join("etc/ssh/ssh_host_ed25519_key"), "image's key").unwrap();
    fs::write(r.join("etc/ssh/ssh_host_dsa_key"), "old").unwrap();
    fs::write(
        r.join("etc/machine-id"),
        "0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    fs::write(r.join("etc/hostname"), "raspberrypi\n").unwrap();

    let written = customise(r, &site, slot).unwrap();
    assert!(written.contains(&"etc/fstab".to_string()), "{written:?}");

    let read = |rel: &str| fs::read_to_string(r.join(rel)).unwrap();
    assert_eq!(read("etc/hostname"), "example-a-01\n");
    assert!(
        read("etc/hosts")
            .contains("2001:db8:0:84:1000:1:0:1\texample-a-01.pi.example.net example-a-01\n")
    );
    assert!(read("etc/fstab").contains("10.46.189.1:/export/10.46.189.2\t/\tnfs\t"));
    assert!(read("etc/network/interfaces.d/pirack").contains("iface eth0.131 inet6 static"));

    let id = read("etc/machine-id");
    assert_eq!(id.len(), 33);
    assert!(
        id.trim_end()
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_ne!(id, "0123456789abcdef0123456789abcdef\n", "a new machine-id");
    assert_eq!(
        fs::read_link(r.join("var/lib/dbus/machine-id")).unwrap(),
        Path::new("/etc/machine-id")
    );

    assert!(
        !r.join("etc/ssh/ssh_host_dsa_key").exists(),
        "every old host key is gone"
    );
    for kind in ["ed25519", "ecdsa", "rsa"] {
        let key = read(&format!("etc/ssh/ssh_host_{kind}_key"));
        assert!(
            key.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"),
            "{kind}"
        );
        assert!(
            read(&format!("etc/ssh/ssh_host_{kind}_key.pub"))
                .trim_end()
                .ends_with("root@example-a-01")
        );
    }
    assert_ne!(read("etc/ssh/ssh_host_ed25519_key"), "image's key");

    let owner_key = &site.owners[0].ssh_keys[0];
    assert_eq!(read("root/.ssh/authorized_keys"), format!("{owner_key}\n"));
    let mode = |rel: &str| fs::metadata(r.join(rel)).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        (mode("root/.ssh"), mode("root/.ssh/authorized_keys")),
        (0o700, 0o600)
    );

    for unit in [
        "dphys-swapfile.service",
        "resize2fs_once.service",
        "regenerate_ssh_host_keys.service",
    ] {
        assert_eq!(
            fs::read_link(r.join("etc/systemd/system").join(unit)).unwrap(),
            Path::new("/dev/null"),
            "{unit} masked"
        );
    }

    // A second Pi from the same image gets its own identity.
    let other = tempfile::tempdir().unwrap();
    fs::create_dir_all(other.path().join("etc/ssh")).unwrap();
    customise(other.path(), &site, &p.slots[6]).unwrap();
    assert_ne!(
        fs::read_to_string(other.path().join("etc/machine-id")).unwrap(),
        id
    );
    assert_ne!(
        fs::read(other.path().join("etc/ssh/ssh_host_ed25519_key.pub")).unwrap(),
        fs::read(r.join("etc/ssh/ssh_host_ed25519_key.pub")).unwrap()
    );
    assert!(
        !other.path().join("root/.ssh/authorized_keys").exists(),
        "A-07 has no owner"
    );
}
