//! Monitoring against simulated Pis on the emulated PoE switch: a Pi whose link
//! is cut goes down after N intervals and each matching route hears of it once
//! (an HTTP recorder standing in for ntfy, Prowl, Pushover and a webhook; an
//! SMTP sink for mail), and of its recovery once; a power cycle by the
//! controller raises nothing; a switch that stops answering while its Pis fail
//! is one grouped alert, and so is a PoE supply that fails with its Pis; a
//! customer's route never hears of another's slots; a
//! customer's maintenance window keeps its slot quiet until it ends; an HTTP
//! check through the proxy to nginx on a Pi fails with the Pi's server and
//! recovers with it; a flapping Pi is one alert once it flaps, and a route's
//! call budget holds. A real Alertmanager takes pirack's alerts (an
//! `alertmanager://` route), and a real Prometheus scraping pirack's metrics
//! fires a rule into it.

mod common;

use common::nsctl::Api;
use common::sink::{Http, Smtp};
use common::snmp::{Agent, Creds, site_for};
use common::{Child, Netns, can_use_netns, have, text, until};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SWITCH: &str = "snmp_timeout_ms: 400\nsnmp_retries: 0\npower: { drain_ms: 300, readback_ms: 3000, batch: 8, batch_interval_ms: 100 }";
const API: &str = "127.0.0.1:18090";

