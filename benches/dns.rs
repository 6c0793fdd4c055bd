//! Publishing names against BIND 9 on loopback, beside dnsperf in the same run:
//! a 96-slot site (AAAA, A via the proxy, PTR) reconciled into empty zones, then
//! again with nothing to do; and signed single-name updates per second (each a
//! create with its prerequisites, 64 in flight on one TCP connection), pirack's
//! client against `dnsperf -u` sending the same shape of update over TCP and UDP.
//!
//!     cargo bench --bench dns -- [--names 4000]

mod common;
#[path = "../tests/common/dns.rs"]
#[allow(dead_code)]
mod peer;

use common::{arg, have};
use pirack_core::dns::drift::Change;
use pirack_core::dns::names::reverse_zone;
use pirack_core::dns::want::Owned;
use pirack_core::dns::{Data, Record};
use pirack_core::inventory;
use pirack_core::plan::{Ledger, plan};
use pirack_core::switch::Profiles;
use pirack_dns::ResponseCode;
use pirack_dns::reconcile::{connect, reconcile};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

const INVENTORY: &str = "hardware/shelf-96.yaml";
const ZONE: &str = "pi.example.net";
const IN_FLIGHT: usize = 64;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !have("dns bench (bind9, dnsperf)", &["named", "dnsperf"]) {
        return;
    }
    let names = arg("--names", 4000) as usize;
    let tmp = tempfile::tempdir().unwrap();
    let profiles = Profiles::load_dir(Path::new("switch-profiles")).unwrap();
    let shelf = inventory::load(Path::new(INVENTORY), &profiles.names()).unwrap();
    let reverse = reverse_zone(shelf.shelves[0].ipv6_prefix);
    let reverse = reverse.trim_end_matches('.');
    let bind = peer::bind(&tmp.path().join("bind"), &[(ZONE, ""), (reverse, "")]);
    let hw = tmp.path().join("hardware");
    std::fs::create_dir_all(&hw).unwrap();
    let copy = hw.join("shelf-96.yaml");
    std::fs::copy(INVENTORY, &copy).unwrap();
    peer::add_to(&copy, &bind);
    let site = inventory::load(&copy, &profiles.names()).unwrap();
    let dns = site.dns.clone().unwrap();
    let ledger = Ledger::load(&Ledger::path_for(Path::new(INVENTORY))).unwrap();
    let (plan, _) = plan(&site, &ledger).unwrap();
    let wanted = pirack_core::dns::want::slots(&dns, &plan.slots);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    println!("DNS against BIND 9 on loopback: {} slots", plan.slots.len());
    let started = Instant::now();
    let first = rt
        .block_on(reconcile(&dns, &site.name, &wanted, true))
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    let applied: usize = first.zones.iter().map(|z| z.applied).sum();
    assert_eq!(first.error(), None);
    println!(
        "reconcile into empty zones: {applied} names ({} records) in {:.3} s",
        applied + plan.slots.len(),
        took
    );
    let started = Instant::now();
    let again = rt
        .block_on(reconcile(&dns, &site.name, &wanted, true))
        .unwrap();
    let in_sync: usize = again.zones.iter().map(|z| z.drift.in_sync).sum();
    println!(
        "reconcile again, nothing to do: {in_sync} names in sync in {:.3} s",
        started.elapsed().as_secs_f64()
    );

    let ours = rt.block_on(updates(&dns, &site.name, names));
    println!("pirack: {names} signed creates over TCP, {IN_FLIGHT} in flight: {ours:.0} /s");
    for mode in ["tcp", "udp"] {
        let theirs = dnsperf(&bind, tmp.path(), names, mode);
        println!(
            "dnsperf -u -m {mode}: {theirs:.0} /s; pirack / dnsperf {:.2}x",
            ours / theirs
        );
    }
}

/// Updates per second of `n` creates, each of a name of its own.
async fn updates(dns: &inventory::SiteDns, site: &str, n: usize) -> f64 {
    let server = Arc::new(connect(dns).await.unwrap());
    let zone = format!("{ZONE}.");
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for i in 0..n {
        if tasks.len() >= IN_FLIGHT {
            tasks.join_next().await.unwrap().unwrap();
        }
        let name = format!("bench-{i}.{zone}");
        let change = Change::Create {
            owned: Owned {
                holder: format!("bench/{i}"),
                records: vec![Record {
                    name: name.clone(),
                    ttl: 300,
                    data: Data::Aaaa(format!("2001:db8::{:x}", i + 1).parse().unwrap()),
                }],
                name,
            },
        };
        let message = pirack_dns::wire::update(&zone, site, &[&change]).unwrap();
        let server = Arc::clone(&server);
        tasks.spawn(async move {
            let code = server.update(message).await.unwrap();
            assert_eq!(code, ResponseCode::NoError, "{code}");
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// dnsperf's updates per second for `n` creates of the same shape.
fn dnsperf(bind: &peer::Server, dir: &Path, n: usize, mode: &str) -> f64 {
    let mut input = String::new();
    for i in 0..n {
        input += &format!(
            "{ZONE}\nprohibit perf-{mode}-{i}\nadd perf-{mode}-{i} 300 AAAA 2001:db8::1:{:x}\n\
             add _pirack.perf-{mode}-{i} 300 TXT \"heritage=pirack,site=bench,for=perf\"\nsend\n",
            i + 1
        );
    }
    let file = dir.join(format!("updates-{mode}.txt"));
    std::fs::write(&file, input).unwrap();
    let out = Command::new("dnsperf")
        .args(["-u", "-m", mode, "-s", "127.0.0.1", "-p"])
        .arg(bind.addr.port().to_string())
        .arg("-d")
        .arg(&file)
        .args(["-n", "1", "-q", &IN_FLIGHT.to_string(), "-y"])
        .arg(format!("hmac-sha256:{}:{}", peer::KEY, peer::SECRET))
        .output()
        .expect("dnsperf runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.contains("per second"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("dnsperf said: {text}"))
}
