//! `pirack hil run` as a user's CI job runs it: an image that is not pirack's own
//! (the HIL image's root and its boot files without the initramfs, which the
//! runner must add from the kernel's modules) booted on a virtual Pi 3, with
//! commands over SSH and console expectations that pass and ones that fail:
//! exit status, table and JUnit report checked. Then the image qualified from
//! an image store through a power cycle and a reimage, its verdict recorded.
//! Then an image whose kernel does not boot: a failing verdict with the
//! console's end, within the timeout.

mod common;

use common::{can_use_netns, have_all, text};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The HIL recipe's image as a user would hand it over: its root tarball and
/// its boot files less the initramfs.
fn user_image(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let built = dir.join("built");
    let out = Command::new("images/hil/recipe")
        .arg(&built)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let boot = dir.join("boot");
    let out = Command::new("cp")
        .arg("-a")
        .arg(built.join("boot"))
        .arg(&boot)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::remove_file(boot.join("initrd.img")).unwrap();
    (built.join("root.tar.gz"), boot)
}

fn hil_run(dir: &Path, root: &Path, boot: &Path, extra: &[&str]) -> (bool, String, Duration) {
    let port = common::controller::free_tcp_port().to_string();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args(["hil", "run", "--no-install", "--port", &port, "--image"])
        .arg(root)
        .arg("--boot")
        .arg(boot)
        .arg("--dir")
        .arg(dir.join("run"))
        .args(extra)
        .output()
        .unwrap();
    let said = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    eprintln!("{said}");
    (out.status.success(), said, started.elapsed())
}

