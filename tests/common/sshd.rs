//! OpenSSH's sshd as the backup tests' SFTP server: a host key and a client
//! key made here, the host key pinned in `known_hosts`, SFTP only.

use super::Child;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Writes into `dir` the keys `host` and `id`, `authorized_keys` (the
/// client's), `known_hosts` (the host key at `listen`) and an `sshd_config`
/// listening on `listen`.
pub fn configure(dir: &Path, listen: SocketAddr) {
    std::fs::create_dir_all(dir).unwrap();
    for key in ["host", "id"] {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(dir.join(key))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh-keygen: {}",
            super::text(&out.stderr)
        );
    }
    std::fs::copy(dir.join("id.pub"), dir.join("authorized_keys")).unwrap();
    let host_pub = std::fs::read_to_string(dir.join("host.pub")).unwrap();
    // OpenSSH names a host on another port than 22 as `[ip]:port`.
    let known_as = match listen.port() {
        22 => listen.ip().to_string(),
        _ => format!("[{}]:{}", listen.ip(), listen.port()),
    };
    std::fs::write(dir.join("known_hosts"), format!("{known_as} {host_pub}")).unwrap();
    std::fs::write(
        dir.join("sshd_config"),
        format!(
            "ListenAddress {listen}\nHostKey {s}/host\nAuthorizedKeysFile {s}/authorized_keys\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\nStrictModes no\n\
             PidFile none\nSubsystem sftp internal-sftp\n",
            s = dir.display()
        ),
    )
    .unwrap();
}

/// Runs `sshd` (`/usr/sbin/sshd`, in a namespace or not) on `dir`'s
/// configuration, once it accepts connections at `listen`; its log is
/// `dir/sshd.log`.
pub fn start(mut sshd: Command, dir: &Path, listen: SocketAddr) -> Child {
    // sshd's privilege separation directory, which its packaged service makes.
    std::fs::create_dir_all("/run/sshd").unwrap();
    let child = Child(
        sshd.args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(listen).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "sshd did not come up: {}",
            std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}
