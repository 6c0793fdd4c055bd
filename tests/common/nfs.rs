//! NFS-Ganesha (with rpcbind) in a test's namespace, serving what pirack exports:
//! the inventory names `<dir>/pirack-exports.conf` as its exports file and
//! `<dir>/ganesha.pid` as the server to signal.

use super::Netns;
use pirack_lab::testbed;
use std::path::Path;

/// The inventory's `exports:` section for a ganesha running in `dir`.
pub fn inventory_section(dir: &Path) -> String {
    format!(
        "\nexports:\n  backend: ganesha\n  file: {}\n  ganesha_pid_file: {}\n",
        dir.join("pirack-exports.conf").display(),
        dir.join("ganesha.pid").display()
    )
}

/// rpcbind and ganesha.nfsd (the testbed's), stopped on drop. Start them once the
/// namespace has a non-loopback address: ganesha does not start without one.
pub struct Ganesha(pub testbed::nfs::Ganesha);

impl Ganesha {
    pub fn start(ns: &Netns, dir: &Path) -> Ganesha {
        let exports = dir.join("pirack-exports.conf");
        let pid_file = dir.join("ganesha.pid");
        Ganesha(testbed::nfs::Ganesha::start(ns.name(), dir, &exports, &pid_file).unwrap())
    }
}
