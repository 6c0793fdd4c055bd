//! The monitor's probes: ICMPv6 echo rate from this process to targets in
//! namespaces, side by side with fping in the same run, and what watching a
//! 1,000-slot site every 10 s (a ping and a TCP connect per slot, as the
//! monitor does) costs in CPU. Needs root and fping.
//!
//!     cargo bench --bench monitor -- [--targets 1000] [--rounds 5] [--seconds 30]

mod common;

use common::targets::targets;
use common::{arg, have, is_root};
use pirack_controller::monitor::ping::Pinger;
use std::net::Ipv6Addr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Targets per namespace (each namespace one veth pair).
const PER_NS: usize = 250;

/// `count` addresses, `fd00:b0:N::x`, PER_NS to a /64.
fn addresses(count: usize) -> Vec<Ipv6Addr> {
    (0..count)
        .map(|i| {
            format!("fd00:b0:{:x}::{:x}", i / PER_NS, i % PER_NS + 2)
                .parse()
                .unwrap()
        })
        .collect()
}

/// CPU seconds this thread (`RUSAGE_THREAD`: the runtime's, not the stand-in
/// sshd threads) or this process's children have used.
fn cpu(who: i32) -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// pirack's pinger: every target `rounds` times, all in flight at once per
/// round; replies per second and CPU µs per probe.
fn pirack(rt: &tokio::runtime::Runtime, addrs: &[Ipv6Addr], rounds: usize) -> (f64, f64, usize) {
    rt.block_on(async {
        let p = Arc::new(Pinger::new().expect("an ICMPv6 socket"));
        let (cpu0, t0) = (cpu(libc::RUSAGE_THREAD), Instant::now());
        let mut ok = 0;
        for _ in 0..rounds {
            let mut set = tokio::task::JoinSet::new();
            for a in addrs {
                let (p, a) = (Arc::clone(&p), *a);
                set.spawn(async move { p.ping(a, Duration::from_secs(2)).await.is_ok() });
            }
            while let Some(r) = set.join_next().await {
                ok += usize::from(r.unwrap_or(false));
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        let used = cpu(libc::RUSAGE_THREAD) - cpu0;
        (
            ok as f64 / secs,
            used * 1e6 / (addrs.len() * rounds) as f64,
            ok,
        )
    })
}

/// fping over the same targets, `rounds` pings each as fast as it sends.
fn fping(addrs: &[Ipv6Addr], rounds: usize) -> (f64, f64, usize) {
    let (cpu0, t0) = (cpu(libc::RUSAGE_CHILDREN), Instant::now());
    let out = Command::new("fping")
        .args(["-6", "-q", "-i", "0", "-p", "10", "-t", "2000", "-c"])
        .arg(rounds.to_string())
        .args(addrs.iter().map(ToString::to_string))
        .output()
        .expect("fping");
    let secs = t0.elapsed().as_secs_f64();
    let used = cpu(libc::RUSAGE_CHILDREN) - cpu0;
    // `fd00:b0::2 : xmt/rcv/%loss = 5/5/0%, ...` per target on stderr.
    let ok: usize = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.split("xmt/rcv/%loss = ").nth(1))
        .filter_map(|v| v.split('/').nth(1)?.parse::<usize>().ok())
        .sum();
    (
        ok as f64 / secs,
        used * 1e6 / (addrs.len() * rounds) as f64,
        ok,
    )
}

/// The monitor's steady work for `addrs` as slots checked every `every`: each
/// slot's ping and TCP connect at its own offset; the share of one core used.
fn steady(
    rt: &tokio::runtime::Runtime,
    addrs: &[Ipv6Addr],
    every: Duration,
    seconds: u64,
) -> (f64, usize) {
    rt.block_on(async {
        let p = Arc::new(Pinger::new().expect("an ICMPv6 socket"));
        let (cpu0, t0) = (cpu(libc::RUSAGE_THREAD), Instant::now());
        let n = addrs.len();
        let mut tick = tokio::time::interval(every / n as u32);
        let mut done = tokio::task::JoinSet::new();
        let mut i = 0usize;
        let mut ok = 0;
        while t0.elapsed() < Duration::from_secs(seconds) {
            tick.tick().await;
            let (p, a) = (Arc::clone(&p), addrs[i % n]);
            i += 1;
            done.spawn(async move {
                let ping = p.ping(a, Duration::from_secs(1)).await.is_ok();
                let tcp = tokio::time::timeout(
                    Duration::from_secs(1),
                    tokio::net::TcpStream::connect((a, 22)),
                )
                .await
                .is_ok_and(|c| c.is_ok());
                ping && tcp
            });
            while let Some(r) = done.try_join_next() {
                ok += usize::from(r.unwrap_or(false));
            }
        }
        while let Some(r) = done.join_next().await {
            ok += usize::from(r.unwrap_or(false));
        }
        let used = cpu(libc::RUSAGE_THREAD) - cpu0;
        (used / t0.elapsed().as_secs_f64(), ok)
    })
}

fn main() {
    if !is_root("monitor bench") || !have("monitor bench", &["fping", "ip"]) {
        return;
    }
    let count = arg("--targets", 1000) as usize;
    let rounds = arg("--rounds", 5) as usize;
    let seconds = arg("--seconds", 30);
    let addrs = addresses(count);
    let _spaces = targets(&addrs);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "monitor: ICMPv6 echo to {count} targets in namespaces, {rounds} round(s) each (best of 3)"
    );
    let best = |f: &dyn Fn() -> (f64, f64, usize)| {
        (0..3)
            .map(|_| f())
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap()
    };
    let ours = best(&|| pirack(&rt, &addrs, rounds));
    let theirs = best(&|| fping(&addrs, rounds));
    println!(
        "{:<10} {:>12} {:>14} {:>9}",
        "", "replies/s", "CPU µs/probe", "replies"
    );
    println!(
        "{:<10} {:>12.0} {:>14.1} {:>9}",
        "pirack", ours.0, ours.1, ours.2
    );
    println!(
        "{:<10} {:>12.0} {:>14.1} {:>9}",
        "fping 5.1", theirs.0, theirs.1, theirs.2
    );
    println!(
        "pirack ÷ fping: rate {:.2}, CPU per probe {:.2} (fping's ÷ pirack's)",
        ours.0 / theirs.0,
        theirs.1 / ours.1
    );
    let (share, ok) = steady(&rt, &addrs, Duration::from_secs(10), seconds);
    println!(
        "{count} slots checked every 10 s (ping + TCP connect to port 22) for {seconds} s: \
         {:.2} % of one core, {ok} checks passed",
        share * 100.0
    );
}
