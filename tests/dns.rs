//! The slots' names in DNS against real authoritative servers: BIND 9 updated by
//! a running controller as slots are provisioned and decommissioned, drift fixed
//! by `pirack dns sync`, records pirack did not write left alone; a wrong key
//! named as such; and Knot DNS for the AAAA/PTR path, so nothing is BIND-shaped.

mod common;

use common::controller::start;
use common::dns::{self, Server};
use common::http::{get, post, request};
use common::snmp::{Creds, free_udp_port, site_for};
use common::{have, is_root, text};
use pirack_core::dns::names::{ptr_name, reverse_zone};
use pirack_core::inventory;
use pirack_core::switch::Profiles;
use std::net::Ipv6Addr;
use std::path::Path;

const ZONE: &str = "pi.example.net";

fn can_run(test: &str, server: &str) -> bool {
    is_root(test) && have(test, server) && have(test, "dig") && have(test, "nsupdate")
}

/// The example shelf's reverse zone, without the trailing dot.
fn reverse() -> String {
    let z = reverse_zone("2001:db8:0:84:1000:1::/96".parse().unwrap());
    z.trim_end_matches('.').to_string()
}

fn fqdn(position: &str) -> String {
    format!("example-{}.{ZONE}", position.to_lowercase())
}

fn aaaa(server: &Server, position: &str) -> Vec<String> {
    dns::dig(server, &fqdn(position), "AAAA")
}

