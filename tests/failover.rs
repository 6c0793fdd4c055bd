//! Two controllers on one PostgreSQL store: one serves, the other stands by.
//! SIGKILL the one serving: the standby takes the store over at once (its
//! holder's process is gone) and finishes the root builds cut short. Stall the
//! new one (SIGSTOP, as a controller cut off from its database would be) past
//! its lease: a third takes over after the lease's lifetime, and the stalled
//! one, resumed, finds itself fenced and stops without writing. `pirack
//! cluster status` shows each step.

mod common;

use common::controller::start_on_with;
use common::http::{get, post};
use common::{is_root, text, until};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

fn cluster(addr: SocketAddr, token: &str) -> serde_json::Value {
    get(addr, "/v1/cluster", Some(token)).json()
}

/// The lease on the shelves, from a cluster status.
fn rack(c: &serde_json::Value) -> serde_json::Value {
    let leases = c["leases"].as_array().cloned().unwrap_or_default();
    let found = leases.into_iter().find(|l| l["name"] == "rack:fileserver");
    found.unwrap_or_else(|| panic!("no rack lease: {c}"))
}

fn answers(addr: SocketAddr) -> bool {
    common::http::try_request(addr, "GET", "/healthz", None, None).is_ok_and(|r| r.status == 200)
}

