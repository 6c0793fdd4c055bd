//! The IPv4→IPv6 proxy inside `pirack serve`, against real backends: nginx in
//! one Pi's namespace (`listen … proxy_protocol`, plain and TLS with the Pi's
//! own certificate) and HAProxy with `accept-proxy` in another, each reached
//! only over IPv6; curl and openssl as IPv4 clients on loopback.

mod common;

use common::controller::{free_tcp_port, start};
use common::http::{get, post, request};
use common::snmp::{Creds, free_udp_port, site_for};
use common::{have_all, is_root, netns, text};
use pirack_lab::testbed::netns::Netns;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn fqdn(position: &str) -> String {
    format!("example-{}.pi.example.net", position.to_lowercase())
}

/// A Pi's namespace reached from here over a veth pair: `here`/64 on this
/// side, the Pi's public address (and `there`/64) on its side.
fn pi_link(tag: &str, n: u8, public: &str) -> Netns {
    let ns = netns(tag);
    let host = format!("pxy{n}-{}", std::process::id() % 10_000);
    let out = Command::new("ip")
        .args(["link", "add", &host, "type", "veth", "peer", "name", "eth0"])
        .args(["netns", ns.name()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (here, there) = (format!("fd00:{n}::1"), format!("fd00:{n}::2"));
    let ip = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().unwrap();
        assert!(out.status.success(), "ip {args:?}: {}", text(&out.stderr));
    };
    ip(&[
        "-6",
        "addr",
        "add",
        &format!("{here}/64"),
        "dev",
        &host,
        "nodad",
    ]);
    ip(&["link", "set", &host, "up"]);
    ip(&[
        "-6",
        "route",
        "replace",
        &format!("{public}/128"),
        "via",
        &there,
        "dev",
        &host,
    ]);
    ns.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{there}/64"),
        "dev",
        "eth0",
        "nodad",
    ])
    .unwrap();
    ns.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{public}/128"),
        "dev",
        "eth0",
        "nodad",
    ])
    .unwrap();
    ns.ip(&["link", "set", "eth0", "up"]).unwrap();
    ns.ip(&["link", "set", "lo", "up"]).unwrap();
    ns.ip(&["-6", "route", "add", "default", "via", &here])
        .unwrap();
    ns
}

