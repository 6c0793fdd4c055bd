//! The controller's HTTP API against a running `pirack serve`: every endpoint under
//! every kind of caller, a slot's whole life through the API with power on the
//! emulated switch, and 96 provisioning calls at once.

mod common;

use common::controller::{start, start_on};
use common::http::{get, post, request};
use common::snmp::{Agent, Creds, site_for};
use common::{is_root, text};
use std::process::Command;
use std::time::{Duration, Instant};

const FAST: &str =
    "snmp_timeout_ms: 500\nsnmp_retries: 1\npower: { drain_ms: 200, readback_ms: 2000 }";

#[test]
fn every_endpoint_under_every_caller() {
    if !is_root("every_endpoint_under_every_caller") || !common::have("api", "snmpd") {
        return;
    }
    let agent = Agent::start(10, 10, None);
    let tmp = tempfile::tempdir().unwrap();
    let inventory = site_for(tmp.path(), agent.port, "generic", Creds::V2c, FAST);
    let rig = start(tmp, &inventory, false);
    let a = rig.addr;

    // Globex gets A-05 (the inventory gives it to globex) built and ready.
    let op = post(
        a,
        "/v1/slots",
        Some(&rig.globex),
        r#"{"image":"tiny-1","slot":"A-05"}"#,
    );
    assert_eq!(op.status, 202, "{}", op.body);
    assert_eq!(rig.wait(&op.json())["status"], "succeeded");
    let globex_op = op.json()["id"].as_str().unwrap().to_string();
    let before = rig.slot("A-05");
    assert_eq!(before["state"], "ready");

    let endpoints: Vec<(&str, String, Option<&str>)> = vec![
        ("GET", "/v1/slots/A-05".into(), None),
        ("GET", "/v1/slots/A-05/port".into(), None),
        (
            "POST",
            "/v1/slots/A-05/power".into(),
            Some(r#"{"action":"on"}"#),
        ),
        (
            "POST",
            "/v1/slots/A-05/reimage".into(),
            Some(r#"{"image":"tiny-2"}"#),
        ),
        ("POST", "/v1/slots/A-05/rollback".into(), None),
        ("DELETE", "/v1/slots/A-05".into(), None),
        ("GET", format!("/v1/operations/{globex_op}"), None),
        ("GET", "/v1/events?slot=A-05".into(), None),
        ("GET", "/v1/events/stream?slot=A-05".into(), None),
    ];
    for (method, path, body) in &endpoints {
        for (token, want) in [
            (None, 401),
            (Some("pirack_nope_nope"), 401),
            (Some(rig.acme.as_str()), 404),
        ] {
            let r = request(a, method, path, token, *body);
            assert_eq!(r.status, want, "{method} {path} as {token:?}: {}", r.body);
            let err = r.json();
            assert!(
                err["code"].is_string() && err["message"].is_string(),
                "{}",
                r.body
            );
        }
    }
    let r = post(a, "/v1/slots/A-05/board/accept", Some(&rig.acme), "");
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (403, Some("forbidden")),
        "only staff accept boards"
    );
    let r = post(a, "/v1/slots/A-05/board/accept", Some(&rig.admin), "");
    assert_eq!(r.status, 404, "no board is held in A-05: {}", r.body);
    for path in ["/v1/plan", "/metrics"] {
        assert_eq!(get(a, path, None).status, 401);
        let r = get(a, path, Some(&rig.acme));
        assert_eq!(
            (r.status, r.json()["code"].as_str()),
            (403, Some("forbidden")),
            "{path}"
        );
        assert_eq!(get(a, path, Some(&rig.admin)).status, 200, "{path}");
    }
    // Acme's attempts changed nothing of globex's slot, not even its event count.
    assert_eq!(rig.slot("A-05"), before);
    assert_eq!(agent.admin(5), 1, "power never reached the switch");

    // What each may see.
    let mine = get(a, "/v1/slots", Some(&rig.acme)).json();
    let positions = common::strings(&mine, "position");
    assert_eq!(positions, ["A-01", "A-02", "A-03", "A-04"]);
    assert_eq!(
        get(a, "/v1/slots", Some(&rig.admin))
            .json()
            .as_array()
            .unwrap()
            .len(),
        8
    );
    assert_eq!(get(a, "/v1/slots", None).status, 401);
    let events = get(a, "/v1/events", Some(&rig.acme)).json();
    assert!(
        events.as_array().unwrap().is_empty(),
        "acme sees no globex event: {events}"
    );
    assert!(
        !get(a, "/v1/events?slot=A-05", Some(&rig.globex))
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
    // A customer provisions for itself only.
    let r = post(
        a,
        "/v1/slots",
        Some(&rig.acme),
        r#"{"image":"tiny-1","owner":"globex"}"#,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = post(
        a,
        "/v1/slots",
        Some(&rig.acme),
        r#"{"image":"tiny-1","slot":"A-06"}"#,
    );
    assert_eq!(
        r.status, 404,
        "another customer's slot does not exist: {}",
        r.body
    );
    // Bad input is a 4xx with a JSON error.
    for body in ["", "{", r#"{"image":7}"#, r#"{"image":"tiny-1","extra":1}"#] {
        let r = post(a, "/v1/slots", Some(&rig.admin), body);
        assert_eq!(r.status, 400, "{body:?}: {}", r.body);
        assert_eq!(r.json()["code"], "bad_request");
    }
    let r = post(
        a,
        "/v1/slots",
        Some(&rig.admin),
        r#"{"image":"no-such-1","owner":"x"}"#,
    );
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("bad_request")),
        "{}",
        r.body
    );
    assert_eq!(get(a, "/nowhere", Some(&rig.admin)).status, 404);
    assert_eq!(get(a, "/healthz", None).json()["slots"], 8);
    let doc = get(a, "/openapi.json", None).json();
    assert!(
        doc["paths"]["/v1/slots/{slot}/power"]["post"].is_object(),
        "{doc}"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[test]
fn a_slot_s_life_through_the_api() {
    if !is_root("a_slot_s_life_through_the_api") || !common::have("api", "snmpd") {
        return;
    }
    let agent = Agent::start(10, 10, None);
    let tmp = tempfile::tempdir().unwrap();
    let inventory = site_for(tmp.path(), agent.port, "generic", Creds::V2c, FAST);
    let rig = start(tmp, &inventory, true);
    let (a, t) = (rig.addr, Some(rig.admin.as_str()));

    let op = post(a, "/v1/slots", t, r#"{"image":"tiny-1","owner":"initech"}"#).json();
    let slot = op["slot"].as_str().unwrap().to_string();
    assert_eq!(slot, "sw-a/7", "the first free slot nobody owns");
    assert!(
        op["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("image tiny-1 is not qualified")),
        "an image never booted on virtual Pis is used with a warning: {op}"
    );
    assert_eq!(rig.wait(&op)["status"], "succeeded");
    let root = rig.dir.join("export/10.46.189.26");
    assert!(root.join("etc/os-release").exists(), "the root was built");
    assert!(
        root.join("etc/ssh/ssh_host_ed25519_key").exists(),
        "with its own host keys"
    );
    assert_eq!(rig.slot("A-07")["state"], "ready");
    assert_eq!(rig.slot("A-07")["owner"], "initech");

    agent.fault(&["clear=1"]);
    assert_eq!(agent.admin(7), 1);
    let port = get(a, "/v1/slots/A-07/port", t).json();
    assert_eq!(
        (
            port["switch"].as_str(),
            port["port"].as_u64(),
            port["admin"].as_str()
        ),
        (Some("sw-a"), Some(7), Some("on")),
        "{port}"
    );
    assert!(
        port["draw_mw"].is_null(),
        "the generic profile has no per-port draw"
    );
    let r = post(a, "/v1/slots/A-07/power", t, r#"{"action":"cycle"}"#);
    assert_eq!(
        r.status, 409,
        "a slot that is off cannot be cycled: {}",
        r.body
    );
    let op = post(a, "/v1/slots/A-07/power", t, r#"{"action":"on"}"#).json();
    assert_eq!(rig.wait(&op)["status"], "succeeded", "{op}");
    assert_eq!(rig.slot("A-07")["state"], "powering_on");
    let r = post(a, "/v1/slots/A-07/reimage", t, r#"{"image":"tiny-2"}"#);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("power the slot off first")
    );

    let op = post(a, "/v1/slots/A-07/power", t, r#"{"action":"off"}"#).json();
    assert_eq!(rig.wait(&op)["status"], "succeeded");
    assert_eq!(agent.admin(7), 2, "the switch port is off");
    assert_eq!(rig.slot("A-07")["state"], "powered_off");

    // tiny-2 qualified (the verdict `pirack image qualify` records, which
    // tests/hil_run.rs runs for real): every caller sees it, and it is used
    // without a warning.
    qualify(&rig.dir.join("images"), "tiny-2", true);
    let images = get(a, "/v1/images", Some(rig.acme.as_str())).json();
    assert_eq!(images.as_array().unwrap().len(), 2, "{images}");
    assert!(images[0]["qualification"].is_null(), "{images}");
    assert_eq!(images[1]["qualification"]["passed"], true, "{images}");
    let tiny2 = get(a, "/v1/images/tiny-2", t).json();
    assert_eq!(
        tiny2["qualification"]["summary"],
        "1 of 1 virtual Pis passed"
    );
    assert_eq!(get(a, "/v1/images/tiny-9", t).status, 404);
    let op = post(a, "/v1/slots/A-07/reimage", t, r#"{"image":"tiny-2"}"#).json();
    assert!(op.get("warnings").is_none(), "{op}");
    assert_eq!(rig.wait(&op)["status"], "succeeded", "{op}");
    assert_eq!(rig.slot("A-07")["image"], "tiny-2");
    let release = std::fs::read_to_string(root.join("etc/os-release")).unwrap();
    assert!(release.contains("VERSION=2"), "{release}");
    let op = post(a, "/v1/slots/A-07/rollback", t, "").json();
    assert_eq!(rig.wait(&op)["status"], "succeeded", "{op}");
    assert_eq!(rig.slot("A-07")["image"], "tiny-1");

    // The CLI, as a client of the same API (URL and token from the environment).
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_pirack"))
            .args(args)
            .env("PIRACK_URL", format!("http://{a}"))
            .env("PIRACK_TOKEN", &rig.admin)
            .env("PIRACK_CLIENT_CONFIG", "/dev/null")
            .output()
            .unwrap();
        (out.status.code(), text(&out.stdout) + &text(&out.stderr))
    };
    let (code, out) = cli(&["slots", "--json"]);
    assert_eq!(code, Some(0), "{out}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 8);
    let (code, out) = cli(&["show", "A-07"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("state       ready") && out.contains("rollback"),
        "{out}"
    );
    let (code, out) = cli(&["power", "cycle", "A-07"]);
    assert_eq!(code, Some(1), "a slot that is off cannot be cycled: {out}");
    assert!(out.contains("409") && out.contains("not allowed"), "{out}");
    // A failed qualification warns too, saying so, and the CLI passes it on.
    qualify(&rig.dir.join("images"), "tiny-2", false);
    let (code, out) = cli(&["reimage", "A-07", "--image", "tiny-2"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("reimage succeeded"), "{out}");
    assert!(
        out.contains("warning: image tiny-2 failed its qualification (0 of 1 virtual Pis passed)"),
        "{out}"
    );
    let (code, out) = cli(&["rollback", "A-07"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = cli(&["events", "--slot", "A-07"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.contains(" reimage ")).count(),
        2,
        "{out}"
    );
    let (code, out) = cli(&["slots", "--token", "pirack_nope_nope"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("401") && out.contains("unknown or revoked token"),
        "{out}"
    );

    // A stuck port: the operation fails and the slot does not claim to be on.
    agent.fault(&["stuck_ports=[7]"]);
    let op = post(a, "/v1/slots/A-07/power", t, r#"{"action":"on"}"#).json();
    let done = rig.wait(&op);
    assert_eq!(done["status"], "failed");
    assert_eq!(done["error"], "power_failed", "a typed failure: {done}");
    assert_eq!(rig.slot("A-07")["state"], "ready");
    agent.fault(&["clear=1"]);

    let op = request(a, "DELETE", "/v1/slots/A-07", t, None).json();
    assert_eq!(rig.wait(&op)["status"], "succeeded", "{op}");
    let gone = rig.slot("A-07");
    assert_eq!(
        (gone["state"].as_str(), gone["owner"].as_str()),
        (Some("decommissioned"), None)
    );
    assert!(!root.exists(), "the root is deleted");

    let events = get(a, "/v1/events?slot=A-07&after=0", t).json();
    let kinds = common::strings(&events, "kind");
    assert_eq!(
        kinds,
        [
            "provision",
            "root_built",
            "power_on",
            "power_off",
            "reimage",
            "root_built",
            "rollback",
            "root_built",
            "reimage",
            "root_built",
            "rollback",
            "root_built",
            "decommission"
        ]
    );
    let metrics = get(a, "/metrics", t).body;
    assert!(
        metrics.contains("pirack_power_operations_total{action=\"on\",result=\"failed\"} 1"),
        "{metrics}"
    );
    // Slots per state, the switch's request latencies and the store's.
    assert!(
        metrics.contains("pirack_slots{state=\"empty\"} "),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "pirack_switch_request_seconds_count{switch=\"sw-a\",request=\"set\",result=\"ok\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("pirack_store_seconds_count{op=\"transition\"}"),
        "{metrics}"
    );

    // The live stream replays from an id and follows.
    let out = Command::new("curl")
        .args(["-sN", "--max-time", "2", "-H"])
        .arg(format!("Authorization: Bearer {}", rig.admin))
        .arg(format!("http://{a}/v1/events/stream?slot=A-07&after=0"))
        .output()
        .unwrap();
    let stream = text(&out.stdout);
    assert_eq!(stream.matches("event: root_built").count(), 5, "{stream}");
    assert!(stream.contains("id: "), "{stream}");
}

#[test]
fn ninety_six_provisioning_calls_at_once() {
    if is_root("ninety_six_provisioning_calls_at_once") {
        ninety_six(None);
    }
}

/// The same against a PostgreSQL store (required under CI).
#[test]
fn ninety_six_provisioning_calls_at_once_on_postgres() {
    let test = "ninety_six_provisioning_calls_at_once_on_postgres";
    if !is_root(test) {
        return;
    }
    let Some(db) = common::postgres("api") else {
        return;
    };
    ninety_six(Some(db.url.clone()));
}

fn ninety_six(db: Option<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let inventory = common::site_in(dir, "shelf-96", None, "");
    let yaml = std::fs::read_to_string(&inventory).unwrap();
    // Every slot free for the taking.
    std::fs::write(&inventory, yaml.replace(", owner: acme }", " }")).unwrap();
    let rig = match db {
        Some(url) => start_on(tmp, &inventory, false, url),
        None => start(tmp, &inventory, false),
    };
    let customers: Vec<String> = (0..9).map(|i| format!("customer-{i}")).collect();
    let mut names: Vec<&str> = customers.iter().map(String::as_str).collect();
    names.push("late");
    common::controller::owners(&rig.db, &names);
    let started = Instant::now();
    let calls: Vec<_> = (0..96)
        .map(|i| {
            let (addr, token) = (rig.addr, rig.admin.clone());
            std::thread::spawn(move || {
                let body = format!(r#"{{"image":"tiny-1","owner":"customer-{}"}}"#, i % 9);
                post(addr, "/v1/slots", Some(&token), &body)
            })
        })
        .collect();
    let ops: Vec<serde_json::Value> = calls
        .into_iter()
        .map(|c| {
            let r = c.join().unwrap();
            assert_eq!(r.status, 202, "{}", r.body);
            r.json()
        })
        .collect();
    let answered = started.elapsed();
    let mut slots = std::collections::BTreeSet::new();
    for op in &ops {
        assert!(
            slots.insert(op["slot"].as_str().unwrap().to_string()),
            "a slot given twice: {op}"
        );
    }
    for op in &ops {
        assert_eq!(rig.wait(op)["status"], "succeeded", "{op}");
    }
    eprintln!(
        "96 provisions: answered in {answered:?}, all roots ready in {:?}",
        started.elapsed()
    );
    let all = get(rig.addr, "/v1/slots", Some(&rig.admin)).json();
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "ready")
    );
    let r = post(
        rig.addr,
        "/v1/slots",
        Some(&rig.admin),
        r#"{"image":"tiny-1","owner":"late"}"#,
    );
    assert_eq!(
        (r.status, r.json()["message"].as_str()),
        (400, Some("no free slot"))
    );
}

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let test = "schemathesis_finds_no_server_error_and_no_schema_violation";
    if !is_root(test) || !common::have(test, "schemathesis") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inventory = common::example_site_in(tmp.path(), None, "");
    let rig = start(tmp, &inventory, false);
    let out = Command::new("schemathesis")
        .arg("run")
        .arg(format!("http://{}/openapi.json", rig.addr))
        .args(["-H", &format!("Authorization: Bearer {}", rig.admin)])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
        ])
        // A stream never ends; its answers are checked in the API tests.
        .args(["--exclude-path", "/v1/events/stream", "--max-examples", "25", "--seed", "1"])
        .current_dir(&rig.dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let report = text(&out.stdout) + &text(&out.stderr);
    let summary = report
        .lines()
        .filter(|l| l.contains(" generated, "))
        .collect::<Vec<_>>()
        .join("\n");
    eprintln!("schemathesis: {summary}");
    assert!(out.status.success(), "{report}");
    assert!(summary.contains("passed"), "{report}");
}

#[test]
fn a_controller_killed_while_provisioning_finishes_every_root_after_restart() {
    if !is_root("a_controller_killed_while_provisioning") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inventory = common::example_site_in(tmp.path(), None, "");
    // Images with sshd, so each root's host keys make the builds take a while.
    let mut rig = start(tmp, &inventory, true);
    let ops: Vec<serde_json::Value> = ["A-07", "A-08", "A-01", "A-02"]
        .iter()
        .map(|slot| {
            let owner = if slot.starts_with("A-0") && *slot > "A-06" {
                "initech"
            } else {
                "acme"
            };
            let body = format!(r#"{{"image":"tiny-1","owner":"{owner}","slot":"{slot}"}}"#);
            let r = post(rig.addr, "/v1/slots", Some(&rig.admin), &body);
            assert_eq!(r.status, 202, "{}", r.body);
            r.json()
        })
        .collect();
    rig.kill_and_restart();
    // The cut operations resume under their ids: a client polling one sees it
    // finish, and it says it was resumed.
    let mut resumed = 0;
    for op in &ops {
        let done = rig.wait(op);
        assert_eq!(done["status"], "succeeded", "{done}");
        if done["detail"]
            .as_str()
            .unwrap_or("")
            .contains("resumed after a restart")
        {
            resumed += 1;
        }
    }
    assert!(resumed > 0, "the kill came while roots were being built");
    let started = Instant::now();
    loop {
        let states: Vec<String> = ["A-07", "A-08", "A-01", "A-02"]
            .iter()
            .map(|s| rig.slot(s)["state"].as_str().unwrap().to_string())
            .collect();
        if states.iter().all(|s| s == "ready") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{states:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    for ip in ["10.46.189.26", "10.46.189.30", "10.46.189.2", "10.46.189.6"] {
        let root = rig.dir.join("export").join(ip);
        assert!(
            root.join("etc/ssh/ssh_host_ed25519_key").exists(),
            "{ip}: a whole root"
        );
    }
    let events = get(rig.addr, "/v1/events?slot=A-07&after=0", Some(&rig.admin)).json();
    let kinds = common::strings(&events, "kind");
    assert_eq!(
        kinds,
        ["provision", "root_built"],
        "built once, recorded once"
    );
}

#[test]
fn every_answer_carries_security_headers_and_every_refusal_is_json() {
    if !is_root("every_answer_carries_security_headers_and_every_refusal_is_json") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inventory = common::example_site_in(tmp.path(), None, "");
    let rig = start(tmp, &inventory, false);
    let (a, t) = (rig.addr, Some(rig.admin.as_str()));
    let guarded = |r: &common::http::Response, what: &str| {
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(
            r.header("referrer-policy").as_deref(),
            Some("no-referrer"),
            "{what}"
        );
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    };
    let page = get(a, "/", None);
    assert_eq!(page.status, 200);
    guarded(&page, "the rack view");
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'sha256-") && csp.contains("style-src 'sha256-"),
        "the page's inline script and style are allowed by hash only: {csp}"
    );
    guarded(&get(a, "/v1/slots", t), "an answer");
    for (r, status, code) in [
        (
            request(a, "PUT", "/v1/slots", t, Some("{}")),
            405,
            "method_not_allowed",
        ),
        (
            request(a, "PATCH", "/v1/slots/A-01", t, None),
            405,
            "method_not_allowed",
        ),
        (
            post(
                a,
                "/v1/slots",
                t,
                &format!(r#"{{"image":"{}"}}"#, "x".repeat(100_000)),
            ),
            413,
            "payload_too_large",
        ),
        (
            get(a, &format!("/v1/events?slot={}", "a".repeat(9000)), t),
            414,
            "uri_too_long",
        ),
        (get(a, "/v1/nowhere", t), 404, "not_found"),
    ] {
        assert_eq!(
            (r.status, r.json()["code"].as_str()),
            (status, Some(code)),
            "{}",
            r.body
        );
        assert!(r.json()["message"].is_string());
        guarded(&r, code);
    }
}

#[test]
fn owners_are_the_sites_and_a_pinned_slot_is_only_its_owners() {
    if !is_root("owners_are_the_sites_and_a_pinned_slot_is_only_its_owners") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inventory = common::example_site_in(tmp.path(), None, "");
    let rig = start(tmp, &inventory, false);
    let (a, t) = (rig.addr, Some(rig.admin.as_str()));
    // No tenant from a typing error: neither a slot nor a token.
    let r = post(a, "/v1/slots", t, r#"{"image":"tiny-1","owner":"acmee"}"#);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("unknown owner `acmee`"),
        "{}",
        r.body
    );
    let out = common::pirack(&[
        "token", "create", "--db", &rig.db, "--name", "x", "--owner", "acmee",
    ]);
    assert!(!out.status.success() && text(&out.stderr).contains("unknown owner `acmee`"));
    // Staff add a customer; then it may have both.
    common::controller::owners(&rig.db, &["hooli"]);
    common::controller::token(&rig.db, &["--name", "hooli", "--owner", "hooli"]);

    // A-05 is pinned to globex by the inventory: after globex's use it stays
    // globex's, for admins too.
    let op = post(
        a,
        "/v1/slots",
        t,
        r#"{"image":"tiny-1","owner":"globex","slot":"A-05"}"#,
    );
    assert_eq!(rig.wait(&op.json())["status"], "succeeded");
    let op = request(a, "DELETE", "/v1/slots/A-05", t, None);
    assert_eq!(rig.wait(&op.json())["status"], "succeeded");
    let r = post(
        a,
        "/v1/slots",
        t,
        r#"{"image":"tiny-1","owner":"hooli","slot":"A-05"}"#,
    );
    assert_eq!(
        (r.status, r.json()["message"].as_str()),
        (400, Some("slot A-05 is not free")),
        "{}",
        r.body
    );
    // Any free slot for hooli is one nobody pins: A-07.
    let op = post(a, "/v1/slots", t, r#"{"image":"tiny-1","owner":"hooli"}"#).json();
    assert_eq!(op["slot"], "sw-a/7", "{op}");
    let op = post(
        a,
        "/v1/slots",
        t,
        r#"{"image":"tiny-1","owner":"globex","slot":"A-05"}"#,
    );
    assert_eq!(op.status, 202, "its owner has it again: {}", op.body);
}

#[test]
fn one_power_operation_at_a_time_and_the_drain_is_kept() {
    let test = "one_power_operation_at_a_time_and_the_drain_is_kept";
    if !is_root(test) || !common::have(test, "snmpd") {
        return;
    }
    let agent = Agent::start(10, 10, None);
    let tmp = tempfile::tempdir().unwrap();
    let inventory = site_for(tmp.path(), agent.port, "generic", Creds::V2c, FAST);
    let rig = start(tmp, &inventory, false);
    let (a, t) = (rig.addr, Some(rig.admin.as_str()));
    let op = post(
        a,
        "/v1/slots",
        t,
        r#"{"image":"tiny-1","owner":"initech","slot":"A-07"}"#,
    );
    assert_eq!(rig.wait(&op.json())["status"], "succeeded");
    let before = agent.state()["history"].as_array().unwrap().len();

    // Ten alternating calls as fast as a client can send them.
    let mut accepted = Vec::new();
    for i in 0..10 {
        let action = if i % 2 == 0 { "on" } else { "off" };
        let body = format!(r#"{{"action":"{action}"}}"#);
        let r = post(a, "/v1/slots/A-07/power", t, &body);
        match r.status {
            202 => accepted.push(r.json()),
            409 => {
                let m = r.json()["message"].as_str().unwrap().to_string();
                assert!(
                    m.contains("power operation under way: op-"),
                    "a refusal names the pending operation: {m}"
                );
            }
            s => panic!("{s}: {}", r.body),
        }
    }
    assert!(accepted.len() < 10, "calls on a busy slot are refused");
    for op in &accepted {
        assert_eq!(rig.wait(op)["status"], "succeeded", "{op}");
    }
    // Off, then on again the moment off is done.
    for action in ["off", "on"] {
        let r = post(
            a,
            "/v1/slots/A-07/power",
            t,
            &format!(r#"{{"action":"{action}"}}"#),
        );
        assert_eq!(rig.wait(&r.json())["status"], "succeeded");
        accepted.push(r.json());
    }
    // What reached the switch: never more than one SET per accepted call, and a
    // port switched off stays off for drain_ms (200) before it is on again.
    let history = agent.state()["history"].as_array().unwrap()[before..].to_vec();
    let port7: Vec<(i64, f64)> = history
        .iter()
        .filter(|h| h[0] == 7)
        .map(|h| (h[1].as_i64().unwrap(), h[2].as_f64().unwrap()))
        .collect();
    assert!(port7.len() <= accepted.len(), "{port7:?}");
    let mut drains = 0;
    for pair in port7.windows(2) {
        if let [(2, off), (1, on)] = pair {
            assert!(on - off >= 0.2, "on {:.3} s after off: {port7:?}", on - off);
            drains += 1;
        }
    }
    assert!(drains >= 1, "{port7:?}");
}

#[test]
fn a_tenant_reads_only_its_own_history_and_a_revoked_stream_ends() {
    if !is_root("a_tenant_reads_only_its_own_history_and_a_revoked_stream_ends") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inventory = common::example_site_in(tmp.path(), None, "");
    let rig = start(tmp, &inventory, false);
    let (a, staff, acme) = (rig.addr, Some(rig.admin.as_str()), Some(rig.acme.as_str()));
    // A-07's first tenant, initech, comes and goes.
    let op = post(
        a,
        "/v1/slots",
        staff,
        r#"{"image":"tiny-1","owner":"initech","slot":"A-07"}"#,
    );
    assert_eq!(rig.wait(&op.json())["status"], "succeeded");
    let op = request(a, "DELETE", "/v1/slots/A-07", staff, None);
    assert_eq!(rig.wait(&op.json())["status"], "succeeded");
    // Then acme takes it: its history of A-07 starts there.
    let op = post(a, "/v1/slots", acme, r#"{"image":"tiny-1","slot":"A-07"}"#);
    assert_eq!(rig.wait(&op.json())["status"], "succeeded");
    let mine = get(a, "/v1/events?slot=A-07&after=0", acme);
    assert_eq!(
        common::strings(&mine.json(), "kind"),
        ["provision", "root_built"]
    );
    assert!(
        !mine.body.contains("initech")
            && !mine.body.contains("(ops)")
            && !mine.body.contains("token "),
        "nothing of the previous tenant, nor staff's token names: {}",
        mine.body
    );
    // Newest first, by default.
    let all = get(a, "/v1/events?slot=A-07", staff).json();
    assert_eq!(
        common::strings(&all, "kind"),
        [
            "root_built",
            "provision",
            "decommission",
            "root_built",
            "provision"
        ]
    );
    assert!(
        all[2]["actor"].as_str().unwrap().contains("(ops)"),
        "staff see who: {all}"
    );

    // acme follows its events; its token is revoked; the next event ends the
    // stream instead of reaching it.
    let mut stream = std::net::TcpStream::connect(a).unwrap();
    use std::io::{Read, Write};
    write!(
        stream,
        "GET /v1/events/stream?after={} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        all[0]["id"],
        rig.acme
    )
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut got = String::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            got += &String::from_utf8_lossy(&buf[..n]);
        }
        let _ = tx.send(got);
    });
    std::thread::sleep(Duration::from_millis(500));
    let id = get(a, "/v1/whoami", acme).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = common::pirack(&["token", "revoke", "--db", &rig.db, &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let op = post(a, "/v1/slots/A-07/reimage", staff, r#"{"image":"tiny-2"}"#);
    assert_eq!(op.status, 202, "{}", op.body);
    let got = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the stream ends once its token is revoked");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(
        !got.contains("reimage"),
        "no event after the revocation: {got}"
    );
}

/// Records a verdict on `id` as `pirack image qualify` does; one about another
/// root is refused.
fn qualify(store: &std::path::Path, id: &str, passed: bool) {
    use pirack_controller::roots::{image, qualification};
    let root = image::show(store, id).unwrap().checksums.root;
    let mut q = qualification::Qualification {
        passed,
        at: 0,
        summary: format!("{} of 1 virtual Pis passed", u8::from(passed)),
        checks: vec!["pass A-01 boots to up".into()],
        root: "0".repeat(64),
    };
    assert!(qualification::record(store, id, &q).is_err());
    q.root = root;
    qualification::record(store, id, &q).unwrap();
}
