//! The proxy under load on loopback, side by side with the peers a hosting
//! company would otherwise run: HAProxy (TLS routed by `req_ssl_sni`, HTTP by
//! Host, `send-proxy`) and sniproxy (no PROXY protocol). One nginx stands for
//! the Pis, in a namespace of its own reached over a veth pair and IPv6, with
//! ports that expect a PROXY v1 header and ports that do not; pirack sends v1 when compared with HAProxy and nothing when compared
//! with sniproxy, so each pair does the same work. wrk drives each in turn:
//! new connections (TLS and plain HTTP, `Connection: close`), requests on kept
//! connections, and the download rate of a large file (needs root, nginx,
//! haproxy, sniproxy, wrk and openssl).
//!
//!     cargo bench --bench proxy -- [--seconds 5] [--rounds 2] [--threads N (pirack's; one per CPU)]

mod common;

use common::{arg, free_addr, have, is_root, sh};
use pirack_lab::testbed::netns::{Netns, ip_batch};
use pirack_lab::testbed::proc::Proc;
use pirack_proxy::routes::{Protocol, Route};
use pirack_proxy::{Config, Shared};
use std::net::{Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The name every client asks for: one that resolves to 127.0.0.1 everywhere,
/// so wrk sends it as the TLS server name.
const NAME: &str = "localhost";
/// The Pi's address in its namespace, and the host's end of the link.
const PI: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xbe, 0, 0, 0, 0, 0, 2);
const HOST: &str = "fd00:be::1/64";
/// The large file's size.
const BIG_MIB: usize = 64;

/// nginx's ports on the Pi's address: with a PROXY v1 header expected, and without.
struct Backends {
    http_pp: u16,
    tls_pp: u16,
    http: u16,
    tls: u16,
}

/// The Pi's namespace, its eth0 one end of a veth pair whose other end is here.
fn pi_link() -> Netns {
    let pid = std::process::id();
    let ns = Netns::new(&format!("pb-pi-{pid}")).expect("ip netns add");
    let host = format!("pbh-{}", pid % 100_000);
    ip_batch(
        None,
        &format!(
            "link add {host} type veth peer name eth0 netns {ns}
             addr add {HOST} dev {host} nodad
link set {host} up
",
            ns = ns.name()
        ),
    )
    .expect("the host's end of the link");
    ip_batch(
        Some(ns.name()),
        &format!(
            "addr add {PI}/64 dev eth0 nodad
link set eth0 up
link set lo up
"
        ),
    )
    .expect("the Pi's end of the link");
    ns
}