#[test]
fn provisioned_slots_are_published_and_what_others_wrote_is_left_alone() {
    if !can_run("provisioned_slots_are_published", "named") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bind = dns::bind(
        &tmp.path().join("bind"),
        &[
            (
                ZONE,
                "example-a-03 IN AAAA 2001:db8::bad\nexample-a-04 IN MX 10 mail.example.net.",
            ),
            (&reverse(), ""),
        ],
    );
    let inventory = site_for(tmp.path(), free_udp_port(), "generic", Creds::V2c, "");
    dns::add_to(&inventory, &bind);
    let rig = start(tmp, &inventory, false);
    let (a, admin) = (rig.addr, Some(rig.admin.as_str()));
    for position in ["A-01", "A-02", "A-03", "A-04"] {
        let op = post(
            a,
            "/v1/slots",
            admin,
            &format!(r#"{{"image":"tiny-1","owner":"acme","slot":"{position}"}}"#),
        );
        assert_eq!(op.status, 202, "{}", op.body);
        assert_eq!(rig.wait(&op.json())["status"], "succeeded");
    }

    // A-01: AAAA, A through the proxy, and the PTR back, once it is provisioned.
    let got = dns::wait_for(&bind, &fqdn("A-01"), "A", &["192.0.2.80"]);
    assert_eq!(got, ["192.0.2.80"]);
    let v6 = aaaa(&bind, "A-01");
    assert_eq!(v6.len(), 1, "{v6:?}");
    let addr: Ipv6Addr = v6[0].parse().unwrap();
    assert!(v6[0].starts_with("2001:db8:0:84:1000:1:"), "{v6:?}");
    assert_eq!(
        dns::dig(&bind, &ptr_name(addr), "PTR"),
        [format!("{}.", fqdn("A-01"))]
    );
    // A-03's name holds someone else's AAAA: left alone, reported as a conflict.
    assert_eq!(aaaa(&bind, "A-03"), ["2001:db8::bad"]);
    let status = get(a, "/v1/dns", admin).json();
    let forward = &status["zones"][0];
    assert_eq!(forward["zone"], format!("{ZONE}."));
    assert!(
        forward["conflicts"].to_string().contains("example-a-03"),
        "{status}"
    );
    // A-04's MX is another type: it stays beside pirack's records (A-04's own
    // AAAA may come in a later pass than A-01's).
    let a04 = get(a, "/v1/slots/A-04", admin).json();
    let a04_v6 = a04["ipv6"].as_str().unwrap_or_else(|| panic!("{a04}"));
    assert_eq!(
        dns::wait_for(&bind, &fqdn("A-04"), "AAAA", &[a04_v6]),
        [a04_v6]
    );
    assert_eq!(
        dns::dig(&bind, &fqdn("A-04"), "MX"),
        ["10 mail.example.net."]
    );
    // A slot nobody was given has no name.
    assert!(aaaa(&bind, "A-05").is_empty());

    // Drift: A-01's AAAA deleted by hand is reported, then put back.
    dns::nsupdate(&bind, &format!("update delete {} AAAA", fqdn("A-01")));
    assert!(aaaa(&bind, "A-01").is_empty());
    let env = [
        ("PIRACK_URL", format!("http://{a}")),
        ("PIRACK_TOKEN", rig.admin.clone()),
    ];
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pirack"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap()
    };
    let dry = cli(&["dns", "sync", "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let printed = text(&dry.stdout);
    assert!(
        printed.contains(&format!("stale     {}.", fqdn("A-01"))),
        "{printed}"
    );
    assert!(printed.contains("conflict  example-a-03"), "{printed}");
    assert!(aaaa(&bind, "A-01").is_empty(), "a dry run changes nothing");
    let json = cli(&["dns", "sync", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["zones"][0]["applied"], 1, "{report}");
    assert_eq!(aaaa(&bind, "A-01"), [addr.to_string()]);

    // Decommissioned: its names go, marks and all; the foreign ones stay.
    let op = request(a, "DELETE", "/v1/slots/A-02", admin, None);
    assert_eq!(op.status, 202, "{}", op.body);
    assert_eq!(rig.wait(&op.json())["status"], "succeeded");
    assert!(dns::wait_for(&bind, &fqdn("A-02"), "AAAA", &[]).is_empty());
    assert!(dns::dig(&bind, &format!("_pirack.{}", fqdn("A-02")), "TXT").is_empty());
    assert_eq!(aaaa(&bind, "A-03"), ["2001:db8::bad"]);
    let metrics = get(a, "/metrics", admin).body;
    assert!(
        metrics.contains(&format!(
            "pirack_dns_drift{{zone=\"{ZONE}.\",kind=\"conflict\"}} 1"
        )),
        "{metrics}"
    );
}

/// The site's `dns:` section as the controller would load it, pointed at `server`.
fn site_dns(dir: &Path, server: &Server) -> inventory::Site {
    let inventory = common::example_site_in(dir, None, "");
    dns::add_to(&inventory, server);
    let profiles = Profiles::load_dir(Path::new("switch-profiles")).unwrap();
    inventory::load(&inventory, &profiles.names()).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_wrong_key_is_named_with_its_server() {
    if !can_run("a_wrong_key_is_named_with_its_server", "named") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bind = dns::bind(&tmp.path().join("bind"), &[(ZONE, ""), (&reverse(), "")]);
    let site = site_dns(tmp.path(), &bind);
    let mut dns = site.dns.clone().unwrap();
    dns.key.secret = pirack_core::inventory::model::SecretRef::Env("PIRACK_TEST_WRONG_KEY".into());
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("PIRACK_TEST_WRONG_KEY", "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmch") };
    let err = runtime()
        .block_on(pirack_dns::reconcile::reconcile(
            &dns,
            "example",
            &Default::default(),
            true,
        ))
        .expect_err("a wrong key fails");
    let text = err.to_string();
    assert!(
        text.contains(&bind.addr.to_string())
            && text.contains("`pirack-test`")
            && text.contains("refused TSIG key")
            && !text.contains("file an issue"),
        "{text}"
    );
}

#[test]
fn knot_takes_the_same_updates() {
    if !can_run("knot_takes_the_same_updates", "knotd") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let knot = dns::knot(&tmp.path().join("knot"), &[(ZONE, ""), (&reverse(), "")]);
    let site = site_dns(tmp.path(), &knot);
    let dns = site.dns.clone().unwrap();
    let (plan, _) = pirack_core::plan::plan(
        &site,
        &pirack_core::plan::Ledger::load(&tmp.path().join("hardware/example-8.ledger.yaml"))
            .unwrap(),
    )
    .unwrap();
    let wanted = pirack_core::dns::want::slots(&dns, &plan.slots);
    let rt = runtime();
    let sync = |wanted| {
        rt.block_on(pirack_dns::reconcile::reconcile(
            &dns, "example", wanted, true,
        ))
        .unwrap()
    };
    let first = sync(&wanted);
    let log = || std::fs::read_to_string(knot.dir.join("knot.log")).unwrap_or_default();
    assert_eq!(first.error(), None, "{}", log());
    let applied: usize = first.zones.iter().map(|z| z.applied).sum();
    assert_eq!(applied, plan.slots.len() * 2, "{first:?}");
    for s in &plan.slots {
        let name = s.fqdn.clone().unwrap();
        assert_eq!(dns::dig(&knot, &name, "AAAA"), [s.ipv6.to_string()]);
        assert_eq!(
            dns::dig(&knot, &ptr_name(s.ipv6), "PTR"),
            [format!("{name}.")]
        );
    }
    let again = sync(&wanted);
    let in_sync: usize = again.zones.iter().map(|z| z.drift.in_sync).sum();
    assert_eq!(in_sync, plan.slots.len() * 2);
    assert!(again.zones.iter().all(|z| z.drift.changes.is_empty()));
    // Nothing wanted: everything pirack wrote goes.
    let gone = sync(&Default::default());
    let deleted: usize = gone.zones.iter().map(|z| z.applied).sum();
    assert_eq!(deleted, plan.slots.len() * 2);
    let first = &plan.slots[0];
    assert!(dns::dig(&knot, first.fqdn.as_deref().unwrap(), "AAAA").is_empty());
}

#[test]
fn customers_manage_names_in_their_own_zones_only() {
    if !can_run("customers_manage_names_in_their_own_zones_only", "named") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bind = dns::bind(
        &tmp.path().join("bind"),
        &[
            (ZONE, ""),
            (&reverse(), ""),
            ("acme.example", ""),
            ("globex.example", ""),
            ("extra.example", ""),
        ],
    );
    let inventory = site_for(tmp.path(), free_udp_port(), "generic", Creds::V2c, "");
    let yaml = std::fs::read_to_string(&inventory)
        .unwrap()
        .replace(
            "  - name: acme\n",
            "  - name: acme\n    zones: [acme.example]\n",
        )
        .replace(
            "  - name: globex\n",
            "  - name: globex\n    zones: [globex.example]\n",
        );
    std::fs::write(&inventory, yaml).unwrap();
    dns::add_to(&inventory, &bind);
    let rig = start(tmp, &inventory, false);
    let a = rig.addr;
    let (acme, globex) = (Some(rig.acme.as_str()), Some(rig.globex.as_str()));
    let put = |token, name: &str, body: &str| {
        request(a, "PUT", &format!("/v1/names/{name}"), token, Some(body))
    };

    let www = r#"{"records":[{"type":"AAAA","data":"2001:db8::10"},{"type":"MX","data":"10 mail.example.net."}]}"#;
    let r = put(acme, "www.acme.example", www);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        dns::wait_for(&bind, "www.acme.example", "AAAA", &["2001:db8::10"]),
        ["2001:db8::10"],
        "{}",
        get(a, "/v1/dns", Some(&rig.admin)).body
    );
    assert_eq!(
        dns::dig(&bind, "www.acme.example", "MX"),
        ["10 mail.example.net."]
    );

    // The ACME hook's path, with the customer's own token: two challenges at
    // one name (a wildcard and its apex) added one at a time, each waited for
    // until the server answers, then removed one at a time.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pirack"))
            .args(args)
            .env("PIRACK_URL", format!("http://{a}"))
            .env("PIRACK_TOKEN", &rig.acme)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    };
    let challenge = "_acme-challenge.www.acme.example";
    cli(&[
        "name",
        "add",
        challenge,
        "TXT",
        "tok-1 with space",
        "--wait",
        "90",
    ]);
    cli(&["name", "add", challenge, "TXT", "tok-2", "--wait", "90"]);
    assert_eq!(
        dns::dig(&bind, challenge, "TXT"),
        ["\"tok-1 with space\"", "\"tok-2\""]
    );
    cli(&[
        "name",
        "del",
        challenge,
        "TXT",
        "tok-1 with space",
        "--wait",
        "90",
    ]);
    assert_eq!(dns::dig(&bind, challenge, "TXT"), ["\"tok-2\""]);
    cli(&["name", "del", challenge, "TXT", "tok-2", "--wait", "90"]);
    assert!(dns::dig(&bind, challenge, "TXT").is_empty());

    // Not outside its zones, not another's, not what a zone cannot hold.
    assert_eq!(put(acme, "www.globex.example", www).status, 403);
    assert_eq!(put(acme, "x.pi.example.net", www).status, 403);
    assert_eq!(put(globex, "www.acme.example", www).status, 403);
    for bad in ["a..acme.example", "bad!.acme.example", "*.*.acme.example"] {
        assert_eq!(put(acme, bad, www).status, 400, "{bad}");
    }
    let cname_and_more = r#"{"records":[{"type":"CNAME","data":"x.acme.example."},{"type":"A","data":"192.0.2.1"}]}"#;
    assert_eq!(put(acme, "c.acme.example", cname_and_more).status, 400);
    assert_eq!(
        put(
            acme,
            "n.acme.example",
            r#"{"records":[{"type":"NS","data":"ns.example."}]}"#
        )
        .status,
        400
    );
    assert_eq!(
        put(
            acme,
            "a.acme.example",
            r#"{"records":[{"type":"A","data":"not an address"}]}"#
        )
        .status,
        400
    );
    // A customer sees only its own names.
    let theirs = get(a, "/v1/names", globex).json();
    assert_eq!(theirs, serde_json::json!([]), "{theirs}");
    let mine = get(a, "/v1/names", acme).json();
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(
        request(a, "DELETE", "/v1/names/www.acme.example", globex, None).status,
        404
    );

    let gone = request(a, "DELETE", "/v1/names/www.acme.example", acme, None);
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert!(dns::wait_for(&bind, "www.acme.example", "AAAA", &[]).is_empty());
    assert!(dns::dig(&bind, "www.acme.example", "MX").is_empty());

    // An admin grants acme a further zone the servers hold; nobody else may.
    let grant = |token, zone: &str, owner: &str| {
        let body = format!(r#"{{"owner":"{owner}"}}"#);
        request(
            a,
            "PUT",
            &format!("/v1/dns/zones/{zone}"),
            token,
            Some(&body),
        )
        .status
    };
    let admin = Some(rig.admin.as_str());
    assert_eq!(grant(acme, "extra.example", "acme"), 403);
    assert_eq!(grant(admin, "acme.example", "globex"), 409);
    assert_eq!(grant(admin, "sub.pi.example.net", "acme"), 409);
    assert_eq!(put(acme, "www.extra.example", www).status, 403);
    assert_eq!(grant(admin, "extra.example", "acme"), 200);
    let r = put(acme, "www.extra.example", www);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        dns::wait_for(&bind, "www.extra.example", "AAAA", &["2001:db8::10"]),
        ["2001:db8::10"]
    );
    let zones = get(a, "/v1/dns/zones", acme).json();
    assert!(
        zones.to_string().contains(r#""source":"granted""#),
        "{zones}"
    );
    assert!(!zones.to_string().contains("globex"), "{zones}");
    // Not taken back while names remain in it.
    let revoke = || request(a, "DELETE", "/v1/dns/zones/extra.example", admin, None).status;
    assert_eq!(revoke(), 409);
    assert_eq!(
        request(a, "DELETE", "/v1/names/www.extra.example", acme, None).status,
        200
    );
    assert_eq!(revoke(), 200);
    assert!(dns::dig(&bind, "www.extra.example", "AAAA").is_empty());
    assert!(dns::dig(&bind, "_pirack.www.extra.example", "TXT").is_empty());
    assert_eq!(put(acme, "www.extra.example", www).status, 403);
}

/// What `name` answers over the API (the customer's own view).
fn name_view(a: std::net::SocketAddr, token: Option<&str>, name: &str) -> serde_json::Value {
    get(a, &format!("/v1/names/{name}"), token).json()
}

/// Waits until `check` holds for `name`'s view; the last view.
fn wait_view(
    a: std::net::SocketAddr,
    token: Option<&str>,
    name: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let v = name_view(a, token, name);
        if check(&v) || started.elapsed() > std::time::Duration::from_secs(20) {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn anames_follow_their_targets_and_keep_their_addresses_through_failures() {
    if !can_run("anames_follow_their_targets", "named") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bind = dns::bind(
        &tmp.path().join("bind"),
        &[(ZONE, ""), (&reverse(), ""), ("acme.example", "")],
    );
    // The targets' own authoritative server, which the test changes.
    let targets = dns::bind(
        &tmp.path().join("targets"),
        &[(
            "example.org",
            "t 2 IN AAAA 2001:db8::1\nt 2 IN A 198.51.100.1\nc 60 IN CNAME t\nt2 3 IN AAAA 2001:db8::3\n\
             loop1 IN CNAME loop2\nloop2 IN CNAME loop1",
        )],
    );
    let inventory = site_for(tmp.path(), free_udp_port(), "generic", Creds::V2c, "");
    let yaml = std::fs::read_to_string(&inventory).unwrap().replace(
        "  - name: acme\n",
        "  - name: acme\n    zones: [acme.example]\n",
    );
    std::fs::write(&inventory, yaml).unwrap();
    dns::add_to(&inventory, &bind);
    let yaml = std::fs::read_to_string(&inventory).unwrap()
        + &format!(
            "  aname:\n    resolvers: [{{ address: 127.0.0.1, port: {} }}]\n    allow: ['*.example.org']\n    floor_s: 1\n    timeout_ms: 500\n",
            targets.addr.port()
        );
    std::fs::write(&inventory, yaml).unwrap();
    let rig = start(tmp, &inventory, false);
    let (a, admin, acme) = (rig.addr, Some(rig.admin.as_str()), Some(rig.acme.as_str()));
    let op = post(
        a,
        "/v1/slots",
        admin,
        r#"{"image":"tiny-1","owner":"acme","slot":"A-01"}"#,
    );
    assert_eq!(rig.wait(&op.json())["status"], "succeeded");
    let put =
        |name: &str, body: &str| request(a, "PUT", &format!("/v1/names/{name}"), acme, Some(body));

    // The zone's apex follows the customer's Pi: its AAAA, and the proxy's A.
    let apex = put(
        "acme.example",
        &format!(r#"{{"aname":{{"target":"{}"}}}}"#, fqdn("A-01")),
    );
    assert_eq!(apex.status, 200, "{}", apex.body);
    dns::wait_for(&bind, &fqdn("A-01"), "A", &["192.0.2.80"]);
    let v6 = aaaa(&bind, "A-01");
    assert_eq!(dns::wait_for(&bind, "acme.example", "AAAA", &[&v6[0]]), v6);
    assert_eq!(dns::dig(&bind, "acme.example", "A"), ["192.0.2.80"]);
    let view = name_view(a, acme, "acme.example");
    assert_eq!(view["aname"]["slot"], "sw-a/1", "{view}");
    // A wildcard holding the Pi's address answers for every name under it.
    let wild = put(
        "*.shop.acme.example",
        &format!(r#"{{"records":[{{"type":"AAAA","data":"{}"}}]}}"#, v6[0]),
    );
    assert_eq!(wild.status, 200, "{}", wild.body);
    assert_eq!(
        dns::wait_for(&bind, "any.shop.acme.example", "AAAA", &[&v6[0]]),
        v6
    );
    // The proxy routes both names to that slot too.
    let started = std::time::Instant::now();
    let routed = loop {
        let v = get(a, "/v1/slots/A-01/proxy", acme).json();
        if v["names"].as_array().is_some_and(|n| n.len() == 3)
            || started.elapsed() > std::time::Duration::from_secs(20)
        {
            break v;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(
        routed["names"],
        serde_json::json!(["*.shop.acme.example", "acme.example", fqdn("A-01")]),
        "{routed}"
    );
    // The rack view's slot detail shows the customer the names leading to it.
    if have("anames_follow_their_targets", "chromedriver") {
        let profile = tempfile::tempdir().unwrap();
        let browser = common::webdriver::Browser::start(profile.path());
        browser.open_slot(a, &rig.acme, "A-01");
        let names = browser.wait_for(
            "A-01's names",
            "const n = document.querySelector('#names'); return n && n.textContent;",
            std::time::Duration::from_secs(20),
        );
        let names = names.as_str().unwrap_or_default().to_string();
        assert!(
            names.contains("acme.example.")
                && names.contains(&format!("follows {}.", fqdn("A-01"))),
            "{names}"
        );
    }

    // An outside target through a CNAME, at the target's TTL (below the ANAME's).
    let www = put(
        "www.acme.example",
        r#"{"aname":{"target":"c.example.org","ttl":600}}"#,
    );
    assert_eq!(www.status, 200, "{}", www.body);
    let www = www.json();
    assert_eq!(
        www["aname"]["chain"],
        serde_json::json!(["c.example.org.", "t.example.org."]),
        "{www}"
    );
    assert!(
        www["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["ttl"] == 2),
        "{www}"
    );
    assert_eq!(
        dns::wait_for(&bind, "www.acme.example", "AAAA", &["2001:db8::1"]),
        ["2001:db8::1"]
    );
    assert_eq!(dns::dig(&bind, "www.acme.example", "A"), ["198.51.100.1"]);

    // The target moves: the name follows within its TTL (2 s) and a reconcile.
    dns::nsupdate(
        &targets,
        "update delete t.example.org AAAA\nupdate add t.example.org 2 AAAA 2001:db8::2",
    );
    assert_eq!(
        dns::wait_for(&bind, "www.acme.example", "AAAA", &["2001:db8::2"]),
        ["2001:db8::2"]
    );

    // A target's TTL changes: the name's records take it (below the ANAME's).
    let r = put(
        "ttl.acme.example",
        r#"{"aname":{"target":"t2.example.org"}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    dns::nsupdate(
        &targets,
        "update delete t2.example.org AAAA\nupdate add t2.example.org 7 AAAA 2001:db8::7",
    );
    let v = wait_view(a, acme, "ttl.acme.example", |v| v["records"][0]["ttl"] == 7);
    assert_eq!(v["records"][0]["data"], "2001:db8::7", "{v}");
    assert_eq!(
        dns::wait_for(&bind, "ttl.acme.example", "AAAA", &["2001:db8::7"]),
        ["2001:db8::7"]
    );

    // The target vanishes: the name keeps its addresses and says it is stale.
    dns::nsupdate(&targets, "update delete t.example.org");
    let v = wait_view(a, acme, "www.acme.example", |v| {
        !v["aname"]["error"].is_null()
    });
    assert!(
        v["aname"]["error"].as_str().unwrap().contains("NXDOMAIN"),
        "{v}"
    );
    assert!(v["aname"]["stale_since"].is_i64(), "{v}");
    assert_eq!(dns::dig(&bind, "www.acme.example", "AAAA"), ["2001:db8::2"]);
    // Back, fresh again; then its server goes: stale again, addresses kept.
    dns::nsupdate(&targets, "update add t.example.org 2 AAAA 2001:db8::2");
    let v = wait_view(a, acme, "www.acme.example", |v| {
        v["aname"]["error"].is_null()
    });
    assert!(v["aname"]["error"].is_null(), "{v}");
    drop(targets);
    let v = wait_view(a, acme, "www.acme.example", |v| {
        !v["aname"]["error"].is_null()
    });
    let why = v["aname"]["error"].as_str().unwrap();
    assert!(why.contains("c.example.org.: 127.0.0.1:"), "{v}");
    assert_eq!(dns::dig(&bind, "www.acme.example", "AAAA"), ["2001:db8::2"]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args(["name", "show", "www.acme.example"])
        .env("PIRACK_URL", format!("http://{a}"))
        .env("PIRACK_TOKEN", &rig.acme)
        .output()
        .unwrap();
    let shown = text(&out.stdout);
    assert!(shown.contains("stale      since"), "{shown}");

    // A loop is an error state, reported at once; the name holds nothing yet.
    let looped = put(
        "loop.acme.example",
        r#"{"aname":{"target":"loop1.example.org"}}"#,
    );
    assert_eq!(looped.status, 200, "{}", looped.body);
    let looped = looped.json();
    assert!(
        looped["aname"]["error"].as_str().unwrap().contains("loop"),
        "{looped}"
    );
    assert_eq!(looped["records"], serde_json::json!([]));

    // The policy: outside targets only where allowed, the site's only if yours.
    for target in ["evil.example.com", &fqdn("A-05"), "x.acme.example"] {
        let r = put(
            "x.acme.example",
            &format!(r#"{{"aname":{{"target":"{target}"}}}}"#),
        );
        assert_eq!(r.status, 403, "{target}: {}", r.body);
    }
    // Nor through a CNAME of the customer's own: every hop is held to the policy.
    let cname = r#"{"records":[{"type":"CNAME","data":"evil.example.com."}]}"#;
    assert_eq!(put("cn.acme.example", cname).status, 200);
    dns::wait_for(&bind, "cn.acme.example", "CNAME", &["evil.example.com."]);
    let r = put(
        "via.acme.example",
        r#"{"aname":{"target":"cn.acme.example"}}"#,
    )
    .json();
    let why = r["aname"]["error"].as_str().unwrap_or_default();
    assert!(why.contains("evil.example.com. is outside"), "{r}");
    let theirs = get(a, "/v1/names", Some(rig.globex.as_str())).json();
    assert_eq!(theirs, serde_json::json!([]), "{theirs}");
}
