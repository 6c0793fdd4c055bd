//! What the tests, the benchmarks and the labs stand up around a controller, one
//! implementation for all three: network namespaces and their links, processes
//! that die with whoever started them, loop-device filesystems, and the real
//! peers (snmpd running the emulated PoE switch, NFS-Ganesha with rpcbind), with
//! the Debian packages they come from. What is made is removed when its handle is
//! dropped.

pub mod apt;
pub mod loopfs;
pub mod netns;
pub mod nfs;
pub mod proc;
pub mod switch;

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    /// A command or a peer did not do what it should; `detail` says what it said.
    #[error("{what}: {detail}")]
    Failed { what: String, detail: String },
}

pub type Result<T> = std::result::Result<T, TestbedError>;

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> TestbedError {
    let what = what.into();
    move |source| TestbedError::Io { what, source }
}

fn failed(what: impl Into<String>, detail: impl Into<String>) -> TestbedError {
    TestbedError::Failed {
        what: what.into(),
        detail: detail.into(),
    }
}

/// Runs `cmd` to its end; its stdout, or an error with its stderr.
fn run(what: &str, cmd: &mut std::process::Command) -> Result<String> {
    let out = cmd.output().map_err(io_err(what))?;
    if !out.status.success() {
        return Err(failed(
            what,
            format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A UDP port on loopback that nothing listens on now (bound, then released).
pub fn free_udp_port() -> io::Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A TCP port on loopback that nothing listens on now.
pub fn free_tcp_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A self-signed certificate (RSA-2048, a day) for `subject_alt_name`
/// (openssl's syntax, `DNS:a.example,IP:127.0.0.1`): `cert.pem` and `key.pem`
/// in `dir`.
pub fn self_signed(dir: &std::path::Path, common_name: &str, subject_alt_name: &str) -> Result<()> {
    run(
        "openssl req (a self-signed certificate)",
        std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", &format!("/CN={common_name}")])
            .args(["-addext", &format!("subjectAltName={subject_alt_name}")])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem")),
    )
    .map(drop)
}