/// `cmd` started as `name` (its output in `d`), once it listens on TCP `port`.
fn peer(name: &'static str, cmd: &mut Command, d: &Path, port: u16) -> Proc {
    let mut p = Proc::spawn(name, cmd, &d.join(format!("{name}.log")), false)
        .unwrap_or_else(|e| panic!("{e}"));
    p.wait_listening("tcp", port, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    p
}

/// The Pis' stand-in: nginx in `ns` serving a small page and a large file.
fn nginx(ns: &Netns, d: &Path, b: &Backends) -> Proc {
    let dd = d.display();
    std::fs::create_dir_all(d.join("www")).unwrap();
    std::fs::write(d.join("www/index.html"), "hello from a Pi\n").unwrap();
    std::fs::write(d.join("www/big"), vec![7u8; BIG_MIB << 20]).unwrap();
    let conf = format!(
        "daemon off; master_process off; pid {dd}/nginx.pid; error_log {dd}/error.log; worker_processes 1;\n\
         worker_rlimit_nofile 65536; events {{ worker_connections 8192; }}\n\
         http {{ access_log off; sendfile on; keepalive_requests 1000000;\n\
           client_body_temp_path {dd}; proxy_temp_path {dd}; fastcgi_temp_path {dd}; uwsgi_temp_path {dd}; scgi_temp_path {dd};\n\
           ssl_certificate {dd}/cert.pem; ssl_certificate_key {dd}/key.pem; ssl_session_cache off; ssl_session_tickets off;\n\
           server {{ root {dd}/www; listen [{PI}]:{} proxy_protocol; listen [{PI}]:{} ssl proxy_protocol;\n\
                     listen [{PI}]:{}; listen [{PI}]:{} ssl; }}\n\
         }}\n",
        b.http_pp, b.tls_pp, b.http, b.tls
    );
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    let mut cmd = ns.command("nginx");
    cmd.arg("-c").arg(d.join("nginx.conf"));
    cmd.arg("-e").arg(d.join("error.log"));
    peer("nginx", &mut cmd, d, b.tls)
}

/// HAProxy routing TLS by server name and HTTP by Host to the PROXY ports.
fn haproxy(d: &Path, http: u16, tls: u16, b: &Backends) -> Proc {
    let conf = format!(
        "global\n  maxconn 8000\n\
         defaults\n  timeout connect 3s\n  timeout client 300s\n  timeout server 300s\n\
         frontend tls\n  mode tcp\n  bind 127.0.0.1:{tls}\n  tcp-request inspect-delay 10s\n\
           tcp-request content accept if {{ req_ssl_hello_type 1 }}\n\
           use_backend pi_tls if {{ req_ssl_sni -i {NAME} }}\n\
         backend pi_tls\n  mode tcp\n  server pi [{PI}]:{} send-proxy\n\
         frontend http\n  mode http\n  bind 127.0.0.1:{http}\n\
           use_backend pi_http if {{ hdr_dom(host) -i {NAME} }}\n\
         backend pi_http\n  mode http\n  server pi [{PI}]:{} send-proxy\n",
        b.tls_pp, b.http_pp
    );
    std::fs::write(d.join("haproxy.cfg"), conf).unwrap();
    let mut cmd = Command::new("haproxy");
    cmd.arg("-db").arg("-f").arg(d.join("haproxy.cfg"));
    peer("haproxy", &mut cmd, d, tls)
}

/// sniproxy routing TLS by server name and HTTP by Host to the plain ports.
fn sniproxy(d: &Path, http: u16, tls: u16, b: &Backends) -> Proc {
    let dd = d.display();
    let conf = format!(
        "user nobody\npidfile {dd}/sniproxy.pid\nerror_log {{\n filename {dd}/sniproxy.log\n}}\n\
         listen 127.0.0.1:{http} {{\n proto http\n table http\n}}\n\
         listen 127.0.0.1:{tls} {{\n proto tls\n table tls\n}}\n\
         table http {{\n ^{NAME}$ [{PI}]:{}\n}}\ntable tls {{\n ^{NAME}$ [{PI}]:{}\n}}\n",
        b.http, b.tls
    );
    std::fs::write(d.join("sniproxy.conf"), conf).unwrap();
    let mut cmd = Command::new("sniproxy");
    cmd.arg("-f").arg("-c").arg(d.join("sniproxy.conf"));
    peer("sniproxy", &mut cmd, d, tls)
}

/// pirack's proxy in this process, its route to the Pi with `protocol`
/// (listening once `start` returns).
fn pirack(http: u16, tls: u16, backend_ports: (u16, u16), protocol: Protocol, threads: usize) {
    let config = Config {
        threads,
        http: vec![SocketAddr::from(([127, 0, 0, 1], http))],
        tls: vec![SocketAddr::from(([127, 0, 0, 1], tls))],
        backend_ports,
        ..Config::default()
    };
    let shared = Shared::new(config, pirack_proxy::metrics::Metrics::default());
    shared.routes.set(&[Route {
        backend: "pi".into(),
        names: vec![NAME.into()],
        addrs: vec![PI],
        protocol,
    }]);
    pirack_proxy::listen::start(shared).expect("the proxy listens");
}

/// One wrk run's figures.
#[derive(Clone, Copy, Default)]
struct Figures {
    rps: f64,
    p99_ms: f64,
    mib_s: f64,
    /// The proxy's CPU per request (per MiB for downloads), µs.
    cpu_us: f64,
}

/// wrk's figures for `url` with `conns` connections.
fn wrk(url: &str, conns: u32, seconds: u64, close: bool) -> Figures {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t1",
        &format!("-c{conns}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if close {
        cmd.args(["-H", "Connection: close"]);
    }
    let out = sh(cmd.arg(url));
    assert!(
        !out.contains("Non-2xx") && !out.contains("Socket errors: connect"),
        "wrk {url} saw errors:\n{out}"
    );
    let field = |label: &str| -> String {
        out.lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("0")
            .to_string()
    };
    Figures {
        rps: number(&field("Requests/sec:")).0,
        p99_ms: match number(&field("99%")) {
            (n, "us") => n / 1000.0,
            (n, "s") => n * 1000.0,
            (n, _) => n,
        },
        mib_s: match number(&field("Transfer/sec:")) {
            (n, "KB") => n / 1024.0,
            (n, "GB") => n * 1024.0,
            (n, "B") => n / 1048576.0,
            (n, _) => n,
        },
        cpu_us: 0.0,
    }
}

/// The CPU time (user and system) `pid` has used; this process's without one.
fn cpu(pid: Option<u32>) -> Duration {
    match pid {
        None => {
            // SAFETY: getrusage writes only into the struct it is given.
            let mut u: libc::rusage = unsafe { std::mem::zeroed() };
            unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
            let tv = |t: libc::timeval| {
                Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
            };
            tv(u.ru_utime) + tv(u.ru_stime)
        }
        Some(pid) => {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The fields after the command's closing parenthesis; utime and stime are 14 and 15.
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let ticks: u64 = rest
                .split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|t| t.parse::<u64>().ok())
                .sum();
            // SAFETY: sysconf has no preconditions.
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
            Duration::from_micros(ticks * 1_000_000 / hz)
        }
    }
}

