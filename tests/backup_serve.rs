//! Backups inside `pirack serve`, with real restic: slots provisioned through
//! the API are backed up on their schedule to a path and to an SFTP server
//! (OpenSSH's sshd on loopback, its host key pinned) that is down at first;
//! the failure is one alert, told to the staff's route and to the owner's own
//! route for its slot only, and resolves once the server is back and the
//! retry succeeds. A customer backs up, lists and restores its own slot
//! through the API and cannot see another's; the owners' repositories get
//! their prune and check; a target short of space is an alert.

mod common;

use common::controller::{Rig, free_tcp_port};
use common::have;
use common::http::{get, post};
use common::sink::Http;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Polls `what` until `done` holds of it, for up to `within`.
fn until(
    what: &str,
    within: Duration,
    mut f: impl FnMut() -> Value,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let v = f();
        if done(&v) {
            return v;
        }
        assert!(started.elapsed() < within, "{what}: still {v:#}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A target's entry in a slot's backups.
fn at<'a>(b: &'a Value, target: &str) -> Option<&'a Value> {
    b["targets"]
        .as_array()?
        .iter()
        .find(|t| t["target"] == target)
}

/// Starts an operation, asking again while the slot's or its owner's
/// repositories are busy with another (a scheduled backup or upkeep): 409.
fn start_op(rig: &Rig, path: &str, token: &str, body: &str) -> Value {
    let started = Instant::now();
    loop {
        let r = post(rig.addr, path, Some(token), body);
        if r.status != 409 || !r.body.contains("backup operation under way") {
            assert_eq!(r.status, 202, "{path}: {}", r.body);
            return r.json();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{path}: busy for two minutes: {}",
            r.body
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn alerts(rig: &Rig) -> Vec<Value> {
    get(rig.addr, "/v1/alerts", Some(&rig.admin))
        .json()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn the_controller_backs_up_alerts_and_restores_for_each_owner() {
    let test = "backup_serve";
    if !common::is_root(test)
        || !have(test, "restic")
        || !have(test, "/usr/sbin/sshd")
        || !have(test, "ssh-keygen")
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_path_buf();
    let hooks = Http::start(None);
    let ssh_port = free_tcp_port();
    let ssh = d.join("ssh");
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], ssh_port));
    common::sshd::configure(&ssh, listen);
    let offsite = d.join("offsite");
    std::fs::create_dir_all(&offsite).unwrap();
    // Every 36 s, a failed target tried again 9 s later;
    // the local disk "short of space" below 99 % free.
    let extra = format!(
        "\nbackup:\n  keys: {keys}\n  schedule: {{ every_h: 0.01, start: '00:00', window_h: 0.01 }}\n  \
         space_warn_pct: 99\n  targets:\n    - {{ name: local, path: {local} }}\n    \
         - {{ name: offsite, sftp: {{ host: 127.0.0.1, port: {ssh_port}, user: root, path: {offsite}, \
         identity: {{ file: {id} }}, known_hosts: {kh} }} }}\n\
         monitor:\n  checks: {{ interval_s: 1, timeout_ms: 500, down_after: 2, up_after: 1 }}\n  \
         routes: [ 'ntfy://{h}/noc' ]\n  customer_route_networks: [ 127.0.0.1/32 ]\n",
        keys = d.join("keys").display(),
        local = d.join("local").display(),
        offsite = offsite.display(),
        id = ssh.join("id").display(),
        kh = ssh.join("known_hosts").display(),
        h = hooks.addr,
    );
    let inventory = common::example_site_in(&d, None, &extra);
    let rig = common::controller::start_with(tmp, &inventory, &[]);
    let a = rig.addr;
    let r = post(
        a,
        "/v1/alert-routes",
        Some(&rig.acme),
        &format!(r#"{{"uri":"ntfy://{}/acme"}}"#, hooks.addr),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for (token, slot) in [(&rig.acme, "A-01"), (&rig.globex, "A-05")] {
        let body = format!(r#"{{"image":"tiny-1","slot":"{slot}"}}"#);
        let op = post(a, "/v1/slots", Some(token), &body).json();
        assert_eq!(rig.wait(&op)["status"], "succeeded", "{op}");
    }
    let site = common::site(inventory.to_str().unwrap());
    let (plan, _) = pirack_core::plan::plan(&site, &Default::default()).unwrap();
    let root = Path::new(&plan.slots[0].root).to_path_buf();
    assert!(
        root.ends_with("10.46.189.2"),
        "A-01's root: {}",
        root.display()
    );
    std::fs::write(root.join("etc/motd"), "first\n").unwrap();

    // A backup now, asked by the owner: the path target takes it, the SFTP
    // server is down.
    let op = start_op(&rig, "/v1/slots/A-01/backups", &rig.acme, "{}");
    assert_eq!(op["kind"], "backup", "{op}");
    let done = rig.wait(&op);
    assert_eq!(
        (done["status"].as_str(), done["error"].as_str()),
        (Some("failed"), Some("backup_failed")),
        "{done}"
    );
    let detail = done["detail"].as_str().unwrap();
    assert!(
        detail.contains("to local: snapshot") && detail.contains("to offsite: target offsite"),
        "{detail}"
    );
    let b = get(a, "/v1/slots/A-01/backups", Some(&rig.acme)).json();
    assert!(at(&b, "local").unwrap()["last_ok_at"].is_i64(), "{b}");
    assert!(at(&b, "offsite").unwrap()["last_error"].is_string(), "{b}");

    // One alert for the target, to the staff and to acme for A-01 alone.
    let failing = until(
        "the offsite alert",
        Duration::from_secs(60),
        || Value::Array(alerts(&rig)),
        |v| {
            v.as_array()
                .unwrap()
                .iter()
                .any(|x| x["cause"] == "backup:offsite" && x["sent_at"].is_i64())
        },
    );
    let fired = failing
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["cause"] == "backup:offsite")
        .count();
    assert_eq!(fired, 1, "{failing:#}");
    let told = |path: &str| -> Vec<String> {
        hooks
            .to(path)
            .iter()
            .map(|r| r.body.clone())
            .filter(|b| b.contains("offsite"))
            .collect()
    };
    until(
        "the staff told",
        Duration::from_secs(20),
        || Value::from(told("/noc").len()),
        |n| n.as_u64() >= Some(1),
    );
    let acme_told = until(
        "acme told",
        Duration::from_secs(20),
        || Value::from(told("/acme")),
        |v| !v.as_array().unwrap().is_empty(),
    );
    assert!(
        acme_told.to_string().contains("A-01") && !acme_told.to_string().contains("A-05"),
        "{acme_told}"
    );
    // The rack view's slot detail: each target's last backup, the failed try marked.
    if have(test, "chromedriver") {
        let profile = tempfile::tempdir().unwrap();
        let browser = common::webdriver::Browser::start(profile.path());
        browser.open_slot(a, &rig.acme, "A-01");
        let shown = browser.wait_for(
            "A-01's backups in the detail",
            "const off = document.querySelector(\"#backups li[data-target=offsite]\"); \
             const local = document.querySelector(\"#backups li[data-target=local]\"); \
             return off != null && local != null && off.className === 'bad' \
               && local.textContent + ' | ' + off.textContent;",
            Duration::from_secs(20),
        );
        let shown = shown.as_str().unwrap_or_default().to_string();
        assert!(
            shown.contains("local: last ") && shown.contains("offsite: none yet; last try failed"),
            "{shown}"
        );
    }
    // The target short of space: a staff alert of its own.
    assert!(
        alerts(&rig)
            .iter()
            .any(|x| x["cause"] == "backup-space:local"),
        "{:#?}",
        alerts(&rig)
    );

    // Another customer sees none of it.
    for (method, path) in [
        ("GET", "/v1/slots/A-01/backups"),
        ("GET", "/v1/slots/A-01/backups/snapshots"),
        ("POST", "/v1/slots/A-01/backups"),
        ("POST", "/v1/slots/A-01/restore"),
    ] {
        let r = if method == "GET" {
            get(a, path, Some(&rig.globex))
        } else {
            post(a, path, Some(&rig.globex), "{}")
        };
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
    }
    let globex_alerts = get(a, "/v1/alerts", Some(&rig.globex)).json();
    assert!(
        !globex_alerts.to_string().contains("A-01"),
        "{globex_alerts}"
    );

    // The SFTP server back: the retry and the schedule bring both slots to
    // both targets, and the alert resolves.
    let _sshd = common::sshd::start(Command::new("/usr/sbin/sshd"), &ssh, listen);
    for (slot, token) in [("A-01", &rig.acme), ("A-05", &rig.globex)] {
        let path = format!("/v1/slots/{slot}/backups");
        until(
            &format!("{slot} at both targets"),
            Duration::from_secs(120),
            || get(a, &path, Some(token)).json(),
            |b| {
                ["local", "offsite"].iter().all(|t| {
                    at(b, t).is_some_and(|s| s["last_ok_at"].is_i64() && s["last_error"].is_null())
                })
            },
        );
    }
    until(
        "the offsite alert resolved",
        Duration::from_secs(30),
        || Value::Array(alerts(&rig)),
        |v| {
            v.as_array()
                .unwrap()
                .iter()
                .filter(|x| x["cause"] == "backup:offsite")
                .all(|x| x["resolved_at"].is_i64())
        },
    );
    assert!(offsite.join("acme/config").exists() && offsite.join("globex/config").exists());

    // Each owner's repositories pruned and checked a period after their first backup.
    until(
        "acme's upkeep",
        Duration::from_secs(120),
        || get(a, "/v1/slots/A-01/backups", Some(&rig.acme)).json(),
        |b| {
            let repos = b["repositories"].as_array().unwrap();
            repos.len() == 2
                && repos
                    .iter()
                    .all(|r| r["checked_at"].is_i64() && r["check_error"].is_null())
        },
    );

    // Changed, then restored by its owner from the first local snapshot.
    std::fs::write(root.join("etc/motd"), "changed\n").unwrap();
    std::fs::write(root.join("etc/new"), "new\n").unwrap();
    let snaps = get(a, "/v1/slots/A-01/backups/snapshots", Some(&rig.acme)).json();
    let first = snaps["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["target"] == "local")
        .unwrap_or_else(|| panic!("{snaps}"))["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    let body = format!(r#"{{"snapshot":"{first}","target":"local"}}"#);
    let op = start_op(&rig, "/v1/slots/A-01/restore", &rig.acme, &body);
    assert_eq!(op["kind"], "restore", "{op}");
    let done = rig.wait(&op);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(
        done["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("snapshot {first}")),
        "{done}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/motd")).unwrap(),
        "first\n"
    );
    assert!(!root.join("etc/new").exists());
    let slot = rig.slot("A-01");
    assert_eq!(
        (slot["state"].as_str(), slot["image"].as_str()),
        (Some("ready"), Some("tiny-1")),
        "{slot}"
    );
    // The replaced root kept: a rollback brings the change back.
    let op = post(a, "/v1/slots/A-01/rollback", Some(&rig.acme), "").json();
    assert_eq!(rig.wait(&op)["status"], "succeeded");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/motd")).unwrap(),
        "changed\n"
    );
}
