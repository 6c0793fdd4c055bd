//! A real certificate by dns-01 through pirack: Pebble (Let's Encrypt's ACME
//! test server) checks the challenge against the test BIND, lego asks for a
//! certificate for a customer's zone apex and its wildcard (two challenges at one
//! name), and pirack's hook (`pirack-acme-hook`, lego's exec provider) sets and
//! removes the TXT records through the API with the customer's own token.

mod common;

use common::controller::start;
use common::dns;
use common::snmp::{Creds, free_udp_port, site_for};
use common::{Child, have, have_all, is_root, text};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn lego_gets_a_certificate_for_a_customers_names_through_the_hook() {
    let test = "lego_gets_a_certificate";
    if !is_root(test) || !have_all(test, &["named", "dig", "pebble", "lego", "openssl"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let reverse =
        pirack_core::dns::names::reverse_zone("2001:db8:0:84:1000:1::/96".parse().unwrap());
    let bind = dns::bind(
        &dir.join("bind"),
        &[
            ("pi.example.net", ""),
            (reverse.trim_end_matches('.'), ""),
            ("acme.example", ""),
        ],
    );
    let inventory = site_for(&dir, free_udp_port(), "generic", Creds::V2c, "");
    let yaml = std::fs::read_to_string(&inventory).unwrap().replace(
        "  - name: acme\n",
        "  - name: acme\n    zones: [acme.example]\n",
    );
    std::fs::write(&inventory, yaml).unwrap();
    dns::add_to(&inventory, &bind);
    let rig = start(tmp, &inventory, false);

    // Pebble, serving ACME over TLS with a certificate made here.
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        .arg("-keyout")
        .arg(dir.join("pebble.key"))
        .arg("-out")
        .arg(dir.join("pebble.pem"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    let port = free_tcp_port();
    let config = serde_json::json!({ "pebble": {
        "listenAddress": format!("127.0.0.1:{port}"),
        "managementListenAddress": format!("127.0.0.1:{}", free_tcp_port()),
        "certificate": dir.join("pebble.pem"),
        "privateKey": dir.join("pebble.key"),
        "httpPort": free_tcp_port(),
        "tlsPort": free_tcp_port(),
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
    }});
    std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
    let _pebble = Child(
        Command::new("pebble")
            .arg("-config")
            .arg(dir.join("pebble.json"))
            .arg("-dnsserver")
            .arg(bind.addr.to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(std::fs::File::create(dir.join("pebble.log")).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("pebble starts"),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "pebble did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The hook as lego's exec provider runs it: the binary under its hook name.
    let hook = dir.join("pirack-acme-hook");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_pirack"), &hook).unwrap();
    let out = Command::new("lego")
        .args(["--server", &format!("https://127.0.0.1:{port}/dir")])
        .args(["--accept-tos", "--email", "admin@acme.example"])
        .args(["--domains", "acme.example", "--domains", "*.acme.example"])
        .args(["--dns", "exec", "--dns.disable-cp"])
        .args(["--dns.resolvers", &bind.addr.to_string()])
        .arg("--path")
        .arg(dir.join("lego"))
        .arg("run")
        .env("EXEC_PATH", &hook)
        .env("EXEC_SEQUENCE_INTERVAL", "1")
        .env("EXEC_POLLING_INTERVAL", "1")
        .env("LEGO_CA_CERTIFICATES", dir.join("pebble.pem"))
        .envs(hook_env(&rig))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lego: {}\n{}\npebble: {}",
        text(&out.stdout),
        text(&out.stderr),
        std::fs::read_to_string(dir.join("pebble.log")).unwrap_or_default()
    );
    let cert = dir.join("lego/certificates/acme.example.crt");
    let shown = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    let names = text(&shown.stdout);
    assert!(
        names.contains("DNS:acme.example") && names.contains("DNS:*.acme.example"),
        "{names}"
    );
    // The challenges are gone again, from the API and from the zone.
    assert!(dns::dig(&bind, "_acme-challenge.acme.example", "TXT").is_empty());
    let left = common::http::get(rig.addr, "/v1/names", Some(&rig.acme)).json();
    assert_eq!(left, serde_json::json!([]), "{left}");

    // certbot's manual hooks: both challenges stand at one name at once.
    if !have(test, "certbot") {
        return;
    }
    let state = dir.join("certbot");
    let out = Command::new("certbot")
        .args(["certonly", "--non-interactive", "--agree-tos"])
        .args(["--email", "admin@acme.example"])
        .args(["--server", &format!("https://127.0.0.1:{port}/dir")])
        .args(["--manual", "--preferred-challenges", "dns"])
        .args(["--manual-auth-hook", &format!("{} auth", hook.display())])
        .args([
            "--manual-cleanup-hook",
            &format!("{} cleanup", hook.display()),
        ])
        .args(["-d", "www.acme.example", "-d", "*.www.acme.example"])
        .arg("--config-dir")
        .arg(&state)
        .arg("--work-dir")
        .arg(&state)
        .arg("--logs-dir")
        .arg(&state)
        .env("REQUESTS_CA_BUNDLE", dir.join("pebble.pem"))
        .envs(hook_env(&rig))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "certbot: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(state.join("live/www.acme.example/fullchain.pem").is_file());
    assert!(dns::dig(&bind, "_acme-challenge.www.acme.example", "TXT").is_empty());
}

/// What the hook needs: the API, the customer's token, a bound on its wait.
fn hook_env(rig: &common::controller::Rig) -> [(&'static str, String); 3] {
    [
        ("PIRACK_URL", format!("http://{}", rig.addr)),
        ("PIRACK_TOKEN", rig.acme.clone()),
        ("PIRACK_ACME_WAIT", "90".into()),
    ]
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