/// wrk's `812.00us`, `3.20ms`, `1.10GB`: the number and its unit.
fn number(v: &str) -> (f64, &str) {
    let at = v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len());
    (v[..at].parse().unwrap_or(f64::NAN), &v[at..])
}

/// One way of loading a proxy.
struct Scenario {
    label: &'static str,
    tls: bool,
    /// A new connection per request (`Connection: close`).
    close: bool,
    /// The large file, measured in MiB/s, not requests.
    download: bool,
}

const SCENARIOS: [Scenario; 5] = [
    Scenario {
        label: "TLS, new connection per request",
        tls: true,
        close: true,
        download: false,
    },
    Scenario {
        label: "HTTP, new connection per request",
        tls: false,
        close: true,
        download: false,
    },
    Scenario {
        label: "TLS, kept connections",
        tls: true,
        close: false,
        download: false,
    },
    Scenario {
        label: "HTTP, kept connections",
        tls: false,
        close: false,
        download: false,
    },
    Scenario {
        label: "TLS, 64 MiB downloads",
        tls: true,
        close: false,
        download: true,
    },
];

impl Scenario {
    /// What a run of this scenario is counted in: requests/s or MiB/s.
    fn rate(&self, f: &Figures) -> f64 {
        if self.download { f.mib_s } else { f.rps }
    }
}

/// Every scenario against the proxy on ports `http` and `tls`, with the CPU
/// the proxy (`pid`, or this process) used for each.
fn run(pid: Option<u32>, http: u16, tls: u16, seconds: u64) -> [Figures; 5] {
    SCENARIOS.map(|sc| {
        let url = match (sc.tls, sc.download) {
            (true, true) => format!("https://{NAME}:{tls}/big"),
            (true, false) => format!("https://{NAME}:{tls}/"),
            (false, _) => format!("http://{NAME}:{http}/"),
        };
        let conns = if sc.download { 4 } else { 32 };
        let before = cpu(pid);
        let mut f = wrk(&url, conns, seconds, sc.close);
        let used = (cpu(pid) - before).as_secs_f64() * 1e6;
        f.cpu_us = used / (sc.rate(&f) * seconds as f64);
        f
    })
}

