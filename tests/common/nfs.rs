//! NFS-Ganesha (with rpcbind) in a test's namespace, serving what pirack exports:
//! the inventory names `<dir>/pirack-exports.conf` as its exports file and
//! `<dir>/ganesha.pid` as the server to signal.

use super::{Child, Netns};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// The inventory's `exports:` section for a ganesha running in `dir`.
pub fn inventory_section(dir: &Path) -> String {
    format!(
        "\nexports:\n  backend: ganesha\n  file: {}\n  ganesha_pid_file: {}\n",
        dir.join("pirack-exports.conf").display(),
        dir.join("ganesha.pid").display()
    )
}

/// rpcbind and ganesha.nfsd, stopped on drop. Start them once the namespace has a
/// non-loopback address: ganesha does not start without one.
pub struct Ganesha {
    _ganesha: Child,
    _rpcbind: Child,
}

impl Ganesha {
    pub fn start(ns: &Netns, dir: &Path) -> Ganesha {
        let exports = dir.join("pirack-exports.conf");
        let pid_file = dir.join("ganesha.pid");
        std::fs::write(&exports, "# no roots yet\n").unwrap();
        let conf = dir.join("ganesha.conf");
        std::fs::write(
            &conf,
            pirack_core::plan::render::exports::ganesha_server(&exports),
        )
        .unwrap();
        let rpcbind = Child(
            ns.command("rpcbind")
                .args(["-w", "-f"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(300));
        let ganesha = Child(
            ns.command("ganesha.nfsd")
                .args(["-F", "-f"])
                .arg(&conf)
                .arg("-L")
                .arg(dir.join("ganesha.log"))
                .arg("-p")
                .arg(&pid_file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        for _ in 0..50 {
            if std::fs::read_to_string(&pid_file).is_ok_and(|p| !p.trim().is_empty()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ganesha {
            _ganesha: ganesha,
            _rpcbind: rpcbind,
        }
    }
}
