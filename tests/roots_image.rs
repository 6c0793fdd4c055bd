//! Images: import from a directory or a tarball, checked boot files, one digest
//! whatever the source, verification, crash leftovers, and on btrfs a read-only
//! subvolume that roots snapshot.

mod common;

use pirack_controller::roots::image::{self, ImageError, Import};
use pirack_controller::roots::{Method, best_method};
use std::fs;
use std::path::Path;
use std::process::Command;

fn tree(dir: &Path) {
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::write(dir.join("bin/busybox"), vec![7u8; 300_000]).unwrap();
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
    fs::write(dir.join("etc/hostname"), "image\n").unwrap();
    // As a Debian root has them: a link to an absolute path that exists only on the
    // Pi, and a systemd unit name with a backslash escape.
    std::os::unix::fs::symlink("/pi-only/bin/nano", dir.join("etc/editor")).unwrap();
    fs::write(
        dir.join("etc/system-systemd\\x2dcryptsetup.slice"),
        "[Unit]\n",
    )
    .unwrap();
}

fn import_of(root: &Path, boot: &Path, version: &str) -> Import {
    Import {
        name: "tiny".into(),
        version: version.into(),
        root: root.to_path_buf(),
        boot: boot.to_path_buf(),
        cmdline: "console=ttyAMA0,115200".into(),
    }
}

#[test]
fn import_checks_records_and_verifies() {
    let work = tempfile::tempdir().unwrap();
    let boot = common::boot_files(64 * 1024);
    let root = work.path().join("rootfs");
    tree(&root);
    let store = work.path().join("store");

    // A directory and a tarball of the same tree give the same root digest.
    let m = image::import(&store, &import_of(&root, boot.path(), "1"), &|_, _| {}).unwrap();
    assert_eq!(
        (m.kernel.as_str(), m.architecture.as_str()),
        ("kernel8.img", "arm64")
    );
    assert_eq!(
        m.device_trees,
        ["bcm2710-rpi-3-b-plus.dtb", "bcm2710-rpi-3-b.dtb"]
    );
    assert_eq!(m.checksums.boot.len(), 6);
    assert_eq!(m.initramfs, None);
    let tarball = work.path().join("rootfs.tar.gz");
    assert!(
        Command::new("tar")
            .arg("-czf")
            .arg(&tarball)
            .arg("-C")
            .arg(&root)
            .arg(".")
            .status()
            .unwrap()
            .success()
    );
    let from_tar =
        image::import(&store, &import_of(&tarball, boot.path(), "2"), &|_, _| {}).unwrap();
    assert_eq!(from_tar.checksums.root, m.checksums.root);

    let listed: Vec<String> = image::list(&store)
        .unwrap()
        .iter()
        .map(|m| m.id())
        .collect();
    assert_eq!(listed, ["tiny-1", "tiny-2"]);
    assert_eq!(image::show(&store, "tiny-1").unwrap(), m);
    assert_eq!(
        image::verify(&store, "tiny-1").unwrap(),
        Vec::<String>::new()
    );
    assert!(matches!(
        image::import(&store, &import_of(&root, boot.path(), "1"), &|_, _| {}),
        Err(ImageError::Exists(_))
    ));
    assert!(matches!(
        image::show(&store, "tiny-9"),
        Err(ImageError::Unknown(_))
    ));
    assert!(matches!(
        image::show(&store, "../etc"),
        Err(ImageError::BadName(_))
    ));

    // Changed behind pirack's back: named.
    fs::write(store.join("tiny-2/boot/start.elf"), "tampered").unwrap();
    fs::write(store.join("tiny-2/root/etc/hostname"), "tampered").unwrap();
    assert_eq!(
        image::verify(&store, "tiny-2").unwrap(),
        ["boot/start.elf", "root/"]
    );

    // What a crash leaves is neither listed nor in the way.
    fs::create_dir_all(store.join(".tiny-3.partial-1/root/bin")).unwrap();
    assert_eq!(image::list(&store).unwrap().len(), 2);
    image::import(&store, &import_of(&root, boot.path(), "3"), &|_, _| {}).unwrap();
    assert!(!store.join(".tiny-3.partial-1").exists());
}

/// An image's own kernel and initramfs are what config.txt names for its slots.
#[test]
fn the_images_kernel_and_initramfs_are_recorded_and_named_in_config_txt() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("rootfs");
    tree(&root);
    let boot = work.path().join("boot");
    fs::create_dir_all(&boot).unwrap();
    for f in [
        "bootcode.bin",
        "start.elf",
        "fixup.dat",
        "bcm2837-rpi-3-b.dtb",
        "vmlinuz-6.1.0-rpi",
        "initrd.img-6.1.0-rpi",
    ] {
        fs::write(boot.join(f), f).unwrap();
    }
    let store = work.path().join("store");
    let m = image::import(&store, &import_of(&root, &boot, "1"), &|_, _| {}).unwrap();
    assert_eq!(
        (m.kernel.as_str(), m.initramfs.as_deref()),
        ("vmlinuz-6.1.0-rpi", Some("initrd.img-6.1.0-rpi"))
    );
    assert_eq!(
        image::show(&store, "tiny-1").unwrap(),
        m,
        "kept in the manifest"
    );
    let site = common::site("hardware/example-8.yaml");
    let ledger =
        pirack_core::plan::Ledger::load(Path::new("hardware/example-8.ledger.yaml")).unwrap();
    let (plan, _) = pirack_core::plan::plan(&site, &ledger).unwrap();
    let b = pirack_controller::boot::of(&site, &plan.slots[0], &store, "tiny-1").unwrap();
    let config = String::from_utf8(b.config.to_vec()).unwrap();
    let body: Vec<&str> = config.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        body[..2],
        [
            "kernel=vmlinuz-6.1.0-rpi",
            "initramfs initrd.img-6.1.0-rpi followkernel"
        ],
        "the image's lines first, the site's after: {config}"
    );
    assert_eq!(b.dir, store.join("tiny-1/boot"));
}