/// Alertmanager in `ctl`, delivering every alert on its own to `hook`'s `/am`.
fn alertmanager(ctl: &Netns, d: &Path, hook: std::net::SocketAddr) -> Child {
    let dir = d.join("alertmanager");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route: {{ receiver: hook, group_by: ['...'], group_wait: 1s, group_interval: 1s, repeat_interval: 1h }}\n\
             receivers:\n  - name: hook\n    webhook_configs: [ {{ url: 'http://{hook}/am', send_resolved: true }} ]\n"
        ),
    )
    .unwrap();
    Child(
        ctl.command("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.display()))
            .args([
                "--web.listen-address=127.0.0.1:19093",
                "--cluster.listen-address=",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// The alert rules the repository ships, checked by `promtool`.
const RULES: &str = "docs/monitoring/pirack.rules.yml";

/// Prometheus in `ctl` scraping pirack's `/metrics` every second, with the
/// shipped rules (one fires while a slot's check is down).
fn prometheus(ctl: &Netns, d: &Path, token: &str) -> Child {
    let dir = d.join("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let check = Command::new("promtool")
        .args(["check", "rules", RULES])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
             rule_files: [ '{}' ]\n\
             alerting: {{ alertmanagers: [ {{ static_configs: [ {{ targets: ['127.0.0.1:19093'] }} ] }} ] }}\n\
             scrape_configs:\n  - job_name: pirack\n    authorization: {{ credentials: '{token}' }}\n    \
             static_configs: [ {{ targets: ['{API}'] }} ]\n",
            std::fs::canonicalize(RULES).unwrap().display()
        ),
    )
    .unwrap();
    Child(
        ctl.command("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:19090")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// nginx in a Pi's namespace behind the proxy (PROXY v1) on HTTP and on TLS
/// with its own certificate for `name`, answering `/health` and logging the
/// client the header names, the Host and the scheme; its files in `dir`.
fn nginx(pi: &str, dir: &Path, name: &str) -> Child {
    if !dir.join("cert.pem").exists() {
        std::fs::create_dir_all(dir).unwrap();
        pirack_lab::testbed::self_signed(dir, name, &format!("DNS:{name}")).unwrap();
    }
    let n = dir.display();
    let conf = format!(
        "daemon off; master_process off; pid {n}/nginx.pid; error_log {n}/error.log; worker_processes 1;\n\
         events {{}}\n\
         http {{ log_format pp '$proxy_protocol_addr $host $request_uri $scheme'; access_log {n}/access.log pp;\n\
           client_body_temp_path {n}; proxy_temp_path {n}; fastcgi_temp_path {n}; uwsgi_temp_path {n}; scgi_temp_path {n};\n\
           server {{ listen [::]:80 proxy_protocol; listen [::]:443 ssl proxy_protocol;\n\
             ssl_certificate {n}/cert.pem; ssl_certificate_key {n}/key.pem;\n\
             location = /health {{ return 200 \"ok\\n\"; }} }} }}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    Child(
        Command::new("ip")
            .args(["netns", "exec", pi, "nginx", "-c"])
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Whether Alertmanager's webhook has told of `alertname` in `status`.
fn told(hooks: &Http, alertname: &str, status: &str) -> bool {
    hooks.to("/am").iter().any(|r| {
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
        v["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["labels"]["alertname"] == alertname && a["status"] == status)
    })
}

/// The simulator, stopped with SIGTERM however the test ends: it then takes
/// its Pis' namespaces down (a SIGKILL would leave them behind).
struct Sim(std::process::Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let started = Instant::now();
        while matches!(self.0.try_wait(), Ok(None)) {
            if started.elapsed() > Duration::from_secs(30) {
                let _ = self.0.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.wait();
    }
}

/// Cuts (a blackhole route: probes go unanswered) or restores the way to a
/// slot's public address, leaving its storage link (and NFS root) alone.
fn link(ctl: &Netns, slot: &(String, String), up: bool) {
    let (addr, interface) = slot;
    let to = format!("{addr}/128");
    let args: Vec<&str> = if up {
        vec!["-6", "route", "replace", &to, "dev", interface]
    } else {
        vec!["-6", "route", "replace", "blackhole", &to]
    };
    ctl.ip(&args).unwrap();
}

#[test]
fn a_down_pi_is_told_once_to_each_route_and_its_recovery_once() {
    let test = "monitor";
    if !can_use_netns(test)
        || !have(test, "snmpd")
        || !have(test, "ganesha.nfsd")
        || !have(test, "rpcbind")
        || !have(test, "prometheus")
        || !have(test, "prometheus-alertmanager")
        || !have(test, "nginx")
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let ctl = common::netns("mon");
    let api = Api {
        ns: &ctl,
        addr: API,
    };
    let agent = Agent::start_in(Some(ctl.name()), 10, 10, None);
    for p in 1..=10 {
        let off = agent.net_snmp(
            "snmpset",
            &[&format!("1.3.6.1.2.1.105.1.1.1.3.1.{p}"), "i", "2"],
        );
        assert!(off.status.success(), "{}", text(&off.stderr));
    }
    let hooks = Http::start(Some(ctl.name()));
    let smtp = Smtp::start(Some(ctl.name()));
    let h = hooks.addr;
    // The disks' space alert is the build machine's business, not this test's:
    // only a disk under 1 % free raises it.
    let monitor = format!(
        "\nproxy:\n  listen: [127.0.0.1]\n  http_port: 18091\n  tls_port: 18092\n\
         \nmonitor:\n  checks: {{ interval_s: 1, timeout_ms: 500, down_after: 3, up_after: 2 }}\n  \
         slots: {{ A-02: {{ http: {{ tls: true, path: /health }} }}, A-05: {{ http: {{ path: /health }} }} }}\n  rate_max: 11\n  flap_window_s: 600\n  flap_quiet_s: 8\n  \
         routes: [ 'ntfy://{h}/noc', 'prowl:0123456789abcdef', 'mailto:noc@example.com', 'alertmanager://127.0.0.1:19093' ]\n  \
         providers: {{ prowl: 'http://{h}/prowl', pushover: 'http://{h}/pushover' }}\n  \
         smtp: {{ server: '{}', from: 'pirack@example.com' }}\n  poe_budget_w: {{ sw-a: 10 }}\n  disk_warn_pct: 1\n  customer_route_networks: [ 127.0.0.1/32 ]\n",
        smtp.addr
    );
    let inventory = site_for(d, agent.port, "generic", Creds::V2c, SWITCH);
    let yaml = std::fs::read_to_string(&inventory).unwrap().replace(
        "export_root: /export",
        &format!("export_root: {}", d.join("export").display()),
    ) + &monitor
        + &common::nfs::inventory_section(d);
    std::fs::write(&inventory, yaml).unwrap();
    common::tiny_image(&d.join("images"), "1", false);
    let boot = common::boot_files(1 << 20);
    let db = format!("sqlite://{}/state.db", d.display());
    let admin = common::controller::token(&db, &["--name", "test", "--admin"]);
    common::controller::owners(&db, &["acme", "globex"]);
    let acme = common::controller::token(&db, &["--name", "acme", "--owner", "acme"]);
    let globex = common::controller::token(&db, &["--name", "globex", "--owner", "globex"]);

    let sim = Sim(Command::new(env!("CARGO_BIN_EXE_pirack"))
        .arg("sim")
        .arg("--inventory")
        .arg(&inventory)
        .args([
            "--slots",
            "A-01,A-02,A-05",
            "--controller-netns",
            ctl.name(),
            "--follow",
        ])
        .arg("--boot-files")
        .arg(boot.path())
        .arg("--images")
        .arg(d.join("images"))
        .args(["--image", "tiny-1"])
        .env("PIRACK_SW_A_COMMUNITY", common::snmp::COMMUNITY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    until("the simulator's links", Duration::from_secs(20), || {
        ctl.command("ip")
            .args(["link", "show", "eth0.14"])
            .output()
            .unwrap()
            .status
            .success()
            .then_some(())
    });
    // A-02 and A-05 (the simulator's second and third Pis) serve their sites
    // with nginx, A-02 checked over TLS.
    let (a02_web, a05_web) = (d.join("nginx-a02"), d.join("nginx-a05"));
    let a05_ns = format!("pirack-sim-{}-2", sim.0.id());
    let a05_name = "example-a-05.pi.example.net";
    let _tls_web = nginx(
        &format!("pirack-sim-{}-1", sim.0.id()),
        &a02_web,
        "example-a-02.pi.example.net",
    );
    let mut web = nginx(&a05_ns, &a05_web, a05_name);
    let _ganesha = common::nfs::Ganesha::start(&ctl, d);
    let _controller = api.serve(&inventory, d, boot.path());
    let _alertmanager = alertmanager(&ctl, d, h);
    let _prometheus = prometheus(&ctl, d, &admin);

    // Customers' own routes: acme's to Pushover, globex's to a webhook.
    let r = api.call(
        &acme,
        "POST",
        "/v1/alert-routes",
        Some(r#"{"uri":"pover://acmeuser@acmetoken"}"#),
    );
    assert_eq!(r["owner"], "acme", "{r}");
    assert_eq!(r["uri"], "pover://acme…", "the secret is not shown: {r}");
    let body = format!(r#"{{"uri":"json://{h}/globex"}}"#);
    let r = api.call(&globex, "POST", "/v1/alert-routes", Some(&body));
    assert_eq!(r["owner"], "globex", "{r}");
    let r = api.call(
        &globex,
        "POST",
        "/v1/alert-routes",
        Some(r#"{"uri":"ntfy://x/y","owner":"acme"}"#),
    );
    assert_eq!(r["code"], "forbidden", "{r}");
    // Not at the site's other private addresses, by number or by name.
    for inside in [
        "json://10.46.189.1/x",
        "ntfy://[::1]:80/t",
        "gotify://[fe80::1]/tok",
    ] {
        let body = format!(r#"{{"uri":"{inside}"}}"#);
        let r = api.call(&acme, "POST", "/v1/alert-routes", Some(&body));
        assert_eq!(r["code"], "bad_request", "{inside}: {r}");
    }
    let routes = api.call(&acme, "GET", "/v1/alert-routes", None);
    assert_eq!(
        routes.as_array().unwrap().len(),
        1,
        "acme sees its own route only: {routes}"
    );

    for (slot, owner) in [("A-01", "acme"), ("A-02", "acme"), ("A-05", "globex")] {
        let body = format!(r#"{{"image":"tiny-1","owner":"{owner}","slot":"{slot}"}}"#);
        let op = api.call(&admin, "POST", "/v1/slots", Some(&body));
        api.wait(&admin, &op);
        api.call(
            &admin,
            "POST",
            &format!("/v1/slots/{slot}/power"),
            Some(r#"{"action":"on"}"#),
        );
    }
    let all_up = || {
        let slots = api.call(&admin, "GET", "/v1/slots", None);
        let up = common::strings(&slots, "state")
            .iter()
            .filter(|s| **s == "up")
            .count();
        (up == 3).then_some(())
    };
    until("three Pis up", Duration::from_secs(150), all_up);
    let way = |slot: &str, interface: &str| {
        let s = api.call(&admin, "GET", &format!("/v1/slots/{slot}"), None);
        (
            s["ipv6"]
                .as_str()
                .unwrap_or_else(|| panic!("{s}"))
                .to_string(),
            interface.to_string(),
        )
    };
    let (a01, a02, a05) = (
        way("A-01", "eth0.10"),
        way("A-02", "eth0.11"),
        way("A-05", "eth0.14"),
    );
    // Watched and healthy: checks up, round trips measured, nothing sent.
    until("A-01's checks up", Duration::from_secs(15), || {
        let v = api.call(&acme, "GET", "/v1/slots/A-01/checks", None);
        (v["checks"]["ping"] == "up" && v["checks"]["tcp/22"] == "up" && v["rtt_ms"].is_number())
            .then_some(())
    });
    assert!(hooks.all().is_empty(), "{:?}", hooks.all());
    // The visitors' path: through the proxy's IPv4 listener to nginx, by
    // Host (A-05) and by SNI (A-02, TLS ending on the Pi), with the PROXY
    // header naming the client.
    until("the http checks up", Duration::from_secs(15), || {
        let a05 = api.call(&globex, "GET", "/v1/slots/A-05/checks", None);
        let a02 = api.call(&acme, "GET", "/v1/slots/A-02/checks", None);
        (a05["checks"]["http"] == "up" && a02["checks"]["http"] == "up").then_some(())
    });
    for (dir, line) in [
        (
            &a05_web,
            "127.0.0.1 example-a-05.pi.example.net /health http",
        ),
        (
            &a02_web,
            "127.0.0.1 example-a-02.pi.example.net /health https",
        ),
    ] {
        let access = std::fs::read_to_string(dir.join("access.log")).unwrap();
        assert!(access.contains(line), "{access}");
    }

    // A-01 is cut off: one alert, told once to each route that should hear.
    link(&ctl, &a01, false);
    let fire = until("the staff's ntfy notice", Duration::from_secs(20), || {
        hooks.to("/noc").pop()
    });
    assert!(
        fire.header("title")
            .is_some_and(|t| t.contains("A-01 is down")),
        "{fire:?}"
    );
    assert_eq!(fire.header("priority"), Some("high"));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(hooks.to("/noc").len(), 1, "{:?}", hooks.to("/noc"));
    let prowl = hooks.to("/prowl/publicapi/add");
    assert_eq!(prowl.len(), 1);
    assert!(
        prowl[0].body.contains("apikey=0123456789abcdef"),
        "{}",
        prowl[0].body
    );
    let pushover = hooks.to("/pushover/1/messages.json");
    assert_eq!(pushover.len(), 1, "acme's own route hears of its slot");
    assert!(pushover[0].body.contains("user=acmeuser"));
    assert!(
        hooks.to("/globex").is_empty(),
        "globex's route hears nothing of acme's slot"
    );
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(
        mail[0].contains("noc@example.com") && mail[0].contains("A-01 is down"),
        "{}",
        mail[0]
    );
    let open = api.call(&admin, "GET", "/v1/alerts?open=true", None);
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
    let id = open[0]["id"].as_i64().unwrap();
    assert_eq!(open[0]["cause"], "slot:sw-a/1");
    assert_eq!(
        api.call(&globex, "GET", "/v1/alerts", None),
        serde_json::json!([])
    );
    let seen = api.call(&acme, "GET", &format!("/v1/alerts/{id}"), None);
    let deliveries = seen["deliveries"].as_array().unwrap();
    assert_eq!(
        deliveries.len(),
        1,
        "acme sees its own delivery only: {seen}"
    );
    assert_eq!(deliveries[0]["status"], "sent");
    let all = api.call(&admin, "GET", &format!("/v1/alerts/{id}"), None);
    assert_eq!(all["deliveries"].as_array().unwrap().len(), 5, "{all}");
    // The rack view shows it: A-01's tile down, A-02's up with its round trip,
    // the shelf's PoE supply against its budget, and a slot's chart.
    if have(test, "chromedriver") {
        let local = pirack_lab::forward::start(0, ctl.name(), API.parse().unwrap()).unwrap();
        let profile = tempfile::tempdir().unwrap();
        let browser = common::webdriver::Browser::start(profile.path());
        browser.goto(&format!("http://{local}/#token={admin}"));
        let tile = |slot: &str, check: &str| {
            format!(
                "const t = document.querySelector(\"button[data-slot='{slot}']\"); \
                 return t != null && t.dataset.check === '{check}' && t.textContent;"
            )
        };
        let within = Duration::from_secs(20);
        browser.wait_for("A-01's tile down", &tile("A-01", "down"), within);
        let a02 = browser.wait_for("A-02's tile up", &tile("A-02", "up"), within);
        assert!(a02.as_str().is_some_and(|t| t.contains(" ms")), "{a02}");
        browser.wait_for(
            "the supply's gauge",
            "const m = document.querySelector(\".supply[data-switch='sw-a'] meter\"); \
             return m != null && m.max === 10 && m.value > 0;",
            within,
        );
        browser.click("//button[@data-slot='A-02']");
        browser.wait_for(
            "A-02's round trips charted",
            "return document.querySelector('#chart polyline[data-series=ms]') != null;",
            within,
        );
    }

    // Alertmanager has pirack's alert, and Prometheus's rule on pirack's metrics.
    until("Alertmanager's webhook", Duration::from_secs(30), || {
        (told(&hooks, "PirackAlert", "firing") && told(&hooks, "PiCheckDown", "firing"))
            .then_some(())
    });
    let events = api.call(&acme, "GET", "/v1/events?slot=A-01&limit=50", None);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "check" && e["cause"] == "ping"),
        "{events}"
    );

    // Restored: recovery, once.
    link(&ctl, &a01, true);
    let resolved = until("the recovery", Duration::from_secs(20), || {
        let n = hooks.to("/noc");
        (n.len() == 2).then(|| n[1].clone())
    });
    assert!(
        resolved
            .header("title")
            .is_some_and(|t| t.contains("resolved")),
        "{resolved:?}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(hooks.to("/noc").len(), 2);
    assert_eq!(hooks.to("/pushover/1/messages.json").len(), 2);
    until(
        "Alertmanager told of the recovery",
        Duration::from_secs(30),
        || told(&hooks, "PirackAlert", "resolved").then_some(()),
    );

    // A power cycle by the controller raises nothing.
    let sent = || hooks.all().into_iter().filter(|r| r.path != "/am").count();
    let before = sent();
    api.call(
        &admin,
        "POST",
        "/v1/slots/A-02/power",
        Some(r#"{"action":"cycle"}"#),
    );
    until("A-02 cycled", Duration::from_secs(30), || {
        let s = api.call(&admin, "GET", "/v1/slots/A-02", None);
        (s["state"] != "up").then_some(())
    });
    until("A-02 back up", Duration::from_secs(120), all_up);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(sent(), before, "{:?}", hooks.all());

    // The switch stops answering and its Pis fail with it: one alert.
    agent.fault(&["delay_ms=3000"]);
    link(&ctl, &a01, false);
    link(&ctl, &a02, false);
    let grouped = until("the grouped notice", Duration::from_secs(30), || {
        let n = hooks.to("/noc");
        (n.len() == 3).then(|| n[2].clone())
    });
    assert!(
        grouped
            .header("title")
            .is_some_and(|t| t.contains("switch sw-a does not answer")),
        "{grouped:?}"
    );
    assert!(
        grouped.body.contains("A-01") && grouped.body.contains("A-02"),
        "{}",
        grouped.body
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        hooks.to("/noc").len(),
        3,
        "one notice, not one per Pi: {:?}",
        hooks.to("/noc")
    );
    let open = api.call(&admin, "GET", "/v1/alerts?open=true", None);
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
    assert_eq!(open[0]["cause"], "switch:sw-a");
    agent.fault(&["clear=1"]);
    link(&ctl, &a01, true);
    link(&ctl, &a02, true);
    until("the grouped recovery", Duration::from_secs(30), || {
        (hooks.to("/noc").len() == 4).then_some(())
    });

    // The switch answers but its PoE supply fails, and its Pis with it: one
    // alert under the supply.
    agent.fault(&["pse=\"faulty\""]);
    link(&ctl, &a01, false);
    link(&ctl, &a02, false);
    let supply = until("the supply's notice", Duration::from_secs(30), || {
        let n = hooks.to("/noc");
        (n.len() == 5).then(|| n[4].clone())
    });
    assert!(
        supply
            .header("title")
            .is_some_and(|t| t.contains("sw-a's PoE supply is faulty")),
        "{supply:?}"
    );
    assert!(
        supply.body.contains("A-01") && supply.body.contains("A-02"),
        "{}",
        supply.body
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(hooks.to("/noc").len(), 5, "{:?}", hooks.to("/noc"));
    let open = api.call(&admin, "GET", "/v1/alerts?open=true", None);
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
    assert_eq!(open[0]["cause"], "supply:sw-a");
    agent.fault(&["clear=1"]);
    link(&ctl, &a01, true);
    link(&ctl, &a02, true);
    until("the supply's recovery", Duration::from_secs(30), || {
        (hooks.to("/noc").len() == 6).then_some(())
    });

    // globex's own window keeps A-05 quiet; once it ends, the alert comes.
    let w = api.call(
        &globex,
        "POST",
        "/v1/maintenance",
        Some(r#"{"scope":"slot:A-05","minutes":30,"reason":"upgrade"}"#),
    );
    let wid = w["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{w}"))
        .to_string();
    assert_eq!(w["scope"], "slot:sw-a/5");
    let theirs = api.call(
        &globex,
        "POST",
        "/v1/maintenance",
        Some(r#"{"scope":"slot:A-01","minutes":30}"#),
    );
    assert_eq!(theirs["code"], "not_found", "{theirs}");
    link(&ctl, &a05, false);
    std::thread::sleep(Duration::from_secs(6));
    assert!(hooks.to("/globex").is_empty(), "{:?}", hooks.to("/globex"));
    assert_eq!(hooks.to("/noc").len(), 6);
    api.call(&globex, "DELETE", &format!("/v1/maintenance/{wid}"), None);
    let theirs = until("globex's webhook", Duration::from_secs(20), || {
        hooks.to("/globex").pop()
    });
    let v: serde_json::Value = serde_json::from_str(&theirs.body).unwrap();
    assert_eq!(v["notice"], "fire");
    assert_eq!(v["slots"][0]["position"], "A-05", "{v}");
    assert_eq!(
        hooks.to("/pushover/1/messages.json").len(),
        6,
        "acme hears nothing of A-05"
    );
    // Its recovery reaches globex's route too.
    link(&ctl, &a05, true);
    until("A-05's recovery", Duration::from_secs(20), || {
        (hooks.to("/globex").len() == 2).then_some(())
    });

    // Two more ports on: the supply's draw passes 90 % of its 10 W budget,
    // which the staff hear of and the customers do not.
    for p in [7, 8] {
        let on = agent.net_snmp(
            "snmpset",
            &[&format!("1.3.6.1.2.1.105.1.1.1.3.1.{p}"), "i", "1"],
        );
        assert!(on.status.success(), "{}", text(&on.stderr));
    }
    let power = until("the power notice", Duration::from_secs(30), || {
        hooks.to("/noc").into_iter().find(|r| {
            r.header("title")
                .is_some_and(|t| t.contains("PoE supply draws"))
        })
    });
    assert!(
        power.body.is_empty() || !power.body.contains("A-0"),
        "{power:?}"
    );
    assert_eq!(hooks.to("/pushover/1/messages.json").len(), 6);
    assert_eq!(hooks.to("/globex").len(), 2);

    // A-05's server stops: its ping and port still answer, but visitors get
    // the proxy's 502, and globex hears of it; then of its return.
    drop(web);
    let theirs = until("the http notice", Duration::from_secs(20), || {
        let n = hooks.to("/globex");
        (n.len() == 3).then(|| n[2].clone())
    });
    assert!(
        theirs
            .body
            .contains("http: example-a-05.pi.example.net/health answered 502"),
        "{}",
        theirs.body
    );
    web = nginx(&a05_ns, &a05_web, a05_name);
    until("the http recovery", Duration::from_secs(20), || {
        (hooks.to("/globex").len() == 4).then_some(())
    });

    // A-01 flaps: four times down and back. Its second fault is told and
    // resolved like any; from its third (within flap_window_s) it is one
    // alert held open, told nobody again, resolved once it has stayed up
    // for flap_quiet_s.
    let acme_before = hooks.to("/pushover/1/messages.json").len();
    let mut held = false;
    for _ in 0..4 {
        link(&ctl, &a01, false);
        std::thread::sleep(Duration::from_secs(5));
        link(&ctl, &a01, true);
        std::thread::sleep(Duration::from_secs(4));
        let open = api.call(&admin, "GET", "/v1/alerts?open=true", None);
        held |= open.as_array().unwrap().iter().any(|a| {
            a["cause"] == "slot:sw-a/1" && a["summary"].as_str().unwrap().ends_with("(flapping)")
        });
    }
    assert!(held, "A-01's alert was held open as flapping");
    until("the flapping alert's end", Duration::from_secs(30), || {
        let open = api.call(&admin, "GET", "/v1/alerts?open=true", None);
        (!open
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["cause"] == "slot:sw-a/1"))
        .then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let acme: Vec<_> = hooks.to("/pushover/1/messages.json").split_off(acme_before);
    assert_eq!(
        acme.len(),
        4,
        "two fires and two recoveries for four flaps: {acme:?}"
    );
    // The staff's ntfy route had 15 notices to send and a budget of 11.
    assert_eq!(hooks.to("/noc").len(), 11, "{:?}", hooks.to("/noc"));
    let last = api.call(&admin, "GET", "/v1/alerts?limit=1", None);
    let id = last[0]["id"].as_i64().unwrap_or_else(|| panic!("{last}"));
    let seen = api.call(&admin, "GET", &format!("/v1/alerts/{id}"), None);
    assert!(
        seen["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["route"] == "site:0" && d["status"] == "limited"),
        "{seen}"
    );
    drop(web);
}
