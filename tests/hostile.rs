//! What a customer with root on a Pi can send down its wire, against a running
//! controller (needs root: namespaces).

mod common;

use common::{Child, SlotLink, boot_files, can_use_netns, text};
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

const API: &str = "127.0.0.1:18080";

/// `pirack serve` in the slot link's controller namespace: its JSON events, and
/// its log in `log`.
fn serve(
    link: &SlotLink,
    dir: &std::path::Path,
    boot: &std::path::Path,
) -> (Child, mpsc::Receiver<serde_json::Value>) {
    let db = format!("sqlite://{}/state.db", dir.display());
    let mut child = Child(
        link.ctl
            .command(env!("CARGO_BIN_EXE_pirack"))
            .args(["serve", "--inventory", "hardware/example-8.yaml"])
            .args(["--db", &db, "--api", API, "--json-events", "--no-export"])
            .arg("--boot-files")
            .arg(boot)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("serve.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel();
    let out = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line)
                && tx.send(v).is_err()
            {
                return;
            }
        }
    });
    (child, rx)
}

/// Runs `work` in the Pi's namespace.
fn on_the_pi<T: Send + 'static>(link: &SlotLink, work: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = link.pi.name().to_string();
    std::thread::spawn(move || {
        pirack_lab::testbed::netns::enter(&ns).unwrap();
        work()
    })
    .join()
    .unwrap()
}

#[test]
fn text_from_a_pis_wire_never_reaches_a_terminal_or_forges_a_log_line() {
    if !can_use_netns("text_from_a_pis_wire_never_reaches_a_terminal_or_forges_a_log_line") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let boot = boot_files(64 * 1024);
    let link = SlotLink::new("hostile", Some("10.46.189.2/30"));
    let db = format!("sqlite://{}/state.db", dir.path().display());
    let token = common::controller::token(&db, &["--name", "staff", "--admin"]);
    let (_server, events) = serve(&link, dir.path(), boot.path());
    // A transfer the Pi starts and ends with an ERROR whose text carries a
    // terminal escape, a bell and a line break into a line of its own.
    let forged = "\x1b]0;owned\x07\x1b[2J\r\nFORGED 2026-12-02T00:00:00Z INFO all is well";
    on_the_pi(&link, move || {
        let sock = UdpSocket::bind("10.46.189.2:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut rrq = vec![0, 1];
        rrq.extend_from_slice(b"bootcode.bin\0octet\0");
        let mut buf = [0u8; 1024];
        // The server may still be binding: ask until the first block comes.
        let from = (0..20)
            .find_map(|_| {
                sock.send_to(&rrq, "10.46.189.1:69").unwrap();
                sock.recv_from(&mut buf).ok().map(|(_, from)| from)
            })
            .expect("the first block");
        let mut error = vec![0, 5, 0, 0];
        error.extend_from_slice(forged.as_bytes());
        error.push(0);
        sock.send_to(&error, from).unwrap();
    });
    let failed = loop {
        let e = events
            .recv_timeout(Duration::from_secs(30))
            .expect("the failed transfer is an event");
        if e["kind"] == "tftp_failed" {
            break e;
        }
    };
    let shown = failed["error"].as_str().unwrap();
    assert!(
        !shown.chars().any(char::is_control) && shown.contains("\\u{1b}"),
        "the event carries the text escaped: {shown:?}"
    );
    // The log, the API and the CLI show it escaped: no escape sequence, no line
    // of the Pi's making.
    let no_forgery = |what: &str, out: &str| {
        assert!(
            !out.contains('\x1b') && !out.contains('\r') && !out.contains('\x07'),
            "{what}: {out:?}"
        );
        assert!(
            !out.lines().any(|l| l.starts_with("FORGED")),
            "{what}: {out}"
        );
    };
    std::thread::sleep(Duration::from_millis(500));
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(log.contains("FORGED"), "the log has the refusal: {log}");
    no_forgery("the log", &log);
    let cli = link
        .ctl
        .command(env!("CARGO_BIN_EXE_pirack"))
        .args([
            "events",
            "--url",
            &format!("http://{API}"),
            "--token",
            &token,
        ])
        .output()
        .unwrap();
    let out = text(&cli.stdout);
    assert!(out.contains("FORGED"), "{out}{}", text(&cli.stderr));
    no_forgery("pirack events", &out);
}
