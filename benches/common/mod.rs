//! Helpers shared by the benchmarks (each bench uses some of them).
#![allow(dead_code)]

pub mod image;
pub mod targets;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The value after `name` on the command line, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs a command that must succeed; its stdout.
pub fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether this process may make namespaces and loop devices; says why not.
pub fn is_root(bench: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("{bench} needs root; skipped");
    }
    root
}

/// Whether every one of `tools` is on the PATH; says which is missing.
pub fn have(bench: &str, tools: &[&str]) -> bool {
    let missing = tools.iter().find(|t| {
        !std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()))
    });
    if let Some(tool) = missing {
        eprintln!("{bench} needs {tool}; skipped");
    }
    missing.is_none()
}

/// A `pirack serve`, stopped when dropped.
pub struct Serve(pub Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pseudo-random bytes (xorshift), `n` at each call: boot files' content.
pub fn noise() -> impl FnMut(usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    move |n| {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }
}

/// Imports image `bench-1` into `store`: `boot`'s files and a root of one
/// file (written under `dir/root`).
pub fn bench_image(store: &Path, dir: &Path, boot: &Path) {
    std::fs::create_dir_all(dir.join("root/etc")).unwrap();
    std::fs::write(dir.join("root/etc/os-release"), "NAME=bench\n").unwrap();
    let import = pirack_controller::roots::image::Import {
        name: "bench".into(),
        version: "1".into(),
        root: dir.join("root"),
        boot: boot.to_path_buf(),
        cmdline: "console=ttyAMA0,115200".into(),
    };
    pirack_controller::roots::image::import(store, &import, &|_, _| {}).unwrap();
}

/// One request on a fresh connection; the status and the body.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// A loopback address with a free TCP port.
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Starts `pirack serve` on `addr` with `extra` arguments, and waits for it.
pub fn serve(inventory: &Path, d: &Path, db: &str, addr: SocketAddr, extra: &[&str]) -> Serve {
    let child = Command::new(env!("CARGO_BIN_EXE_pirack"))
        .arg("serve")
        .arg("--inventory")
        .arg(inventory)
        .args(["--db", db, "--api", &addr.to_string(), "--no-export"])
        .args(["--dhcp-port", "16767", "--tftp-port", "16969"])
        .arg("--images")
        .arg(d.join("images"))
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    let mut serve = Serve(child);
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = serve.0.try_wait() {
            let log = std::fs::read_to_string(d.join("serve.log")).unwrap_or_default();
            panic!("pirack serve ended at start ({status}):\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    serve
}
