//! Authoritative DNS servers for the tests: BIND 9 and Knot DNS on loopback, each
//! with the zones it is given, a TSIG key that may update and transfer them, and
//! `dig` to read what they serve.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tests' TSIG key (hmac-sha256): its name and base64 secret.
pub const KEY: &str = "pirack-test";
pub const SECRET: &str = "cGlyYWNrLXRlc3Qta2V5LWZvci1ibmQtYW5kLWtub3QhIQ==";

pub struct Server {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A zone file with its SOA and NS and `records` (lines in zone-file syntax).
fn zone_file(zone: &str, records: &str) -> String {
    format!(
        "$ORIGIN {zone}.\n$TTL 300\n@ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ IN NS ns.test.\n{records}\n"
    )
}

/// BIND on a free port of 127.0.0.1, primary for `zones` (name, extra records).
pub fn bind(dir: &Path, zones: &[(&str, &str)]) -> Server {
    let port = free_port();
    std::fs::create_dir_all(dir).unwrap();
    let mut conf = format!(
        "options {{ directory \"{d}\"; listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};\n\
         recursion no; notify no; pid-file \"{d}/named.pid\"; session-keyfile \"{d}/session.key\"; }};\n\
         controls {{ }};\n\
         key \"{KEY}\" {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};\n",
        d = dir.display()
    );
    for (zone, records) in zones {
        let file = format!("{zone}.zone");
        std::fs::write(dir.join(&file), zone_file(zone, records)).unwrap();
        conf += &format!(
            "zone \"{zone}\" {{ type primary; file \"{file}\"; \
             update-policy {{ grant {KEY} zonesub ANY; }}; allow-transfer {{ key {KEY}; }}; }};\n"
        );
    }
    let conf_path = dir.join("named.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new("named")
        .args(["-g", "-c"])
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("named.log")).unwrap())
        .spawn()
        .expect("named starts");
    ready(dir, port, zones[0].0, child)
}

/// Knot DNS on a free port of 127.0.0.1, primary for `zones`.
pub fn knot(dir: &Path, zones: &[(&str, &str)]) -> Server {
    let port = free_port();
    std::fs::create_dir_all(dir.join("db")).unwrap();
    let mut conf = format!(
        "server:\n  listen: 127.0.0.1@{port}\n  rundir: {d}\n\
         key:\n  - id: {KEY}\n    algorithm: hmac-sha256\n    secret: {SECRET}\n\
         acl:\n  - id: pirack\n    key: {KEY}\n    action: [update, transfer]\n\
         template:\n  - id: default\n    storage: {d}\n    acl: pirack\n    zonefile-sync: -1\n    journal-content: all\n\
         database:\n  storage: {d}/db\n\
         zone:\n",
        d = dir.display()
    );
    for (zone, records) in zones {
        std::fs::write(dir.join(format!("{zone}.zone")), zone_file(zone, records)).unwrap();
        conf += &format!("  - domain: {zone}\n    file: {zone}.zone\n");
    }
    let conf_path = dir.join("knot.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new("knotd")
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("knot.log")).unwrap())
        .spawn()
        .expect("knotd starts");
    ready(dir, port, zones[0].0, child)
}

/// A loopback port free for both TCP and UDP: DNS servers take both, and an
/// update or transfer over TCP must not meet another process's listener.
fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn ready(dir: &Path, port: u16, zone: &str, child: Child) -> Server {
    let server = Server {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        dir: dir.to_path_buf(),
        child,
    };
    let started = Instant::now();
    let listening = || std::net::TcpStream::connect(server.addr).is_ok();
    while dig(&server, zone, "SOA").is_empty() || !listening() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the DNS server did not answer for {zone}: {}",
            std::fs::read_to_string(dir.join("named.log"))
                .or_else(|_| std::fs::read_to_string(dir.join("knot.log")))
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// What the server answers for `name` and `rtype`, one record data per line.
pub fn dig(server: &Server, name: &str, rtype: &str) -> Vec<String> {
    let out = Command::new("dig")
        .args(["+short", "+norecurse", "+time=1", "+tries=1", "-p"])
        .arg(server.addr.port().to_string())
        .arg("@127.0.0.1")
        .args([name, rtype])
        .output()
        .expect("dig runs");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with(';') && !l.is_empty())
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// Waits until `name`'s `rtype` answer is `want` (sorted); the last answer.
pub fn wait_for(server: &Server, name: &str, rtype: &str, want: &[&str]) -> Vec<String> {
    let started = Instant::now();
    loop {
        let got = dig(server, name, rtype);
        if got == want || started.elapsed() > Duration::from_secs(15) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs nsupdate with the tests' key against `server`.
pub fn nsupdate(server: &Server, commands: &str) {
    let script = format!(
        "server 127.0.0.1 {}\nkey hmac-sha256:{KEY} {SECRET}\n{commands}\nsend\n",
        server.addr.port()
    );
    let mut child = Command::new("nsupdate")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nsupdate runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nsupdate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Appends a `dns:` section for `server` to the inventory at `inventory`, the
/// key's secret in a file beside it (0600).
pub fn add_to(inventory: &Path, server: &Server) {
    let key = inventory.with_file_name("dns.key");
    std::fs::write(
        &key,
        format!("key \"{KEY}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n"),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&key).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&key, perms).unwrap();
    let section = format!(
        "\ndns:\n  servers: [{{ address: 127.0.0.1, port: {} }}]\n  key: {{ name: {KEY}, algorithm: hmac-sha256, secret: {{ file: dns.key }} }}\n  ttl: 300\n  proxy_ipv4: 192.0.2.80\n",
        server.addr.port()
    );
    let yaml = std::fs::read_to_string(inventory).unwrap() + &section;
    std::fs::write(inventory, yaml).unwrap();
}
