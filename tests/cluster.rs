//! Controllers with split roles on one PostgreSQL store: rack controller A
//! serves the example shelf, rack controller B stands by for the same
//! fileserver, region controller R serves the API and leads the region.
//! Operations asked of R are queued for the rack controller holding the
//! shelves and run there; what A writes reaches R's mirror and event stream
//! live. SIGKILL A: B takes the shelves and R's operations go to B. Cut B off
//! from the database (a partition that drops nothing, only delays it
//! forever): B gives its shelves up before its lease lapses, and C takes them
//! only after; never two holders. SIGKILL R while R2 waits: R2 leads, and
//! neither the disk alert nor a DNS update R made is made again.
//!
//! A site on two fileservers has a rack controller for each: each serves its
//! own shelf, builds its roots on its own disk, and runs what the others
//! queue for its slots; neither touches the other's.

mod common;

use common::controller::start_on_with;
use common::http::{get, post};
use common::{is_root, until};
use pirack_core::dns::names::reverse_zone;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const ZONE: &str = "pi.example.net";

fn cluster(addr: SocketAddr, token: &str) -> serde_json::Value {
    get(addr, "/v1/cluster", Some(token)).json()
}

/// The live holder's pid of lease `name`, if any.
fn holder(c: &serde_json::Value, name: &str) -> Option<u64> {
    c["leases"]
        .as_array()?
        .iter()
        .find(|l| l["name"] == name && l["live"] == true)
        .and_then(|l| l["pid"].as_u64())
}

/// Provisions `slot` for `owner` through the API at `at`; the operation as
/// it ended.
fn provision(at: SocketAddr, token: &str, slot: &str, owner: &str) -> serde_json::Value {
    let body = format!(r#"{{"image":"tiny-1","owner":"{owner}","slot":"{slot}"}}"#);
    let op = post(at, "/v1/slots", Some(token), &body).json();
    let id = op["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{op}"))
        .to_string();
    until("the build", Duration::from_secs(60), || {
        let now = get(at, &format!("/v1/operations/{id}"), Some(token)).json();
        (now["status"] != "running").then_some(now)
    })
}

fn answers(addr: SocketAddr) -> bool {
    common::http::try_request(addr, "GET", "/healthz", None, None).is_ok_and(|r| r.status == 200)
}

/// Milliseconds into the UTC day of a log line's timestamp
/// (`2026-12-04T09:56:21.531946Z ...`).
fn day_ms(line: &str) -> i64 {
    let time = &line[11..23];
    let (h, m, s) = (&time[0..2], &time[3..5], &time[6..12]);
    let secs: f64 = s.parse().unwrap();
    (h.parse::<i64>().unwrap() * 3600 + m.parse::<i64>().unwrap() * 60) * 1000
        + (secs * 1000.0) as i64
}