#[test]
fn a_standby_takes_over_from_a_dead_or_stalled_controller_which_is_fenced() {
    let test = "failover";
    if !is_root(test) {
        return;
    }
    let Some(db) = common::postgres(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let inventory = common::example_site_in(tmp.path(), None, "");
    let lease = ["--lease-s", "3"];
    // Images with sshd: each root's host keys make the builds take a while.
    let mut rig = start_on_with(tmp, &inventory, true, db.url.clone(), &lease);
    let (a, t) = (rig.addr, rig.admin.clone());
    let (b, b_addr) = rig.standby("standby-b", &[]);
    let first = rig.pid();
    let dir = rig.dir.clone();
    // Waits for `done`, showing every controller's log if it does not come.
    let wait = |what: &str, within: u64, done: &mut dyn FnMut() -> bool| {
        let started = Instant::now();
        while !done() {
            if started.elapsed() > Duration::from_secs(within) {
                let logs: String = ["serve.log", "standby-b.log", "standby-c.log"]
                    .iter()
                    .map(|f| {
                        let log = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
                        format!("== {f}\n{log}")
                    })
                    .collect();
                panic!("{what}: not within {within} s\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait("B to stand by", 20, &mut || {
        let states = cluster(a, &t)["controllers"].to_string();
        states.contains("\"standby\"") && states.contains("\"serving\"")
    });
    assert!(!answers(b_addr), "a standby serves nothing");
    let c = cluster(a, &t);
    assert_eq!(rack(&c)["generation"], 1, "{c}");
    assert_eq!(rack(&c)["pid"], first, "{c}");
    let r = get(a, "/v1/cluster", Some(&rig.acme));
    assert_eq!(r.status, 403, "staff only: {}", r.body);

    let ops: Vec<serde_json::Value> = ["A-07", "A-08"]
        .iter()
        .map(|slot| {
            let body = format!(r#"{{"image":"tiny-1","owner":"initech","slot":"{slot}"}}"#);
            post(a, "/v1/slots", Some(&t), &body).json()
        })
        .collect();
    rig.kill();
    let killed = Instant::now();
    wait("B to take over", 20, &mut || answers(b_addr));
    let took = killed.elapsed();
    eprintln!("failover after SIGKILL: B serves the API {took:?} after the kill");
    assert!(took < Duration::from_secs(10), "{took:?}");
    for op in &ops {
        let id = op["id"].as_str().unwrap();
        let done = until("the cut builds to finish", Duration::from_secs(60), || {
            let now = get(b_addr, &format!("/v1/operations/{id}"), Some(&t)).json();
            (now["status"] != "running").then_some(now)
        });
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    let c = cluster(b_addr, &t);
    assert_eq!(rack(&c)["generation"], 2, "{c}");
    assert_eq!(rack(&c)["pid"], b.0.id(), "{c}");
    let failover = &c["failovers"][0];
    assert!(
        failover["from_holder"]
            .as_str()
            .is_some_and(|f| f.contains(&format!("pid {first} "))),
        "{c}"
    );
    assert_eq!(failover["generation"], 2, "{c}");

    // B stalls (SIGSTOP) while C stands by: C waits out the lease (B's process
    // still exists), takes over, and B, resumed, is fenced and stops.
    let (mut cc, c_addr) = rig.standby("standby-c", &[]);
    wait("C to stand by", 20, &mut || {
        cluster(b_addr, &t)["controllers"]
            .to_string()
            .contains("\"standby\"")
    });
    let b_pid = nix::unistd::Pid::from_raw(b.0.id() as i32);
    nix::sys::signal::kill(b_pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let stalled = Instant::now();
    wait("C to take over", 30, &mut || answers(c_addr));
    let took = stalled.elapsed();
    eprintln!("failover from a stalled controller: C serves {took:?} after the stall");
    // B's last renewal came up to a third of the lease before the stall.
    assert!(
        took >= Duration::from_secs(2),
        "not before the lease's lifetime: {took:?}"
    );
    nix::sys::signal::kill(b_pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let mut b = b;
    let status = until("B to stop", Duration::from_secs(20), || {
        b.0.try_wait().unwrap()
    });
    assert!(!status.success(), "B stops as failed: {status}");
    let b_log = std::fs::read_to_string(rig.dir.join("standby-b.log")).unwrap();
    assert!(
        b_log.contains("another controller took the lease rack:fileserver")
            || b_log.contains("was not renewed for"),
        "{b_log}"
    );
    let c = cluster(c_addr, &t);
    assert_eq!(rack(&c)["generation"], 3, "{c}");
    assert_eq!(rack(&c)["pid"], cc.0.id(), "{c}");
    // The shelves changed hands twice, and the region's lead with them.
    let failovers = c["failovers"].as_array().unwrap();
    for name in ["rack:fileserver", "region"] {
        let n = failovers.iter().filter(|f| f["name"] == name).count();
        assert_eq!(n, 2, "{name}: {c}");
    }
    // The CLI shows it.
    let out = Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args(["cluster", "status"])
        .env("PIRACK_URL", format!("http://{c_addr}"))
        .env("PIRACK_TOKEN", &t)
        .env("PIRACK_CLIENT_CONFIG", "/dev/null")
        .output()
        .unwrap();
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}{}", text(&out.stderr));
    assert!(
        said.contains("rack:fileserver, region") && said.contains("generation 3"),
        "{said}"
    );
    assert!(said.contains("last failover: "), "{said}");
    cc.0.kill().unwrap();
    let _ = cc.0.wait();
}

/// The demo's shelf with a second controller standing by: the first is killed
/// two seconds after power-on, while the Pis boot, and every Pi still comes up
/// (DHCP, TFTP and the lifecycle picked up by the standby on the same ports).
#[test]
fn a_booting_shelf_comes_up_from_the_standby_after_its_controller_is_killed() {
    let test = "failover_boot";
    if !common::can_use_netns(test)
        || !common::have_all(test, &["snmpd", "ganesha.nfsd", "rpcbind", "python3"])
    {
        return;
    }
    let Some(db) = common::postgres(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let port = common::controller::free_tcp_port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args([
            "demo",
            "--once",
            "--no-stall",
            "--no-install",
            "--slots",
            "3",
        ])
        .args(["--failover-after", "2", "--timeout", "300", "--port", &port])
        .args(["--db", &db.url])
        .arg("--dir")
        .arg(tmp.path())
        .output()
        .unwrap();
    let said = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    eprintln!("{said}");
    assert!(out.status.success(), "{said}");
    assert!(said.contains("killed the controller (SIGKILL) 2.0 s after power-on"));
    assert!(said.contains("the standby took over in "), "{said}");
    assert!(said.contains("every Pi is up"), "{said}");
}
