//! The API's bounds against a running `pirack serve`: a client slow to send its
//! request head or silent too long is cut off, connections beyond the cap are
//! answered 503 and closed, a token's event streams beyond its share get 429;
//! history pages newest first with a cursor; the CLI over HTTPS with a private
//! CA, and slot keys with a `/` as one path segment.

mod common;

use common::controller::{start, start_with};
use common::http::{get, post};
use common::snmp::{Creds, free_udp_port, site_for};
use common::{is_root, text};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long until the server closes `s` (reads to EOF or a reset), at most `max`.
fn closed_within(s: &mut TcpStream, max: Duration) -> Option<(Duration, String)> {
    let started = Instant::now();
    s.set_read_timeout(Some(max)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some((started.elapsed(), String::from_utf8_lossy(&got).into())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some((started.elapsed(), String::from_utf8_lossy(&got).into()));
            }
            Err(_) => return None,
        }
        if started.elapsed() > max {
            return None;
        }
    }
}

#[test]
fn slow_and_silent_clients_are_cut_off_and_connections_are_capped() {
    if !is_root("slow_and_silent_clients_are_cut_off_and_connections_are_capped") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inventory = site_for(tmp.path(), free_udp_port(), "generic", Creds::V2c, "");
    let rig = start_with(
        tmp,
        &inventory,
        &[
            "--header-timeout-s",
            "1",
            "--idle-timeout-s",
            "2",
            "--max-connections",
            "20",
        ],
    );
    let a = rig.addr;

    // Half a request head, then nothing: cut off after the header timeout.
    let mut slow = TcpStream::connect(a).unwrap();
    slow.write_all(b"GET /v1/slots HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (after, _) = closed_within(&mut slow, Duration::from_secs(6))
        .expect("a half-sent head is not kept for ever");
    assert!(after < Duration::from_secs(4), "cut off after {after:?}");

    // A keep-alive connection that goes quiet after a request: waiting for the
    // next head, it is closed by the header timeout too.
    let mut quiet = TcpStream::connect(a).unwrap();
    write!(quiet, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (after, answer) = closed_within(&mut quiet, Duration::from_secs(8))
        .expect("an idle keep-alive connection is closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(after < Duration::from_secs(4), "closed after {after:?}");

    // A whole head and part of its body, then silence: the idle timeout.
    let mut stalled = TcpStream::connect(a).unwrap();
    write!(
        stalled,
        "POST /v1/slots HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"image\"",
        rig.admin
    )
    .unwrap();
    let (after, _) = closed_within(&mut stalled, Duration::from_secs(8))
        .expect("a stalled body is not waited for for ever");
    assert!(
        after >= Duration::from_millis(1500) && after < Duration::from_secs(5),
        "closed after {after:?} (idle timeout 2 s)"
    );

    // 20 connections held: the 21st is told 503 and closed, others still served
    // once the held ones idle out.
    let held: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(a).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let refused = get(a, "/healthz", None);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.json()["code"], "unavailable");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        get(a, "/healthz", None).status,
        200,
        "the held ones timed out"
    );
    drop(held);
}

#[test]
fn a_token_has_a_bounded_share_of_event_streams() {
    if !is_root("a_token_has_a_bounded_share_of_event_streams") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inventory = site_for(tmp.path(), free_udp_port(), "generic", Creds::V2c, "");
    let rig = start_with(tmp, &inventory, &["--streams-per-token", "2"]);
    let a = rig.addr;
    let open = |token: &str| -> (TcpStream, String) {
        let mut s = TcpStream::connect(a).unwrap();
        write!(
            s,
            "GET /v1/events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap_or(0);
        let head = String::from_utf8_lossy(&buf[..n]).into_owned();
        (s, head)
    };
    let (first, h1) = open(&rig.acme);
    let (_second, h2) = open(&rig.acme);
    assert!(
        h1.starts_with("HTTP/1.1 200") && h2.starts_with("HTTP/1.1 200"),
        "{h1}{h2}"
    );
    let (_, h3) = open(&rig.acme);
    assert!(h3.starts_with("HTTP/1.1 429"), "{h3}");
    assert!(h3.contains("too_many_requests"), "{h3}");
    let (_other, h4) = open(&rig.globex);
    assert!(
        h4.starts_with("HTTP/1.1 200"),
        "another token has its own share: {h4}"
    );
    // A closed stream gives its place back (seen by the server at its next write,
    // a keep-alive at the latest).
    drop(first);
    let started = Instant::now();
    loop {
        let (_s, h) = open(&rig.acme);
        if h.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "never freed: {h}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn history_pages_newest_first_with_a_cursor() {
    if !is_root("history_pages_newest_first_with_a_cursor") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inventory = site_for(tmp.path(), free_udp_port(), "generic", Creds::V2c, "");
    let rig = start(tmp, &inventory, false);
    let a = rig.addr;
    for image in ["tiny-1", "tiny-2"] {
        let op = post(
            a,
            "/v1/slots",
            Some(&rig.admin),
            &format!(r#"{{"image":"{image}","owner":"globex"}}"#),
        );
        assert_eq!(op.status, 202, "{}", op.body);
        assert_eq!(rig.wait(&op.json())["status"], "succeeded");
    }
    let oldest_first = get(a, "/v1/events?after=0&limit=1000", Some(&rig.admin)).json();
    let all: Vec<i64> = oldest_first
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(all.len() >= 4, "{oldest_first}");
    // Pages of two, newest first, each before the last id of the one before.
    let mut paged = Vec::new();
    let mut path = "/v1/events?limit=2".to_string();
    loop {
        let page = get(a, &path, Some(&rig.admin)).json();
        let ids: Vec<i64> = page
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect();
        let Some(last) = ids.last() else { break };
        path = format!("/v1/events?limit=2&before={last}");
        paged.extend(ids);
    }
    let mut newest_first = all.clone();
    newest_first.reverse();
    assert_eq!(paged, newest_first);
    assert_eq!(
        get(a, "/v1/events?after=1&before=9", Some(&rig.admin)).status,
        400
    );

    // A stream opened without `after` starts from now: the next event is the
    // first it sends, not the history above.
    let mut stream = TcpStream::connect(a).unwrap();
    write!(
        stream,
        "GET /v1/events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        rig.admin
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let op = post(
        a,
        "/v1/slots",
        Some(&rig.admin),
        r#"{"image":"tiny-1","owner":"globex"}"#,
    );
    assert_eq!(op.status, 202, "{}", op.body);
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while !got.contains("\nid: ") || !got.contains("\ndata: ") {
        let n = stream.read(&mut buf).expect("an event within 10 s");
        assert!(n > 0, "the stream ended: {got}");
        got += &String::from_utf8_lossy(&buf[..n]);
    }
    let first: i64 = got
        .split("\nid: ")
        .nth(1)
        .and_then(|l| l.lines().next())
        .and_then(|id| id.trim().parse().ok())
        .unwrap_or_else(|| panic!("an id: {got}"));
    assert!(
        first > *all.last().unwrap(),
        "event {first} is history (newest was {}): {got}",
        all.last().unwrap()
    );
}

/// A private CA and a certificate it signed for 127.0.0.1, by openssl.
fn ca_and_cert(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            text(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509", "-days", "2", "-subj", "/CN=pirack test CA"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-subj", "/CN=127.0.0.1"][..],
            &ec,
            &["-keyout", "key.pem", "-out", "req.csr"],
        ]
        .concat(),
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "req.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "cert.pem",
    ]);
}

#[test]
fn the_cli_speaks_https_to_a_controller_with_a_private_ca_and_encodes_keys() {
    if !is_root("the_cli_speaks_https_to_a_controller_with_a_private_ca_and_encodes_keys")
        || !common::have("api_bounds", "openssl")
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    ca_and_cert(certs.path());
    let c = certs.path();
    let (cert, key, ca) = (c.join("cert.pem"), c.join("key.pem"), c.join("ca.pem"));
    let inventory = site_for(tmp.path(), free_udp_port(), "generic", Creds::V2c, "");
    let rig = start_with(
        tmp,
        &inventory,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let url = format!("https://{}", rig.addr);
    let cli = |args: &[&str], ca: Option<&Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pirack"));
        cmd.args(args)
            .env("PIRACK_URL", &url)
            .env("PIRACK_TOKEN", &rig.admin)
            .env("HOME", "/nonexistent")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("PIRACK_CA_FILE");
        if let Some(ca) = ca {
            cmd.arg("--ca-file").arg(ca);
        }
        cmd.output().unwrap()
    };
    let slots = cli(&["slots", "--json"], Some(&ca));
    assert!(slots.status.success(), "{}", text(&slots.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&slots.stdout).unwrap();
    let key = listed[0]["key"].as_str().unwrap().to_string();
    assert!(key.contains('/'), "keys are switch/port: {key}");
    // Without the CA the server is not trusted.
    let untrusted = cli(&["slots"], None);
    assert!(!untrusted.status.success());
    assert!(
        text(&untrusted.stderr)
            .to_lowercase()
            .contains("certificate"),
        "{}",
        text(&untrusted.stderr)
    );
    // A key with a `/` is one segment: `pirack show sw-x/N` finds it.
    let shown = cli(&["show", &key], Some(&ca));
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    assert!(
        text(&shown.stdout).contains(&key),
        "{}",
        text(&shown.stdout)
    );
    // Plain HTTP to the TLS port gets no answer it could take for the API's.
    let mut plain = TcpStream::connect(rig.addr).unwrap();
    write!(plain, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = String::new();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = plain.read_to_string(&mut got);
    assert!(!got.contains("\"ok\""), "{got}");
}

/// Each of the controller's threads by name, with its nice value.
fn thread_nices(pid: u32) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, nice field 19.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let nice = rest.split_whitespace().nth(16).and_then(|n| n.parse().ok());
        if let Some(nice) = nice {
            out.push((comm.trim().to_string(), nice));
        }
    }
    out
}

#[test]
fn the_api_yields_the_cpu_to_dhcp_and_tftp() {
    if !is_root("the_api_yields_the_cpu_to_dhcp_and_tftp") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inventory = site_for(tmp.path(), free_udp_port(), "generic", Creds::V2c, "");
    let rig = start_with(tmp, &inventory, &["--api-nice", "7"]);
    assert_eq!(get(rig.addr, "/healthz", None).status, 200);
    let threads = thread_nices(rig.pid());
    let netboot: Vec<i64> = threads
        .iter()
        .filter(|(n, _)| n == "netboot")
        .map(|t| t.1)
        .collect();
    let workers: Vec<i64> = threads
        .iter()
        .filter(|(n, _)| n.starts_with("tokio-rt"))
        .map(|t| t.1)
        .collect();
    assert_eq!(netboot, [0], "{threads:?}");
    assert!(
        !workers.is_empty() && workers.iter().all(|n| *n == 7),
        "{threads:?}"
    );
}