#[test]
fn a_boot_directory_without_pi3_files_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("rootfs");
    tree(&root);
    let boot = work.path().join("boot");
    fs::create_dir_all(&boot).unwrap();
    fs::write(boot.join("bootcode.bin"), "x").unwrap();
    fs::write(boot.join("fixup.dat"), "x").unwrap();
    let err = image::import(
        &work.path().join("store"),
        &import_of(&root, &boot, "1"),
        &|_, _| {},
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("missing start.elf, a kernel (kernel8.img, kernel7.img, vmlinuz, Image or vmlinuz-*), a Pi 3 device tree"), "{msg}");
    assert!(
        !work.path().join("store").exists(),
        "nothing made in the store"
    );
}

#[test]
fn on_btrfs_the_image_root_is_a_read_only_subvolume_roots_snapshot() {
    let test = "on_btrfs_the_image_root_is_a_read_only_subvolume_roots_snapshot";
    if !common::can_use_netns(test)
        || !common::have(test, "mkfs.btrfs")
        || !common::have(test, "losetup")
    {
        return;
    }
    let fs = common::LoopFs::new(&["mkfs.btrfs", "-q", "-f"]);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("rootfs");
    tree(&root);
    let boot = common::boot_files(64 * 1024);
    let store = fs.path().join("images");
    image::import(&store, &import_of(&root, boot.path(), "1"), &|_, _| {}).unwrap();
    let image_root = store.join("tiny-1/root");
    assert!(pirack_controller::roots::clone::is_subvolume(&image_root));
    assert!(
        fs::write(image_root.join("etc/hostname"), "x").is_err(),
        "read-only"
    );
    fs::create_dir_all(fs.path().join("roots")).unwrap();
    assert_eq!(
        best_method(&image_root, &fs.path().join("roots")),
        Method::Snapshot
    );
    pirack_controller::roots::clone_tree(
        &image_root,
        &fs.path().join("roots/A-01"),
        Method::Snapshot,
    )
    .unwrap();
    fs::write(fs.path().join("roots/A-01/etc/hostname"), "a-01\n").unwrap();
    assert_eq!(
        image::verify(&store, "tiny-1").unwrap(),
        Vec::<String>::new(),
        "the image is untouched"
    );
}

/// SIGKILL at many points of an import: the image is either absent or whole
/// (it verifies), and importing again afterwards works.
#[test]
fn sigkill_during_import_never_leaves_a_half_image() {
    let work = tempfile::tempdir().unwrap();
    let boot = common::boot_files(4 << 20);
    let root = work.path().join("rootfs");
    tree(&root);
    for i in 0..200 {
        fs::write(root.join(format!("etc/file-{i}")), vec![i as u8; 64 * 1024]).unwrap();
    }
    let store = work.path().join("store");
    let import = |version: &str| {
        Command::new(env!("CARGO_BIN_EXE_pirack"))
            .args([
                "image",
                "--store",
                store.to_str().unwrap(),
                "import",
                "--name",
                "tiny",
                "--version",
                version,
            ])
            .arg("--root")
            .arg(&root)
            .arg("--boot")
            .arg(boot.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let started = std::time::Instant::now();
    assert!(import("0").wait().unwrap().success());
    let whole = started.elapsed();
    let (mut absent, mut complete) = (0, 0);
    for i in 1..=12u32 {
        let version = i.to_string();
        let mut child = import(&version);
        std::thread::sleep(whole * i / 5);
        let _ = child.kill();
        let _ = child.wait();
        let id = format!("tiny-{version}");
        match image::show(&store, &id) {
            Ok(_) => {
                assert_eq!(
                    image::verify(&store, &id).unwrap(),
                    Vec::<String>::new(),
                    "{id} is whole"
                );
                complete += 1;
            }
            Err(ImageError::Unknown(_)) => {
                absent += 1;
                assert!(
                    import(&version).wait().unwrap().success(),
                    "{id} imports after the kill"
                );
            }
            Err(e) => panic!("{id}: {e}"),
        }
    }
    assert!(
        absent > 0 && complete > 0,
        "kills landed before and after the rename: {absent} {complete}"
    );
    assert_eq!(image::list(&store).unwrap().len(), 13);
}