/// The better of each figure over the rounds (the least disturbed run).
fn best(rounds: &[[Figures; 5]]) -> [Figures; 5] {
    let mut out = [Figures::default(); 5];
    for (i, o) in out.iter_mut().enumerate() {
        o.rps = rounds.iter().map(|r| r[i].rps).fold(0.0, f64::max);
        o.mib_s = rounds.iter().map(|r| r[i].mib_s).fold(0.0, f64::max);
        o.p99_ms = rounds
            .iter()
            .map(|r| r[i].p99_ms)
            .fold(f64::INFINITY, f64::min);
        o.cpu_us = rounds
            .iter()
            .map(|r| r[i].cpu_us)
            .fold(f64::INFINITY, f64::min);
    }
    out
}

fn compare(title: &str, ours: &str, theirs: &str, a: &[Figures; 5], b: &[Figures; 5]) {
    println!("\n{title} (ratios: pirack's advantage, above 1 is better)");
    println!(
        "{:<34} {:>9} {:>9} {:>5}  {:>7} {:>7} {:>5}  {:>7} {:>7} {:>5}",
        "", ours, theirs, "ratio", "p99 ms", "", "ratio", "CPU µs", "", "ratio"
    );
    for (i, sc) in SCENARIOS.iter().enumerate() {
        let (x, y) = (sc.rate(&a[i]), sc.rate(&b[i]));
        println!(
            "{:<34} {:>9.0} {:>9.0} {:>5.2}  {:>7.2} {:>7.2} {:>5.2}  {:>7.1} {:>7.1} {:>5.2}",
            sc.label,
            x,
            y,
            x / y,
            a[i].p99_ms,
            b[i].p99_ms,
            b[i].p99_ms / a[i].p99_ms,
            a[i].cpu_us,
            b[i].cpu_us,
            b[i].cpu_us / a[i].cpu_us,
        );
    }
    println!("(req/s, or MiB/s for downloads; CPU per request, or per MiB for downloads)");
}

fn main() {
    if !is_root("proxy bench") {
        return;
    }
    if !have(
        "proxy bench",
        &["nginx", "haproxy", "sniproxy", "wrk", "openssl"],
    ) {
        return;
    }
    let seconds = arg("--seconds", 5);
    let rounds = arg("--rounds", 2) as usize;
    let threads = arg("--threads", Config::default().threads as u64) as usize;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    pirack_lab::testbed::self_signed(d, NAME, &format!("DNS:{NAME}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let b = Backends {
        http_pp: 80,
        tls_pp: 443,
        http: 8080,
        tls: 8443,
    };
    let ns = pi_link();
    let _nginx = nginx(&ns, d, &b);
    let ports = |_| (free_addr().port(), free_addr().port());
    let [pv1, pv0, hap, snip]: [(u16, u16); 4] = std::array::from_fn(ports);
    pirack(pv1.0, pv1.1, (b.http_pp, b.tls_pp), Protocol::V1, threads);
    pirack(pv0.0, pv0.1, (b.http, b.tls), Protocol::Off, threads);
    let haproxy = haproxy(d, hap.0, hap.1, &b);
    let sniproxy = sniproxy(d, snip.0, snip.1, &b);
    let pids = [
        None,
        Some(haproxy.child.id()),
        None,
        Some(sniproxy.child.id()),
    ];

    println!(
        "proxy: wrk -t1 ({seconds} s per run, best of {rounds} rounds, taken in turn), \
         nginx (1 worker) in a namespace behind each; 32 connections, 4 for downloads; \
         pirack with {threads} threads"
    );
    let mut results: [Vec<[Figures; 5]>; 4] = Default::default();
    for _ in 0..rounds {
        for (i, (http, tls)) in [pv1, hap, pv0, snip].into_iter().enumerate() {
            results[i].push(run(pids[i], http, tls, seconds));
        }
    }
    let [pirack_v1, haproxy_v1, pirack_off, sni] = results.map(|r| best(&r));
    compare(
        "PROXY v1 to the backend: pirack vs HAProxy 2.6",
        "pirack",
        "haproxy",
        &pirack_v1,
        &haproxy_v1,
    );
    compare(
        "No PROXY header: pirack (off) vs sniproxy",
        "pirack",
        "sniproxy",
        &pirack_off,
        &sni,
    );
}
