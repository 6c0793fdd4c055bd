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
            // No roots built: nothing but bootcode.bin is served.
            .arg("--images")
            .arg(dir.join("images"))
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

/// Two slots' links, A-01 (eth0.10) and A-05 (eth0.14), as `SlotLink` makes one;
/// the controller's namespace checks no reverse path, so what the controller
/// itself does is what is tested.
struct TwoSlots {
    ctl: common::Netns,
    a01: common::Netns,
    a05: common::Netns,
}

impl TwoSlots {
    fn new() -> TwoSlots {
        let ctl = common::netns("twoc");
        let a01 = common::netns("two1");
        let a05 = common::netns("two5");
        for (pi, ifname, mac, fs, addr) in [
            (
                &a01,
                "eth0.10",
                "b8:27:eb:85:c0:f2",
                "10.46.189.1/30",
                "10.46.189.2/30",
            ),
            (
                &a05,
                "eth0.14",
                "b8:27:eb:1b:2c:3d",
                "10.46.189.17/30",
                "10.46.189.18/30",
            ),
        ] {
            let out = std::process::Command::new("ip")
                .args(["link", "add", ifname, "netns", ctl.name(), "type", "veth"])
                .args(["peer", "name", "eth0", "netns", pi.name(), "address", mac])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
            ctl.ip(&["addr", "add", fs, "dev", ifname]).unwrap();
            ctl.ip(&["link", "set", ifname, "up"]).unwrap();
            pi.ip(&["addr", "add", addr, "dev", "eth0"]).unwrap();
            pi.ip(&["link", "set", "eth0", "up"]).unwrap();
        }
        // sysctl(8) writes an interface's dots as slashes.
        for knob in ["all", "default", "eth0/10", "eth0/14"] {
            let out = ctl
                .command("sysctl")
                .args(["-qw", &format!("net.ipv4.conf.{knob}.rp_filter=0")])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
        TwoSlots { ctl, a01, a05 }
    }
}

/// Runs `work` in namespace `ns`.
fn inside<T: Send + 'static>(ns: &common::Netns, work: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.name().to_string();
    std::thread::spawn(move || {
        pirack_lab::testbed::netns::enter(&ns).unwrap();
        work()
    })
    .join()
    .unwrap()
}

/// An RRQ for bootcode.bin from `from` to `to`; whether block 1 came back.
fn fetch_first_block(from: &str, to: &str) -> bool {
    let sock = UdpSocket::bind(from).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut rrq = vec![0, 1];
    rrq.extend_from_slice(b"bootcode.bin\0octet\0");
    let mut buf = [0u8; 1024];
    (0..6).any(|_| {
        sock.send_to(&rrq, to).unwrap();
        matches!(sock.recv_from(&mut buf), Ok((n, _)) if n > 4 && buf[1] == 3)
    })
}

#[test]
fn a_pi_posing_as_another_slots_address_is_dropped_and_reported_on_its_own_slot() {
    if !can_use_netns(
        "a_pi_posing_as_another_slots_address_is_dropped_and_reported_on_its_own_slot",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let boot = boot_files(64 * 1024);
    let two = TwoSlots::new();
    let db = format!("sqlite://{}/state.db", dir.path().display());
    let token = common::controller::token(&db, &["--name", "staff", "--admin"]);
    let mut server = Child(
        two.ctl
            .command(env!("CARGO_BIN_EXE_pirack"))
            .args(["serve", "--inventory", "hardware/example-8.yaml"])
            .args(["--db", &db, "--api", API, "--json-events", "--no-export"])
            .arg("--boot-files")
            .arg(boot.path())
            .arg("--images")
            .arg(dir.path().join("images"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, events) = mpsc::channel::<serde_json::Value>();
    let out = server.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line)
                && tx.send(v).is_err()
            {
                return;
            }
        }
    });
    // A-05's own Pi is served (which also shows the controller is up).
    assert!(inside(&two.a05, || fetch_first_block(
        "10.46.189.18:0",
        "10.46.189.17:69"
    )));

    // A-01's Pi takes A-05's address, asks for A-05's boot files on A-05's
    // server address, and sends DHCP as A-05: all of it down A-01's own wire.
    two.a01
        .ip(&["addr", "add", "10.46.189.18/32", "dev", "eth0"])
        .unwrap();
    two.a01
        .ip(&[
            "route",
            "add",
            "10.46.189.17/32",
            "dev",
            "eth0",
            "src",
            "10.46.189.18",
        ])
        .unwrap();
    let (served, _) = inside(&two.a01, || {
        let dhcp = UdpSocket::bind("10.46.189.18:68").unwrap();
        dhcp.set_broadcast(true).unwrap();
        let request = pirack_lab::sim::frames::bootp_request(
            "b8:27:eb:1b:2c:3d".parse().unwrap(),
            7,
            &pirack_lab::sim::frames::linux_options(dhcproto::v4::MessageType::Request, None),
        );
        dhcp.send_to(&request, "255.255.255.255:67").unwrap();
        (fetch_first_block("10.46.189.18:0", "10.46.189.17:69"), ())
    });
    assert!(!served, "no boot file for a Pi posing as another");

    // A-05 saw nothing of it; A-01 is reported, once per protocol.
    std::thread::sleep(Duration::from_secs(2));
    let seen: Vec<serde_json::Value> = events.try_iter().collect();
    let starts_for_a05 = seen
        .iter()
        .filter(|e| e["slot"] == "A-05" && e["kind"] == "tftp_started")
        .count();
    assert_eq!(
        starts_for_a05, 1,
        "only A-05's own request started a transfer: {seen:?}"
    );
    for protocol in ["TFTP", "DHCP"] {
        assert!(
            seen.iter().any(|e| e["kind"] == "spoofed"
                && e["slot"] == "A-01"
                && e["claimed"] == "10.46.189.18"
                && e["protocol"] == protocol),
            "{protocol}: {seen:?}"
        );
    }
    let cli = two
        .ctl
        .command(env!("CARGO_BIN_EXE_pirack"))
        .args([
            "events",
            "--slot",
            "A-01",
            "--url",
            &format!("http://{API}"),
            "--token",
            &token,
        ])
        .output()
        .unwrap();
    let out = text(&cli.stdout);
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("alert") && l.contains("an address not its own"))
            .count(),
        2,
        "one alert per protocol on the slot whose wire it came from: {out}"
    );
    let a05 = two
        .ctl
        .command(env!("CARGO_BIN_EXE_pirack"))
        .args([
            "events",
            "--slot",
            "A-05",
            "--url",
            &format!("http://{API}"),
            "--token",
            &token,
        ])
        .output()
        .unwrap();
    assert!(
        !text(&a05.stdout).contains("alert"),
        "{}",
        text(&a05.stdout)
    );
}