/// nginx in `ns`: port 80 and 443 (TLS, `cert`) with `proxy_protocol`,
/// answering with the client address the header gave.
fn nginx(ns: &Netns, dir: &Path) -> common::Child {
    let d = dir.display();
    let conf = format!(
        "daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/error.log; worker_processes 1;\n\
         events {{}}\n\
         http {{\n\
           log_format pp '$proxy_protocol_addr $host';\n\
           access_log {d}/access.log pp;\n\
           client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
           server {{ listen [::]:80 proxy_protocol; location / {{ return 200 \"a01 $proxy_protocol_addr\\n\"; }} }}\n\
           server {{ listen [::]:443 ssl proxy_protocol; ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem;\n\
                     location / {{ return 200 \"a01-tls $proxy_protocol_addr\\n\"; }} }}\n\
         }}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = ns
        .command("nginx")
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .spawn()
        .unwrap();
    common::Child(child)
}

/// HAProxy in `ns` with `accept-proxy` on port 80: answers with the source
/// and the authority TLV the PROXY v2 header carried.
fn haproxy(ns: &Netns, dir: &Path) -> common::Child {
    let conf = "defaults\n  mode http\n  timeout client 10s\n  timeout server 10s\n  timeout connect 5s\n\
                frontend f\n  bind [::]:80 accept-proxy\n  \
                http-request return status 200 content-type text/plain lf-string \"a02 %[src] %[fc_pp_authority]\\n\"\n";
    std::fs::write(dir.join("haproxy.cfg"), conf).unwrap();
    let child = ns
        .command("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(dir.join("haproxy.cfg"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    common::Child(child)
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), text(&out.stdout) + &text(&out.stderr))
}

/// Waits until `check` holds for what `f` returns; the last value.
fn until<T>(what: &str, f: impl Fn() -> T, check: impl Fn(&T) -> bool) -> T {
    let started = Instant::now();
    loop {
        let v = f();
        if check(&v) {
            return v;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A ClientHello for `name` carrying `pad` bytes of padding extension (a
/// post-quantum key share's size), in one TLS record.
fn client_hello(name: &str, pad: usize) -> Vec<u8> {
    let n = name.as_bytes();
    let mut ext = vec![0, 0];
    ext.extend_from_slice(&((n.len() + 5) as u16).to_be_bytes());
    ext.extend_from_slice(&((n.len() + 3) as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(n.len() as u16).to_be_bytes());
    ext.extend_from_slice(n);
    ext.extend_from_slice(&[0, 21]);
    ext.extend_from_slice(&(pad as u16).to_be_bytes());
    ext.extend(std::iter::repeat_n(0u8, pad));
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7u8; 32]);
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut record = vec![22, 3, 1];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

#[test]
fn the_proxy_routes_by_sni_and_host_to_each_pi_with_its_proxy_header() {
    let test = "the_proxy_routes";
    if !is_root(test) || !have_all(test, &["nginx", "haproxy", "curl", "openssl"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let (http, tls) = (free_tcp_port(), free_tcp_port());
    let inventory = site_for(&dir, free_udp_port(), "generic", Creds::V2c, "");
    let yaml = std::fs::read_to_string(&inventory).unwrap()
        + &format!(
            "\nproxy:\n  listen: [127.0.0.1, '::1']\n  http_port: {http}\n  tls_port: {tls}\n  \
             header_timeout_ms: 1000\n  connect_timeout_ms: 500\n"
        );
    std::fs::write(&inventory, yaml).unwrap();
    let rig = start(tmp, &inventory, false);
    let (a, admin) = (rig.addr, Some(rig.admin.as_str()));
    let acme = Some(rig.acme.as_str());
    let mut public = Vec::new();
    for position in ["A-01", "A-02", "A-03"] {
        let op = post(
            a,
            "/v1/slots",
            admin,
            &format!(r#"{{"image":"tiny-1","owner":"acme","slot":"{position}"}}"#),
        );
        assert_eq!(rig.wait(&op.json())["status"], "succeeded");
        let slot = get(a, &format!("/v1/slots/{position}"), admin).json();
        public.push(slot["ipv6"].as_str().unwrap().to_string());
    }

    // A-01: nginx with its own certificate; A-02: HAProxy; A-03: nobody home.
    let work = |n: &str| {
        let d = dir.join(n);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let (d1, d2) = (work("a01"), work("a02"));
    pirack_lab::testbed::self_signed(&d1, &fqdn("A-01"), &format!("DNS:{}", fqdn("A-01"))).unwrap();
    let pi1 = pi_link("px1", 1, &public[0]);
    let pi2 = pi_link("px2", 2, &public[1]);
    let _nginx = nginx(&pi1, &d1);
    let _haproxy = haproxy(&pi2, &d2);

    let routes = until(
        "routes for the three slots",
        || get(a, "/v1/proxy/routes", admin).json(),
        |r| r["routes"].as_array().is_some_and(|r| r.len() == 3),
    );
    assert_eq!(routes["routes"][0]["names"][0], fqdn("A-01"), "{routes}");
    let resolve = |position: &str, port: u16| format!("{}:{port}:127.0.0.1", fqdn(position));
    let url =
        |scheme: &str, position: &str, port: u16| format!("{scheme}://{}:{port}/", fqdn(position));

    // HTTP by Host, PROXY v1 (the default): nginx sees the IPv4 client.
    let (ok, out) = until(
        "nginx answering through the proxy",
        || {
            curl(&[
                "--resolve",
                &resolve("A-01", http),
                &url("http", "A-01", http),
            ])
        },
        |(_, out)| out.starts_with("a01"),
    );
    assert!(ok && out.trim() == "a01 127.0.0.1", "{out}");
    // Over the IPv6 listener too, the client's IPv6 address passed on.
    let (ok, out) = curl(&[
        "--resolve",
        &format!("{}:{http}:[::1]", fqdn("A-01")),
        &url("http", "A-01", http),
    ]);
    assert!(ok && out.trim() == "a01 ::1", "{out}");

    // TLS by SNI, not terminated: the client checks the Pi's own certificate.
    let cacert = d1.join("cert.pem");
    let (ok, out) = curl(&[
        "--resolve",
        &resolve("A-01", tls),
        "--cacert",
        cacert.to_str().unwrap(),
        &url("https", "A-01", tls),
    ]);
    assert!(ok && out.trim() == "a01-tls 127.0.0.1", "{out}");

    // PROXY v2 for A-02, set by its owner: HAProxy reads the source and the TLV.
    let set = request(
        a,
        "PUT",
        "/v1/slots/A-02/proxy",
        acme,
        Some(r#"{"protocol":"v2"}"#),
    );
    assert_eq!(set.status, 200, "{}", set.body);
    until(
        "A-02's route with v2",
        || get(a, "/v1/proxy/routes", admin).json(),
        |r| r["routes"][1]["protocol"] == "v2",
    );
    let (ok, out) = curl(&[
        "--resolve",
        &resolve("A-02", http),
        &url("http", "A-02", http),
    ]);
    assert!(
        ok && out.trim() == format!("a02 127.0.0.1 {}", fqdn("A-02")),
        "{out}"
    );
    let other = request(
        a,
        "PUT",
        "/v1/slots/A-05/proxy",
        acme,
        Some(r#"{"protocol":"v2"}"#),
    );
    assert_eq!(other.status, 404, "another owner's slot: {}", other.body);

    // A 2 KB ClientHello arriving in two segments still reaches A-01 (nginx
    // answers the handshake itself: anything but the proxy's own alert).
    let proxy_alert = [21u8, 3, 1, 0, 2, 2, 112];
    let hello = client_hello(&fqdn("A-01"), 2000);
    let mut s = TcpStream::connect(("127.0.0.1", tls)).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&hello[..700]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(&hello[700..]).unwrap();
    let mut answer = [0u8; 7];
    s.read_exact(&mut answer).unwrap();
    assert_ne!(answer, proxy_alert);
    // nginx's own record (its handshake_failure alert: the hello is a fake).
    assert!(
        matches!(answer[0], 21 | 22),
        "a TLS record from nginx: {answer:?}"
    );

    // An unknown name over TLS: the proxy's `unrecognized_name` alert.
    let mut s = TcpStream::connect(("127.0.0.1", tls)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&client_hello("nope.example", 10)).unwrap();
    let mut answer = [0u8; 7];
    s.read_exact(&mut answer).unwrap();
    assert_eq!(answer, proxy_alert);

    // Plain HTTP: unknown names, unreachable Pis and slow clients get pages.
    let (_, out) = curl(&[
        "-i",
        "--resolve",
        &format!("nope.example:{http}:127.0.0.1"),
        &format!("http://nope.example:{http}/"),
    ]);
    assert!(out.starts_with("HTTP/1.1 404"), "{out}");
    let (_, out) = curl(&[
        "-i",
        "--resolve",
        &resolve("A-03", http),
        &url("http", "A-03", http),
    ]);
    assert!(out.starts_with("HTTP/1.1 502"), "{out}");
    let mut slow = TcpStream::connect(("127.0.0.1", http)).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    slow.write_all(format!("GET / HTTP/1.1\r\nHost: {}", fqdn("A-01")).as_bytes())
        .unwrap();
    let started = Instant::now();
    let mut page = String::new();
    slow.read_to_string(&mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 408"), "{page}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // A route change leaves an open connection alone: A-01 goes to v2 while a
    // keep-alive connection made with v1 carries on.
    let mut kept = TcpStream::connect(("127.0.0.1", http)).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let ask = format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", fqdn("A-01"));
    let read_one = |s: &mut TcpStream| {
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    kept.write_all(ask.as_bytes()).unwrap();
    assert!(read_one(&mut kept).ends_with("a01 127.0.0.1\n"));
    let set = request(
        a,
        "PUT",
        "/v1/slots/A-01/proxy",
        acme,
        Some(r#"{"protocol":"v2"}"#),
    );
    assert_eq!(set.status, 200);
    until(
        "A-01's route with v2",
        || get(a, "/v1/proxy/routes", admin).json(),
        |r| r["routes"][0]["protocol"] == "v2",
    );
    kept.write_all(ask.as_bytes()).unwrap();
    assert!(read_one(&mut kept).ends_with("a01 127.0.0.1\n"));
    // New connections take the new route (nginx reads v2 as well).
    let (ok, out) = curl(&[
        "--resolve",
        &resolve("A-01", http),
        &url("http", "A-01", http),
    ]);
    assert!(ok && out.trim() == "a01 127.0.0.1", "{out}");

    // Metrics per backend.
    let metrics = get(a, "/metrics", admin).body;
    assert!(
        metrics.contains("pirack_proxy_connections_total{backend=\"sw-a/1\",outcome=\"done\"}"),
        "{metrics}"
    );
    assert!(metrics.contains(
        "pirack_proxy_connections_total{backend=\"sw-a/3\",outcome=\"backend unreachable\"}"
    ));

    // A stand-alone proxy beside the embedded one follows the same routes.
    let (http2, tls2, metrics2) = (free_tcp_port(), free_tcp_port(), free_tcp_port());
    let _standalone = common::Child(
        Command::new(env!("CARGO_BIN_EXE_pirack"))
            .args(["proxy", "--listen", "127.0.0.1"])
            .args([
                "--http-port",
                &http2.to_string(),
                "--tls-port",
                &tls2.to_string(),
            ])
            .args(["--metrics", &format!("127.0.0.1:{metrics2}")])
            .args(["--url", &format!("http://{a}"), "--token", &rig.admin])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (ok, out) = until(
        "the stand-alone proxy",
        || {
            curl(&[
                "--resolve",
                &resolve("A-02", http2),
                &url("http", "A-02", http2),
            ])
        },
        |(ok, _)| *ok,
    );
    assert!(
        ok && out.trim() == format!("a02 127.0.0.1 {}", fqdn("A-02")),
        "{out}"
    );
    let set = request(
        a,
        "PUT",
        "/v1/slots/A-02/proxy",
        acme,
        Some(r#"{"protocol":"v1"}"#),
    );
    assert_eq!(set.status, 200);
    let (_, out) = until(
        "the stand-alone proxy following a change",
        || {
            curl(&[
                "--resolve",
                &resolve("A-02", http2),
                &url("http", "A-02", http2),
            ])
        },
        |(_, out)| !out.contains(&fqdn("A-02")),
    );
    assert!(out.starts_with("a02 127.0.0.1"), "{out}");
    let (_, metrics) = curl(&[&format!("http://127.0.0.1:{metrics2}/metrics")]);
    assert!(
        metrics.contains("pirack_proxy_connections_total{backend=\"sw-a/2\",outcome=\"done\"}"),
        "{metrics}"
    );
    drop((pi1, pi2));
}
