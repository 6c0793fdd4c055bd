//! Load put on a controller during a boot storm (benches/boot_storm.rs): each
//! starts before the Pis power on and returns what ends it and says what it saw.

use pirack_core::plan::SlotPlan;
use pirack_lab::sim::lab::{Lab, PiLink};
use pirack_lab::testbed::netns::Netns;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::API;

pub type End = Box<dyn FnOnce() -> String>;

/// wrk on `GET /v1/slots` with 50 connections, at `nice`, until the storm ends;
/// its latencies and rate, and those of a caller beside it (wrk's own figures
/// count the time wrk itself waits for a CPU).
pub fn wrk(ctl: &Netns, token: &str, nice: u8) -> End {
    let prober = probe(ctl.name(), token);
    let child = ctl
        .command("nice")
        .args(["-n", &nice.to_string(), "wrk"])
        .args(["-t2", "-c50", "-d600s", "--latency", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("http://{API}/v1/slots"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("wrk runs");
    Box::new(move || {
        // wrk reports what it measured when interrupted.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let out = child.wait_with_output().expect("wrk ends");
        let text = String::from_utf8_lossy(&out.stdout);
        let value = |label: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(label))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("?")
                .to_string()
        };
        let errors = text
            .lines()
            .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
            .unwrap_or("no errors");
        format!(
            "API under wrk -c50: p50 {}, p99 {}, {} req/s ({}); {}",
            value("50%"),
            value("99%"),
            value("Requests/sec:"),
            errors.trim(),
            prober()
        )
    })
}

/// `idle` connections and `streams` event streams held open in the controller's
/// namespace, and a fresh `GET /v1/slots` every 100 ms, timed.
pub fn idle(ns: &str, token: &str, idle: usize, streams: usize) -> End {
    let (ns, token) = (ns.to_string(), token.to_string());
    let prober = probe(&ns, &token);
    let held = std::thread::spawn(move || {
        pirack_lab::testbed::netns::enter(&ns).unwrap();
        let mut held = Vec::new();
        for _ in 0..idle {
            held.push(TcpStream::connect(API).unwrap());
        }
        for _ in 0..streams {
            let mut s = TcpStream::connect(API).unwrap();
            write!(
                s,
                "GET /v1/events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
            )
            .unwrap();
            held.push(s);
        }
        held
    })
    .join()
    .unwrap();
    Box::new(move || {
        let timed = prober();
        drop(held);
        format!("{idle} idle connections and {streams} streams held; {timed}")
    })
}

/// A fresh `GET /v1/slots` every 100 ms from a thread at normal priority until
/// the end: the API's latency as a caller on another machine sees it.
fn probe(ns: &str, token: &str) -> End {
    let stop = Arc::new(AtomicBool::new(false));
    let (ns, token, halt) = (ns.to_string(), token.to_string(), Arc::clone(&stop));
    let worker = std::thread::spawn(move || {
        pirack_lab::testbed::netns::enter(&ns).unwrap();
        let mut took = Vec::new();
        let mut failed = 0;
        while !halt.load(Ordering::Relaxed) {
            let started = Instant::now();
            match fresh(&token) {
                Some(200) => took.push(started.elapsed().as_secs_f64() * 1000.0),
                _ => failed += 1,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        took.sort_by(f64::total_cmp);
        (took, failed)
    });
    Box::new(move || {
        stop.store(true, Ordering::Relaxed);
        let (took, failed) = worker.join().unwrap();
        let at = |p: f64| took[((took.len() - 1) as f64 * p).round() as usize];
        format!(
            "fresh GET /v1/slots p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} requests, {failed} failed",
            at(0.5),
            at(0.99),
            took.last().unwrap(),
            took.len()
        )
    })
}

/// One request on a fresh connection; its status.
fn fresh(token: &str) -> Option<u16> {
    let mut s = TcpStream::connect(API).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /v1/slots HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `slot`'s Pi (a link of its own beside the storm's) sends `count` requests
/// for another board's files, refused each, spread over five seconds; after the
/// storm, the rows the store holds for the slot.
pub fn flood(ctl: &str, slot: &SlotPlan, count: usize, db: &str) -> End {
    let ns = format!("pirack-flood-{}", std::process::id());
    let link = PiLink {
        netns: ns.clone(),
        controller_if: slot.interface.clone(),
        fileserver_cidr: format!("{}/{}", slot.fileserver_ip, slot.storage.prefix_len()),
        mac: slot
            .board
            .as_ref()
            .map_or("b8:27:eb:00:00:01".into(), |b| b.mac.to_string()),
        public: slot.ipv6.to_string(),
    };
    let lab = Lab::build(&[link], Some(ctl)).expect("the flooder's link");
    let pi = format!("{}/{}", slot.pi_ip, slot.storage.prefix_len());
    let out = std::process::Command::new("ip")
        .args(["-n", &ns, "addr", "add", &pi, "dev", "eth0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (from, to) = (slot.pi_ip, slot.fileserver_ip);
    let sender = std::thread::spawn(move || {
        pirack_lab::testbed::netns::enter(&ns).unwrap();
        let sock = UdpSocket::bind((from, 0)).unwrap();
        let mut rrq = vec![0, 1];
        rrq.extend_from_slice(b"deadbeef/start.elf\0octet\0");
        let mut sent = 0;
        for i in 0..count {
            if sock.send_to(&rrq, (to, 69)).is_ok() {
                sent += 1;
            }
            if i % 4 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        sent
    });
    let (key, db) = (slot.key.to_string(), db.to_string());
    Box::new(move || {
        let sent = sender.join().unwrap();
        // The summary of what was held back comes when its window ends.
        std::thread::sleep(Duration::from_secs(11));
        drop(lab);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let rows = rt.block_on(async {
            let store = pirack_controller::store::Store::open(&db).await.unwrap();
            store
                .events(0, 1000, Some(std::slice::from_ref(&key)))
                .await
                .unwrap()
                .len()
        });
        format!("{sent} refused TFTP requests from {key}'s Pi: {rows} rows in the store for it")
    })
}