#[test]
fn rack_and_region_controllers_share_the_site_and_fail_over_apart() {
    let test = "cluster";
    if !is_root(test) {
        return;
    }
    if !common::have(test, "named") || !common::have(test, "dig") {
        return;
    }
    let Some(db) = common::postgres(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // The region's leader watches the disks: under 99 % free (any build
    // machine's) is an alert, told once to the hook whoever leads.
    let hook = common::sink::Http::start(None);
    let monitor = format!(
        "\nmonitor:\n  checks: {{ interval_s: 1 }}\n  routes: [ 'ntfy://{}/noc' ]\n  disk_warn_pct: 99\n",
        hook.addr
    );
    let inventory = common::example_site_in(tmp.path(), None, &monitor);
    // And publishes the slots' names on BIND.
    let reverse = reverse_zone("2001:db8:0:84:1000:1::/96".parse().unwrap());
    let zones = [(ZONE, ""), (reverse.trim_end_matches('.'), "")];
    let bind = common::dns::bind(&tmp.path().join("bind"), &zones);
    common::dns::add_to(&inventory, &bind);
    let args = ["--lease-s", "3", "--role", "rack", "--no-proxy"];
    let mut rig = start_on_with(tmp, &inventory, false, db.url.clone(), &args);
    let (a, t) = (rig.addr, rig.admin.clone());
    let a_pid = u64::from(rig.pid());
    let (b, b_addr) = rig.standby("rack-b", &[]);
    let region = [("--role", "region")];
    let (r, r_addr) = rig.another("region", &region, &[]);
    let dir = rig.dir.clone();
    let logs = || -> String {
        ["serve", "rack-b", "region", "rack-c", "region-2"]
            .iter()
            .map(|f| {
                let log = std::fs::read_to_string(dir.join(format!("{f}.log"))).unwrap_or_default();
                format!("== {f}\n{log}")
            })
            .collect()
    };
    let wait = |what: &str, within: u64, done: &mut dyn FnMut() -> bool| {
        let started = Instant::now();
        while !done() {
            if started.elapsed() > Duration::from_secs(within) {
                panic!("{what}: not within {within} s\n{}", logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait("R to serve", 30, &mut || answers(r_addr));
    wait("the three to say so", 20, &mut || {
        let c = cluster(r_addr, &t);
        c["controllers"].as_array().is_some_and(|m| m.len() == 3)
            && holder(&c, "region") == Some(u64::from(r.0.id()))
    });
    let c = cluster(r_addr, &t);
    assert_eq!(holder(&c, "rack:fileserver"), Some(a_pid), "{c}");
    let roles: Vec<(String, String)> = c["controllers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().into(),
                m["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    for want in [
        ("rack", "serving"),
        ("rack", "standby"),
        ("region", "serving"),
    ] {
        assert!(
            roles.contains(&(want.0.into(), want.1.into())),
            "{want:?}: {c}"
        );
    }
    assert!(!answers(b_addr), "a standby serves nothing");

    // Asked of the region, run by the rack controller; R sees it live.
    // (Live only: no `after`, so nothing is replayed from the store.)
    let streamed = dir.join("stream.txt");
    let mut stream = common::Child(
        std::process::Command::new("curl")
            .args(["-sN", "--max-time", "120", "-H"])
            .arg(format!("Authorization: Bearer {t}"))
            .arg(format!("http://{r_addr}/v1/events/stream?slot=A-07"))
            .stdout(std::fs::File::create(&streamed).unwrap())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let provision = |slot: &str, owner: &str| provision(r_addr, &t, slot, owner);
    let done = provision("A-07", "initech");
    assert_eq!(done["status"], "succeeded", "{done}\n{}", logs());
    let a_log = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    assert!(a_log.contains("queued by another controller"), "{a_log}");
    let slot = get(r_addr, "/v1/slots/A-07", Some(&t)).json();
    assert_eq!(
        slot["state"], "ready",
        "R's mirror follows A's writes: {slot}"
    );
    wait("R to stream A's events live", 10, &mut || {
        std::fs::read_to_string(&streamed).is_ok_and(|s| s.contains("event: root_built"))
    });
    let _ = stream.0.kill();
    // Backups read the roots on the rack controller's disk: R says so.
    let r_backup = post(r_addr, "/v1/slots/A-07/backups", Some(&t), "{}");
    assert_eq!(r_backup.status, 503, "{}", r_backup.body);
    assert!(
        r_backup.body.contains("rack controller"),
        "{}",
        r_backup.body
    );

    // A is killed: B takes the shelves, and R's next operation runs on B.
    rig.kill();
    wait("B to take the shelves", 10, &mut || answers(b_addr));
    let done = provision("A-08", "initech");
    assert_eq!(done["status"], "succeeded", "{done}\n{}", logs());
    let c = cluster(r_addr, &t);
    assert_eq!(
        holder(&c, "rack:fileserver"),
        Some(u64::from(b.0.id())),
        "{c}"
    );

    // B is cut off from the database while C stands by: B gives the shelves
    // up (two thirds of a lease unrenewed), C takes them once the lease has
    // lapsed, never before.
    let mut b = b;
    let path = common::partition::Path::to(postgres_addr(&db.url));
    let via = db.url.replacen("127.0.0.1", &path.addr.to_string(), 1);
    let (mut d, d_addr) = rig.another("rack-d", &[("--db", &via)], &["--standby"]);
    wait("D to stand by", 20, &mut || {
        cluster(r_addr, &t)["controllers"]
            .to_string()
            .contains("\"standby\"")
    });
    // D, not B, is the one to cut: B holds the shelves on a direct link.
    b.0.kill().unwrap();
    let _ = b.0.wait();
    wait("D to take the shelves", 10, &mut || answers(d_addr));
    let (mut cc, c_addr) = rig.standby("rack-c", &[]);
    wait("C to stand by", 20, &mut || {
        let c = cluster(r_addr, &t);
        c["controllers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["pid"].as_u64() == Some(u64::from(cc.0.id())) && m["state"] == "standby")
    });
    path.cut();
    wait("C to take the shelves", 20, &mut || answers(c_addr));
    let status = until("D to stop", Duration::from_secs(30), || {
        d.0.try_wait().unwrap()
    });
    assert!(!status.success(), "D stops as failed: {status}");
    let d_log = std::fs::read_to_string(dir.join("rack-d.log")).unwrap();
    let gave_up = d_log
        .lines()
        .find(|l| l.contains("two thirds of its lifetime: giving it up"))
        .unwrap_or_else(|| panic!("D never gave its lease up:\n{d_log}"));
    let c = cluster(r_addr, &t);
    let taken = c["failovers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["name"] == "rack:fileserver"
                && f["from_holder"]
                    .to_string()
                    .contains(&format!("pid {} ", d.0.id()))
        })
        .unwrap_or_else(|| panic!("no failover from D: {c}"))
        .clone();
    let taken_at = taken["at"].as_i64().unwrap() % 86_400_000;
    assert!(
        day_ms(gave_up) < taken_at,
        "D gave up at {gave_up:?}, C took over at {taken}"
    );
    assert!(taken["lapsed_ms"].as_i64().unwrap() >= 3000, "{taken}");
    eprintln!(
        "partition: D gave its shelves up {} ms before C took them, {} ms after D's last renewal",
        taken_at - day_ms(gave_up),
        taken["lapsed_ms"]
    );
    assert_eq!(
        holder(&c, "rack:fileserver"),
        Some(u64::from(cc.0.id())),
        "{c}"
    );
    let done = provision("A-06", "globex");
    assert_eq!(done["status"], "succeeded", "{done}\n{}", logs());

    // R is killed while R2 waits: R2 leads the region, and the disk alert R
    // sent is not sent again.
    let told = || {
        let all = hook.to("/noc");
        let disk =
            |r: &&common::sink::Request| r.header("title").is_some_and(|t| t.contains("% free"));
        all.iter().filter(disk).count()
    };
    let started = Instant::now();
    while told() != 1 {
        let all = hook.all();
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "R told {all:?}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // What R published is on BIND: its serial moves with every update taken.
    wait("R to publish A-06", 20, &mut || {
        !common::dns::dig(&bind, &format!("example-a-06.{ZONE}"), "AAAA").is_empty()
    });
    let serial = || common::dns::dig(&bind, ZONE, "SOA");
    let published = serial();
    let (mut r2, r2_addr) = rig.another("region-2", &region, &[]);
    wait("R2 to serve", 30, &mut || answers(r2_addr));
    let mut r = r;
    r.0.kill().unwrap();
    let _ = r.0.wait();
    let killed = Instant::now();
    wait("R2 to lead", 10, &mut || {
        holder(&cluster(r2_addr, &t), "region") == Some(u64::from(r2.0.id()))
    });
    eprintln!(
        "the region's lead passed {:?} after the kill",
        killed.elapsed()
    );
    // R2 reconciles the zones as it takes the lead, finds R's work done, and
    // sends BIND no update of its own.
    let metric = |name: &str| -> f64 {
        let text = get(r2_addr, "/metrics", Some(&t)).body;
        (text.lines())
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    wait("R2 to reconcile the zones", 20, &mut || {
        metric("pirack_dns_reconciles") >= 1.0
    });
    assert_eq!(metric("pirack_dns_changes_applied"), 0.0, "{}", logs());
    assert_eq!(serial(), published, "R2 updated nothing");
    let _ = a;
    for p in [&mut cc, &mut r2] {
        p.0.kill().unwrap();
        let _ = p.0.wait();
    }
}

#[test]
fn each_fileserver_has_its_own_rack_controller() {
    let test = "cluster_fileservers";
    if !is_root(test) {
        return;
    }
    let Some(db) = common::postgres(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let inventory = common::site_in(tmp.path(), "two-fileservers", None, "");
    let args = [
        "--lease-s",
        "3",
        "--role",
        "rack",
        "--fileserver",
        "fs-a",
        "--no-proxy",
    ];
    let rig = start_on_with(tmp, &inventory, false, db.url.clone(), &args);
    let (a, t, dir) = (rig.addr, rig.admin.clone(), rig.dir.clone());
    let (mut b, b_addr) = rig.another("rack-b", &[("--fileserver", "fs-b")], &[]);
    let (mut r, r_addr) = rig.another("region", &[("--role", "region")], &[]);
    let logs = || -> String {
        ["serve", "rack-b", "region"]
            .iter()
            .map(|f| {
                let log = std::fs::read_to_string(dir.join(format!("{f}.log"))).unwrap_or_default();
                format!("== {f}\n{log}")
            })
            .collect()
    };
    until("B and R to serve", Duration::from_secs(30), || {
        (answers(b_addr) && answers(r_addr)).then_some(())
    });
    // Each fileserver's lease, held by its own controller, covers its shelf.
    let c = until("both rack leases", Duration::from_secs(20), || {
        let c = cluster(r_addr, &t);
        (holder(&c, "rack:fs-a").is_some() && holder(&c, "rack:fs-b").is_some()).then_some(c)
    });
    assert_eq!(holder(&c, "rack:fs-a"), Some(u64::from(rig.pid())), "{c}");
    assert_eq!(holder(&c, "rack:fs-b"), Some(u64::from(b.0.id())), "{c}");
    for (lease, shelf) in [("rack:fs-a", "a"), ("rack:fs-b", "b")] {
        let l = c["leases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == lease)
            .unwrap();
        assert_eq!(l["shelves"], serde_json::json!([shelf]), "{c}");
    }

    // Asked of any controller, each slot's operation runs on its own
    // fileserver's, and its root lands on that fileserver's disk.
    for (at, slot, owner, root) in [
        (r_addr, "B-01", "acme", "export-b/10.46.190.2"),
        (a, "B-02", "globex", "export-b/10.46.190.6"),
        (b_addr, "A-01", "acme", "export/10.46.189.2"),
    ] {
        let done = provision(at, &t, slot, owner);
        assert_eq!(done["status"], "succeeded", "{slot}: {done}\n{}", logs());
        assert!(
            dir.join(root).join("etc").is_dir(),
            "{slot}'s root in {root}"
        );
    }
    let a_log = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    let b_log = std::fs::read_to_string(dir.join("rack-b.log")).unwrap();
    assert!(
        a_log.contains("serving 4 slot(s) of site duo (fileserver fs-a)"),
        "{a_log}"
    );
    assert!(
        b_log.contains("serving 4 slot(s) of site duo (fileserver fs-b)"),
        "{b_log}"
    );
    for (log, slot) in [(&b_log, "sw-b/1"), (&b_log, "sw-b/2"), (&a_log, "sw-a/1")] {
        let ran = format!("(provision of {slot}) queued by another controller");
        assert!(log.contains(&ran), "{slot}:\n{log}");
    }
    for (log, theirs) in [(&a_log, ["B-0", "sw-b/"]), (&b_log, ["A-0", "sw-a/"])] {
        for name in theirs {
            assert!(!log.contains(name), "{name} is the other's:\n{log}");
        }
    }
    assert!(!dir.join("export/10.46.190.2").exists());
    // A region controller's backups go to the slot's own rack controller.
    let r_backup = post(r_addr, "/v1/slots/B-01/backups", Some(&t), "{}");
    assert_eq!(r_backup.status, 503, "{}", r_backup.body);
    assert!(
        r_backup.body.contains(&b_addr.to_string()),
        "{}",
        r_backup.body
    );

    // On a site of several, a rack controller must be told which it serves.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args([
            "serve",
            "--inventory",
            inventory.to_str().unwrap(),
            "--db",
            &db.url,
        ])
        .args([
            "--role",
            "rack",
            "--no-export",
            "--no-proxy",
            "--api",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = common::text(&out.stderr);
    assert!(err.contains("several fileservers (fs-a, fs-b)"), "{err}");
    assert!(err.contains("--fileserver"), "{err}");
    for p in [&mut b, &mut r] {
        p.0.kill().unwrap();
        let _ = p.0.wait();
    }
}

/// Where a `postgres://user:pw@host/db` URL's server is.
fn postgres_addr(url: &str) -> SocketAddr {
    let host = url.rsplit_once('@').unwrap().1.split('/').next().unwrap();
    match host.contains(':') {
        true => host.parse().unwrap(),
        false => format!("{host}:5432").parse().unwrap(),
    }
}
