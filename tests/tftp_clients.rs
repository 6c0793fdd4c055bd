//! Real TFTP clients (tftp-hpa, atftp, curl) against `pirack serve`, from slot
//! A-01's Pi address in its own namespace (needs root and the clients).

mod common;

use common::{SlotLink, boot_files, booting_site, can_use_netns, have, serve, text};
use std::process::Output;

const SERVER: &str = "10.46.189.1";

fn run(link: &SlotLink, program: &str, args: &[&str]) -> Output {
    link.pi.command(program).args(args).output().unwrap()
}

#[test]
fn real_clients_fetch_static_and_generated_files_and_are_refused_the_rest() {
    let name = "real_clients_fetch_static_and_generated_files_and_are_refused_the_rest";
    if !can_use_netns(name) || !have(name, "tftp") || !have(name, "atftp") || !have(name, "curl") {
        return;
    }
    let boot = boot_files(3 << 20);
    let link = SlotLink::new("tftp", Some("10.46.189.2/30"));
    let d = tempfile::tempdir().unwrap();
    let (inventory, images) = booting_site(d.path(), "example-8", boot.path(), &["A-01"]);
    let _server = serve(&link.ctl, &inventory, boot.path(), &images);
    let out = tempfile::tempdir().unwrap();
    let dest = |f: &str| out.path().join(f).to_str().unwrap().to_string();
    let site = common::site(inventory.to_str().unwrap());
    let ledger = d.path().join("hardware/example-8.ledger.yaml");
    let (plan, _) =
        pirack_core::plan::plan(&site, &pirack_core::plan::Ledger::load(&ledger).unwrap()).unwrap();
    // A-01 boots the image its root was built from: its cmdline and kernel.
    let slot = pirack_controller::boot::of(&site, &plan.slots[0], &images, "tiny-1").unwrap();
    let cmdline = String::from_utf8(slot.cmdline.to_vec()).unwrap();
    let config = String::from_utf8(slot.config.to_vec()).unwrap();
    assert!(cmdline.starts_with("console=ttyAMA0,115200 "), "{cmdline}");
    assert!(config.contains("\nkernel=kernel8.img\n"), "{config}");
    let file = |f: &str| std::fs::read(boot.path().join(f)).unwrap();

    // Wait for the server to bind (it starts in parallel with this test).
    let mut ready = false;
    for _ in 0..50 {
        let r = run(
            &link,
            "curl",
            &[
                "-sS",
                "-o",
                &dest("probe"),
                &format!("tftp://{SERVER}/bootcode.bin"),
            ],
        );
        if r.status.success() {
            ready = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(ready, "server never answered");
    assert_eq!(std::fs::read(dest("probe")).unwrap(), file("bootcode.bin"));

    // tftp-hpa: no options, 512-byte blocks, like the boot ROM.
    let r = run(
        &link,
        "tftp",
        &[
            "-m",
            "binary",
            SERVER,
            "-c",
            "get",
            "7285c0f2/start.elf",
            &dest("start.elf"),
        ],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(std::fs::read(dest("start.elf")).unwrap(), file("start.elf"));

    // atftp with tsize, blksize and windowsize.
    let r = run(
        &link,
        "atftp",
        &[
            "--option",
            "tsize 0",
            "--option",
            "blksize 1468",
            "--option",
            "windowsize 4",
            "-g",
            "-r",
            "7285c0f2/kernel8.img",
            "-l",
            &dest("kernel8.img"),
            SERVER,
        ],
    );
    assert!(r.status.success(), "{}{}", text(&r.stdout), text(&r.stderr));
    assert_eq!(
        std::fs::read(dest("kernel8.img")).unwrap(),
        file("kernel8.img")
    );

    // curl: generated files, with and without options.
    let r = run(
        &link,
        "curl",
        &[
            "-sS",
            "-o",
            &dest("cmdline.txt"),
            &format!("tftp://{SERVER}/7285c0f2/cmdline.txt"),
        ],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(
        std::fs::read_to_string(dest("cmdline.txt")).unwrap(),
        cmdline
    );
    let r = run(
        &link,
        "curl",
        &[
            "-sS",
            "--tftp-blksize",
            "1024",
            "-o",
            &dest("config.txt"),
            &format!("tftp://{SERVER}/7285c0f2/config.txt"),
        ],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(std::fs::read_to_string(dest("config.txt")).unwrap(), config);

    // Refusals: each a TFTP error packet (curl exit 68 not found, 69 access).
    for (path, code) in [
        ("7285c0f2/../../../../etc/passwd", 69),
        ("../etc/passwd", 69),
        ("b66c4c16/start.elf", 69),
        ("bootsig.bin", 68),
        ("7285c0f2/bootsig.bin", 68),
        ("7285c0f2/nope.img", 68),
    ] {
        let r = run(
            &link,
            "curl",
            &[
                "-sS",
                "--path-as-is",
                "-o",
                &dest("refused"),
                &format!("tftp://{SERVER}/{path}"),
            ],
        );
        assert_eq!(r.status.code(), Some(code), "{path}: {}", text(&r.stderr));
    }
    assert!(!out.path().join("refused").exists());
    let r = run(
        &link,
        "tftp",
        &[
            "-m",
            "binary",
            SERVER,
            "-c",
            "get",
            "/etc/passwd",
            &dest("abs"),
        ],
    );
    let said = text(&r.stdout) + &text(&r.stderr);
    assert!(
        said.contains("Error code 2: illegal file name: absolute path"),
        "{said}"
    );

    // Nothing can be written.
    std::fs::write(dest("upload"), "x").unwrap();
    let r = run(
        &link,
        "tftp",
        &[
            "-m",
            "binary",
            SERVER,
            "-c",
            "put",
            &dest("upload"),
            "7285c0f2/upload",
        ],
    );
    let said = text(&r.stdout) + &text(&r.stderr);
    assert!(
        said.contains("Error code 2: pirack serves boot files read-only"),
        "{said}"
    );
    assert!(!boot.path().join("upload").exists());
}
