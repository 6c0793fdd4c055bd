//! Customers' ANAME names kept fresh by a running `pirack serve`: 1,000 names in a
//! customer's zone, each following its own target on a second BIND (AAAA and A,
//! TTL `--ttl`), the site's zones on a first. After every name is resolved and
//! published, the controller's CPU is measured over `--seconds` while it
//! refreshes each name every TTL, beside the CPU of the BIND answering those
//! questions (the peer's share of the same work) and the controller idle.
//!
//!     cargo bench --bench aname -- [--names 1000] [--ttl 10] [--seconds 60]

mod common;
#[path = "../tests/common/dns.rs"]
#[allow(dead_code)]
mod peer;

use common::{arg, free_addr, have, is_root, request, serve, sh};
use std::process::Command;
use std::time::{Duration, Instant};

/// CPU seconds process `pid` has used (user + system).
fn cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th of the line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    f.iter().sum::<f64>() / tick
}

fn pid_of(server: &peer::Server) -> u32 {
    std::fs::read_to_string(server.dir.join("named.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The counter `name{result="…"}` from the metrics text, summed over results.
fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn main() {
    if std::env::args().any(|a| a == "--list") || !is_root("aname bench") {
        return;
    }
    if !have("aname bench (bind9)", &["named"]) {
        return;
    }
    let names = arg("--names", 1000) as usize;
    let ttl = arg("--ttl", 10);
    let seconds = arg("--seconds", 60);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let site = peer::bind(
        &d.join("site"),
        &[
            ("pi.example.net", ""),
            ("ip6.arpa", ""),
            ("acme.example", ""),
        ],
    );
    let records: String = (0..names)
        .map(|i| {
            format!(
                "t{i} {ttl} IN AAAA 2001:db8:1::{i:x}\nt{i} {ttl} IN A 198.51.{}.{}\n",
                100 + i / 250,
                i % 250 + 1
            )
        })
        .collect();
    let targets = peer::bind(&d.join("targets"), &[("example.org", &records)]);

    for sub in ["hardware", "switch-profiles", "images"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::copy(
        "switch-profiles/generic.yaml",
        d.join("switch-profiles/generic.yaml"),
    )
    .unwrap();
    let inventory = d.join("hardware/shelf-96.yaml");
    let yaml = std::fs::read_to_string("hardware/shelf-96.yaml")
        .unwrap()
        .replace(
            "  - name: acme\n",
            "  - name: acme\n    zones: [acme.example]\n",
        )
        .replace(
            "export_root: /export",
            &format!("export_root: {}", d.join("export").display()),
        );
    std::fs::write(&inventory, yaml).unwrap();
    peer::add_to(&inventory, &site);
    let yaml = std::fs::read_to_string(&inventory).unwrap()
        + &format!(
            "  reverse_zones: [ip6.arpa]\n  aname:\n    resolvers: [{{ address: 127.0.0.1, port: {} }}]\n    allow: ['*.example.org']\n    floor_s: 1\n",
            targets.addr.port()
        );
    std::fs::write(&inventory, yaml).unwrap();
    let db = format!("sqlite://{}/state.db", d.display());
    let pirack = |args: &[&str]| sh(Command::new(env!("CARGO_BIN_EXE_pirack")).args(args));
    let token = pirack(&["token", "create", "--db", &db, "--name", "b", "--admin"])
        .trim()
        .to_string();
    let addr = free_addr();
    let server = serve(&inventory, d, &db, addr, &[]);
    let ctl = server.0.id();

    let window = Duration::from_secs(seconds.min(10));
    let before = cpu(ctl);
    std::thread::sleep(window);
    let idle = (cpu(ctl) - before) / window.as_secs_f64();

    let started = Instant::now();
    for i in 0..names {
        let body =
            format!(r#"{{"owner":"acme","aname":{{"target":"t{i}.example.org","ttl":300}}}}"#);
        let path = format!("/v1/names/n{i}.acme.example");
        let (status, answer) = request(addr, "PUT", &path, &token, &body);
        assert_eq!(status, 200, "{answer}");
    }
    let created = started.elapsed();
    let last = format!("n{}.acme.example", names - 1);
    while peer::dig(&site, &last, "A").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "not published"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let published = started.elapsed();
    // Settle: the first round of refreshes after creation has passed.
    std::thread::sleep(Duration::from_secs(ttl + 2));

    let metrics = |_: ()| request(addr, "GET", "/metrics", &token, "").1;
    let (c0, n0, r0) = (
        cpu(ctl),
        cpu(pid_of(&targets)),
        counter(&metrics(()), "pirack_aname_refreshes_total"),
    );
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let span = t0.elapsed().as_secs_f64();
    let m = metrics(());
    let refreshes = counter(&m, "pirack_aname_refreshes_total") - r0;
    let pirack_cpu = (cpu(ctl) - c0) / span;
    let named_cpu = (cpu(pid_of(&targets)) - n0) / span;
    let errors: f64 = m
        .lines()
        .filter(|l| l.starts_with("pirack_aname_refreshes_total{result=\"error\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    drop(server);

    println!("ANAME refresh: {names} names, target TTL {ttl} s, {seconds} s measured");
    println!(
        "  created through the API in {:.2} s ({:.0}/s); all published after {:.2} s",
        created.as_secs_f64(),
        names as f64 / created.as_secs_f64(),
        published.as_secs_f64()
    );
    println!(
        "  refreshes: {refreshes:.0} ({:.0}/s, {} failed over the run)",
        refreshes / span,
        errors as u64
    );
    println!(
        "  pirack serve: {:.2} % of one core ({:.2} % idle, {:.1} µs per refresh)",
        pirack_cpu * 100.0,
        idle * 100.0,
        (pirack_cpu - idle).max(0.0) * span * 1e6 / refreshes.max(1.0)
    );
    println!(
        "  BIND answering the targets: {:.2} % of one core; pirack/BIND = {:.2}",
        named_cpu * 100.0,
        pirack_cpu / named_cpu.max(1e-9)
    );
}
