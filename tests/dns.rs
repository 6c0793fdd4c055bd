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
        free_udp_port(),
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
    // A-04's MX is another type: it stays beside pirack's records.
    assert_eq!(aaaa(&bind, "A-04").len(), 1);
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
    let bind = dns::bind(
        &tmp.path().join("bind"),
        free_udp_port(),
        &[(ZONE, ""), (&reverse(), "")],
    );
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
    let knot = dns::knot(
        &tmp.path().join("knot"),
        free_udp_port(),
        &[(ZONE, ""), (&reverse(), "")],
    );
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
        free_udp_port(),
        &[
            (ZONE, ""),
            (&reverse(), ""),
            ("acme.example", ""),
            ("globex.example", ""),
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

    // The ACME hook's path: a TXT by the CLI, with the customer's own token.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pirack"))
        .args([
            "name",
            "set",
            "_acme-challenge.www.acme.example",
            "TXT",
            "tok-123 with space",
        ])
        .env("PIRACK_URL", format!("http://{a}"))
        .env("PIRACK_TOKEN", &rig.acme)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        dns::wait_for(
            &bind,
            "_acme-challenge.www.acme.example",
            "TXT",
            &["\"tok-123 with space\""]
        ),
        ["\"tok-123 with space\""]
    );

    // Not outside its zones, not another's, not what a zone cannot hold.
    assert_eq!(put(acme, "www.globex.example", www).status, 403);
    assert_eq!(put(acme, "x.pi.example.net", www).status, 403);
    assert_eq!(put(globex, "www.acme.example", www).status, 403);
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
    assert_eq!(mine.as_array().unwrap().len(), 2, "{mine}");
    assert_eq!(
        request(a, "DELETE", "/v1/names/www.acme.example", globex, None).status,
        404
    );

    let gone = request(a, "DELETE", "/v1/names/www.acme.example", acme, None);
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert!(dns::wait_for(&bind, "www.acme.example", "AAAA", &[]).is_empty());
    assert!(dns::dig(&bind, "www.acme.example", "MX").is_empty());
}