#[test]
fn a_flood_from_a_pi_adds_a_few_rows_and_its_made_up_boards_a_bounded_few() {
    if !can_use_netns("a_flood_from_a_pi_adds_a_few_rows_and_its_made_up_boards_a_bounded_few") {
        return;
    }
    use pirack_core::inventory::{MacAddr, Serial};
    use pirack_lab::sim::frames::{Asker, loader_discover};
    let dir = tempfile::tempdir().unwrap();
    let boot = boot_files(64 * 1024);
    let link = SlotLink::new("flood", Some("10.46.189.2/30"));
    let db = format!("sqlite://{}/state.db", dir.path().display());
    let token = common::controller::token(&db, &["--name", "staff", "--admin"]);
    let (_server, events) = serve(&link, dir.path(), boot.path());
    let sent = on_the_pi(&link, || {
        // Up first: the slot's own bootcode.bin comes.
        assert!((0..20).any(|_| fetch_first_block("10.46.189.2:0", "10.46.189.1:69")));
        // 20,000 requests for another board's tree, as fast as the Pi can send.
        let sock = UdpSocket::bind("10.46.189.2:0").unwrap();
        let mut rrq = vec![0, 1];
        rrq.extend_from_slice(b"deadbeef/start.elf\0octet\0");
        for i in 0..20_000 {
            sock.send_to(&rrq, "10.46.189.1:69").unwrap();
            if i % 500 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // 300 boot ROM DISCOVERs, each from a board the Pi makes up.
        let raw = pirack_lab::sim::link::RawLink::open("eth0").unwrap();
        for i in 0..300u32 {
            let serial = Serial::new(0x1000_0000 + i);
            raw.send(&loader_discover(
                Asker::Bootcode,
                MacAddr::of_pi3(serial),
                serial,
            ))
            .unwrap();
        }
        20_000
    });
    // The summaries come when the windows end.
    std::thread::sleep(Duration::from_secs(12));
    let seen: Vec<serde_json::Value> = events.try_iter().collect();
    let refused = seen.iter().filter(|e| e["kind"] == "tftp_refused").count();
    assert!(
        refused > sent / 4,
        "the flood reached the server: {refused} refusals"
    );
    let cli = link
        .ctl
        .command(env!("CARGO_BIN_EXE_pirack"))
        .args(["events", "--json", "--slot", "A-01"])
        .args(["--url", &format!("http://{API}"), "--token", &token])
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", text(&cli.stderr));
    let rows: Vec<serde_json::Value> = text(&cli.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Records one by one (summaries aside) whose detail says `what`.
    let about = |what: &str| {
        rows.iter()
            .filter(|e| e["cause"] != "rate limit")
            .filter(|e| e["detail"].as_str().unwrap_or_default().contains(what))
            .count()
    };
    let summaries: Vec<&serde_json::Value> =
        rows.iter().filter(|e| e["cause"] == "rate limit").collect();
    assert!(
        rows.len() <= 40,
        "{} rows for {sent} refusals and 300 boards: {rows:#?}",
        rows.len()
    );
    assert!(about("refused") <= 8 + 3, "{rows:#?}");
    assert!(
        summaries
            .iter()
            .any(|e| e["detail"].as_str().unwrap().contains("more TFTP refusals")),
        "the refusals held back are counted: {rows:#?}"
    );
    assert_eq!(about("is held, not served"), 1, "one alert: {rows:#?}");
    assert!(
        summaries
            .iter()
            .any(|e| e["kind"] == "alert" && e["detail"].as_str().unwrap().contains("more alerts")),
        "the alerts held back are counted: {rows:#?}"
    );
    // The store keeps the slot's latest few held boards, not 300.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let boards = rt.block_on(async {
        let store = pirack_controller::store::Store::open(&db).await.unwrap();
        store.boards_in("sw-a/1").await.unwrap()
    });
    assert!(
        boards.len() <= pirack_controller::store::boards::HELD_PER_SLOT as usize + 1,
        "{} boards recorded",
        boards.len()
    );
}
