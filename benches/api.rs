//! API latency under load on loopback: `GET /v1/slots` from wrk with 50 connections,
//! and 96 provisioning calls (`POST /v1/slots`, answered once the slot is claimed)
//! from 50 concurrent clients, against `pirack serve` on a 96-slot shelf with a
//! SQLite store. Prints p50/p99 of each. Needs root (roots are built) and wrk.
//!
//!     cargo bench --bench api -- [--seconds 10]

mod common;

use common::{arg, is_root, sh};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn post(addr: SocketAddr, token: &str, body: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    let req = format!(
        "POST /v1/slots HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    if !is_root("api bench") {
        return;
    }
    let seconds = arg("--seconds", 10);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for sub in ["hardware", "switch-profiles"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::copy(
        "switch-profiles/generic.yaml",
        d.join("switch-profiles/generic.yaml"),
    )
    .unwrap();
    std::fs::copy(
        "hardware/shelf-96.ledger.yaml",
        d.join("hardware/shelf-96.ledger.yaml"),
    )
    .unwrap();
    let yaml = std::fs::read_to_string("hardware/shelf-96.yaml")
        .unwrap()
        .replace(", owner: acme }", " }")
        .replace(
            "export_root: /export",
            &format!("export_root: {}", d.join("export").display()),
        );
    let inventory = d.join("hardware/shelf-96.yaml");
    std::fs::write(&inventory, yaml).unwrap();
    tiny_image(&d.join("images"));
    let db = format!("sqlite://{}/state.db", d.display());
    let token = sh(Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args(["token", "create", "--db", &db, "--name", "bench", "--admin"]))
    .trim()
    .to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_pirack"))
            .arg("serve")
            .arg("--inventory")
            .arg(&inventory)
            .args([
                "--db",
                &db,
                "--api",
                &addr.to_string(),
                "--no-export",
                "--dhcp-port",
                "16767",
                "--tftp-port",
                "16969",
            ])
            .arg("--images")
            .arg(d.join("images"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    while TcpStream::connect(addr).is_err() {
        std::thread::sleep(Duration::from_millis(100));
    }

    // Provisioning: 96 calls from 50 clients at once.
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(Mutex::new(0u32));
    let started = Instant::now();
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let (lat, next, token) = (latencies.clone(), next.clone(), token.clone());
            std::thread::spawn(move || {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap();
                        if *n >= 96 {
                            return;
                        }
                        *n += 1;
                        *n
                    };
                    let t = Instant::now();
                    let status = post(
                        addr,
                        &token,
                        &format!(r#"{{"image":"tiny-1","owner":"c{}"}}"#, i % 9),
                    );
                    assert_eq!(status, 202, "provision {i}");
                    lat.lock().unwrap().push(t.elapsed());
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let wall = started.elapsed();
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort();

    // Listing: wrk, 50 connections.
    let wrk = sh(Command::new("wrk")
        .args(["-t2", "-c50", &format!("-d{seconds}s"), "--latency", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("http://{addr}/v1/slots")));
    let pick = |label: &str| {
        wrk.lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?")
            .to_string()
    };
    let rps = wrk
        .lines()
        .find(|l| l.starts_with("Requests/sec"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_string();
    println!("\nAPI latency on loopback, 96-slot shelf, SQLite store, 50 concurrent clients\n");
    println!(
        "{:<40} {:>10} {:>10} {:>12}",
        "", "p50", "p99", "throughput"
    );
    println!(
        "{:<40} {:>10} {:>10} {:>9} /s",
        format!("GET /v1/slots (wrk, {seconds} s)"),
        pick("50%"),
        pick("99%"),
        rps
    );
    println!(
        "{:<40} {:>8.1}ms {:>8.1}ms {:>9.1} /s",
        "POST /v1/slots (96 provisions)",
        percentile(&lat, 0.50).as_secs_f64() * 1000.0,
        percentile(&lat, 0.99).as_secs_f64() * 1000.0,
        96.0 / wall.as_secs_f64()
    );
}

/// A small image, `tiny-1`, in `store` (what the API provisions from).
fn tiny_image(store: &Path) {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/os-release"), "NAME=tiny\n").unwrap();
    let boot = work.path().join("boot");
    std::fs::create_dir_all(&boot).unwrap();
    for f in [
        "bootcode.bin",
        "start.elf",
        "fixup.dat",
        "kernel8.img",
        "bcm2710-rpi-3-b.dtb",
    ] {
        std::fs::write(boot.join(f), f).unwrap();
    }
    let import = pirack_controller::roots::image::Import {
        name: "tiny".into(),
        version: "1".into(),
        root,
        boot,
        cmdline: "console=ttyAMA0,115200".into(),
    };
    pirack_controller::roots::image::import(store, &import, &|_, _| {}).unwrap();
}
