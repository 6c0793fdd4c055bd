//! The API under load on loopback, against `pirack serve` on a 96-slot shelf with
//! a SQLite store (needs root, for roots, and wrk):
//! - 96 provisioning calls (`POST /v1/slots`, answered once the slot is claimed)
//!   from 50 concurrent clients;
//! - `GET /v1/slots` from wrk with 50 connections over HTTP and HTTPS, side by
//!   side with a minimal axum handler returning the same JSON bytes (the ceiling
//!   on this machine), with pirack's ratio to it;
//! - 2,000 idle connections and 500 event streams held open: a fresh request's
//!   latency and the controller's memory.
//!
//!     cargo bench --bench api -- [--seconds 10] [--idle 2000] [--streams 500]

mod common;

use common::{arg, free_addr, is_root, request, serve, sh};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// wrk's p50, p99 (ms) and requests per second for `url`.
struct Wrk {
    p50: f64,
    p99: f64,
    rps: f64,
}

fn wrk(url: &str, token: &str, seconds: u64) -> Wrk {
    let out = sh(Command::new("wrk")
        .args(["-t2", "-c50", &format!("-d{seconds}s"), "--latency", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url));
    let value = |label: &str| -> f64 {
        let v = out
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("0");
        // wrk writes 812.00us, 3.20ms or 1.10s.
        let (n, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
        let n: f64 = n.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => n / 1000.0,
            "ms" | "" => n,
            "s" => n * 1000.0,
            "m" => n * 60_000.0,
            _ => f64::NAN,
        }
    };
    assert!(!out.contains("Non-2xx"), "wrk saw errors:\n{out}");
    Wrk {
        p50: value("50%"),
        p99: value("99%"),
        rps: value("Requests/sec:"),
    }
}

/// A free loopback address.
/// The ceiling: axum on a multi-threaded runtime answering every request with
/// `body`, as pirack's listing is (JSON bytes).
fn ceiling(body: String) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let body = axum::body::Bytes::from(body);
            let app = axum::Router::new().route(
                "/v1/slots",
                axum::routing::get(move || {
                    let body = body.clone();
                    async move {
                        (
                            [(axum::http::header::CONTENT_TYPE, "application/json")],
                            body,
                        )
                    }
                }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    addr
}

/// The resident memory of process `pid`, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    if !is_root("api bench") {
        return;
    }
    let seconds = arg("--seconds", 10);
    let idle = arg("--idle", 2000) as usize;
    let streams = arg("--streams", 500) as usize;
    raise_fd_limit();
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
    let pirack = |args: &[&str]| sh(Command::new(env!("CARGO_BIN_EXE_pirack")).args(args));
    let token = pirack(&["token", "create", "--db", &db, "--name", "bench", "--admin"])
        .trim()
        .to_string();
    let owners: Vec<String> = (0..9).map(|i| format!("c{i}")).collect();
    for o in &owners {
        pirack(&["owner", "add", "--db", &db, o]);
    }
    // Stream holders: a token per 16 streams (the default share per token).
    let stream_tokens: Vec<String> = (0..streams.div_ceil(16))
        .map(|i| {
            pirack(&[
                "token",
                "create",
                "--db",
                &db,
                "--name",
                &format!("streams-{i}"),
                "--admin",
            ])
            .trim()
            .to_string()
        })
        .collect();
    let addr = free_addr();
    let server = serve(&inventory, d, &db, addr, &[]);

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
                    let body = format!(r#"{{"image":"tiny-1","owner":"c{}"}}"#, i % 9);
                    let (status, answer) = request(addr, "POST", "/v1/slots", &token, &body);
                    assert_eq!(status, 202, "provision {i}: {answer}");
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

    // Listing over HTTP, against the ceiling with the same bytes.
    let (status, listing) = request(addr, "GET", "/v1/slots", &token, "");
    assert_eq!(status, 200);
    let http = wrk(&format!("http://{addr}/v1/slots"), &token, seconds);
    let top = ceiling(listing.clone());
    let axum = wrk(&format!("http://{top}/v1/slots"), &token, seconds);

    // Idle connections and event streams held open; fresh requests timed.
    let mut held = Vec::new();
    for _ in 0..idle {
        held.push(TcpStream::connect(addr).unwrap());
    }
    for (i, t) in stream_tokens.iter().cycle().take(streams).enumerate() {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET /v1/events/stream?after={i} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n\r\n"
        )
        .unwrap();
        held.push(s);
    }
    std::thread::sleep(Duration::from_secs(2));
    let mut fresh = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let (status, _) = request(addr, "GET", "/v1/slots", &token, "");
        assert_eq!(
            status,
            200,
            "a fresh request among {} held connections",
            held.len()
        );
        fresh.push(t.elapsed());
    }
    fresh.sort();
    let rss = rss_mib(server.0.id());
    drop(held);
    drop(server);

    // Listing over HTTPS: the same controller restarted with a certificate.
    let cert = d.join("cert.pem");
    let key = d.join("key.pem");
    sh(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args([
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    let tls_addr = free_addr();
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let _tls = serve(
        &inventory,
        d,
        &db,
        tls_addr,
        &["--tls-cert", &c, "--tls-key", &k],
    );
    let https = wrk(&format!("https://{tls_addr}/v1/slots"), &token, seconds);

    println!("\nAPI on loopback, 96-slot shelf, SQLite store, wrk -c50 for {seconds} s, 2 cores\n");
    println!(
        "{:<46} {:>9} {:>9} {:>11} {:>9}",
        "", "p50 ms", "p99 ms", "req/s", "ratio"
    );
    let row = |label: &str, w: &Wrk, ratio: f64| {
        println!(
            "{label:<46} {:>9.2} {:>9.2} {:>11.0} {:>8.2}x",
            w.p50, w.p99, w.rps, ratio
        );
    };
    row("axum, the same bytes (ceiling)", &axum, 1.0);
    row("pirack GET /v1/slots, HTTP", &http, http.rps / axum.rps);
    row(
        "pirack GET /v1/slots, HTTPS (vs HTTP)",
        &https,
        https.rps / http.rps,
    );
    println!(
        "{:<46} {:>9.1} {:>9.1} {:>11.1}",
        "pirack POST /v1/slots (96 provisions)",
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        96.0 / wall.as_secs_f64()
    );
    println!(
        "\nwith {idle} idle connections and {streams} event streams open: a fresh GET /v1/slots \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; controller RSS {rss:.1} MiB",
        ms(percentile(&fresh, 0.50)),
        ms(percentile(&fresh, 0.99)),
        ms(*fresh.last().unwrap()),
    );
}

/// Lets this process hold the connections it opens.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let want = hard.max(65536);
    if setrlimit(Resource::RLIMIT_NOFILE, want, want).is_err() {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
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