#[test]
fn a_users_image_is_booted_checked_and_judged() {
    let test = "hil_run";
    if !can_use_netns(test)
        || !have_all(test, common::VIRTUAL_PI_PEERS)
        || !have_all(test, &["ssh", "ssh-keygen"])
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (root, boot) = user_image(d);
    let (junit, logs) = (d.join("report.xml"), d.join("logs"));
    let (ok, said, _) = hil_run(
        d,
        &root,
        &boot,
        &[
            "--timeout",
            "150",
            "--exec",
            "cat /var/lib/pirack/boots && test -s /root/.ssh/authorized_keys",
            "--exec",
            "echo no such service >&2; exit 3",
            "--expect",
            "pirack: up: example-a-01",
            "--expect",
            "never said by any Pi",
            "--junit",
            junit.to_str().unwrap(),
            "--keep-logs",
            logs.to_str().unwrap(),
        ],
    );
    assert!(!ok, "a failing --exec and --expect fail the run:\n{said}");
    assert!(
        said.contains("A-01     FAIL ") && said.contains("  2/4  "),
        "two of four checks pass:\n{said}"
    );
    // The command ran on the Pi, as root, in the root its slot booted.
    assert!(
        said.contains(
            "exec `cat /var/lib/pirack/boots && test -s /root/.ssh/authorized_keys` passed ("
        ) && said.contains("\n  example-a-01 "),
        "{said}"
    );
    assert!(
        said.contains("A-01: exec `echo no such service >&2; exit 3` failed (")
            && said.contains("\n  exit 3; its output's end:\n  no such service\n"),
        "{said}"
    );
    assert!(
        said.contains("A-01: expect /never said by any Pi/ failed (")
            && said.contains("\n  not on the console"),
        "{said}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"5\" failures=\"2\""),
        "a boot and four checks, two failed:\n{xml}"
    );
    assert!(xml.contains("name=\"expect /pirack: up: example-a-01/\""));
    assert!(xml.contains("<failure message=\"expect /never said by any Pi/ failed\">"));
    assert!(xml.contains(
        "<failure message=\"exec `echo no such service &gt;&amp;2; exit 3` failed\">exit 3"
    ));
    let console = std::fs::read_to_string(logs.join("A-01.console.log")).unwrap();
    assert!(console.contains("pirack: up: example-a-01"), "{console}");
    let exec = std::fs::read_to_string(logs.join("A-01.exec-2.log")).unwrap();
    assert_eq!(exec, "no such service\n");
    assert!(logs.join("controller.log").exists());

    // Staff qualify the image from an image store: passing checks, then a power
    // cycle and a reimage (to the same image: a fresh root), each boot checked
    // again; the verdict is recorded on the image.
    let store = d.join("store");
    let out = Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args([
            "image",
            "import",
            "--name",
            "user",
            "--version",
            "1",
            "--store",
        ])
        .arg(&store)
        .arg("--root")
        .arg(&root)
        .arg("--boot")
        .arg(&boot)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let logs = d.join("qualify-logs");
    let port = common::controller::free_tcp_port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args([
            "image",
            "qualify",
            "user-1",
            "--no-install",
            "--port",
            &port,
        ])
        .args(["--timeout", "300", "--exec", "cat /var/lib/pirack/boots"])
        .args([
            "--expect",
            "pirack: up: ",
            "--power-cycle",
            "--reimage-to",
            "user-1",
        ])
        .arg("--store")
        .arg(&store)
        .arg("--dir")
        .arg(d.join("run"))
        .arg("--keep-logs")
        .arg(&logs)
        .output()
        .unwrap();
    let said = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    eprintln!("{said}");
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("A-01     pass ") && said.contains("  8/8  "),
        "two checks on each of three boots, and coming up twice more:\n{said}"
    );
    assert!(
        said.contains("A-01: after a power cycle: boots to up passed (")
            && said.contains(
                "A-01: after a reimage to user-1: exec `cat /var/lib/pirack/boots` passed ("
            ),
        "{said}"
    );
    assert!(said.contains("user-1: recorded as qualified in "), "{said}");
    // What the Pi's root recorded at each boot: one boot, then two (the power
    // cycle, a new boot id), then one again in its fresh root.
    let boots = |n: usize| -> Vec<String> {
        let log = std::fs::read_to_string(logs.join(format!("A-01.exec-{n}.log"))).unwrap();
        log.lines().map(str::to_string).collect()
    };
    let (first, cycled, fresh) = (boots(1), boots(2), boots(3));
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        cycled.len() == 2 && cycled[0] == first[0] && cycled[1] != first[0],
        "{cycled:?}"
    );
    assert!(fresh.len() == 1 && !cycled.contains(&fresh[0]), "{fresh:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args(["image", "list", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("  qualified"),
        "{}",
        text(&out.stdout)
    );

    // A kernel that does not boot (its first page overwritten): judged failed,
    // with what its console said, by the timeout and not long after.
    let broken = d.join("broken-boot");
    let out = Command::new("cp")
        .arg("-a")
        .arg(&boot)
        .arg(&broken)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut kernel = std::fs::read(broken.join("kernel8.img")).unwrap();
    kernel[..4096].fill(0);
    std::fs::write(broken.join("kernel8.img"), kernel).unwrap();
    let (ok, said, took) = hil_run(d, &root, &broken, &["--timeout", "60"]);
    assert!(!ok, "{said}");
    assert!(
        said.contains("A-01: did not reach up"),
        "a verdict for the Pi:\n{said}"
    );
    assert!(
        said.contains("[pirack] "),
        "with its console's end:\n{said}"
    );
    assert!(
        took < Duration::from_secs(180),
        "no hang past the timeout: {took:?}"
    );

    // Ctrl-C while the Pi boots: the run stops at once and leaves nothing
    // behind (no namespace, and no process of its own: QEMU, NFS-Ganesha, the
    // controller).
    let dir = d.join("interrupted");
    let port = common::controller::free_tcp_port().to_string();
    let mut run = Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args(["hil", "run", "--no-install", "--port", &port, "--image"])
        .arg(&root)
        .arg("--boot")
        .arg(&boot)
        .arg("--dir")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let console = dir.join("run/hil/A-01/console.log");
    common::until("QEMU to start", Duration::from_secs(120), || {
        let log = std::fs::read_to_string(&console).unwrap_or_default();
        log.contains("[pirack] starting qemu").then_some(())
    });
    let pid = nix::unistd::Pid::from_raw(run.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = common::until("the run to end", Duration::from_secs(30), || {
        run.try_wait().unwrap()
    });
    assert!(!status.success(), "a stopped run has no verdict: {status}");
    let spaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let ours = format!("pirack-hil-{pid}");
    assert!(
        !text(&spaces.stdout).contains(&ours),
        "{}",
        text(&spaces.stdout)
    );
    let marker = dir.to_str().unwrap().to_string();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&marker))
        .collect();
    assert!(left.is_empty(), "left running: {left:#?}");
}
