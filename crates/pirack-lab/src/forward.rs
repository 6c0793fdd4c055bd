//! The rack view on this machine's loopback: the controller's API listens inside
//! its own namespace, so connections to a local port are carried into it. The
//! demo touches no interface of the host's own.

use anyhow::{Context, Result};
use std::io::{ErrorKind, copy};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};

/// Listens on `127.0.0.1:port` (any free port if that one is taken) and carries
/// each connection to `target` inside `netns`. Returns the local address.
pub fn start(port: u16, netns: &str, target: SocketAddr) -> Result<SocketAddr> {
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Err(e) if e.kind() == ErrorKind::AddrInUse => TcpListener::bind("127.0.0.1:0"),
        other => other,
    }
    .context("listening for the rack view on loopback")?;
    let local = listener.local_addr()?;
    let netns = netns.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let netns = netns.clone();
            std::thread::spawn(move || {
                if let Err(e) = carry(client, &netns, target) {
                    tracing::debug!("rack view connection: {e}");
                }
            });
        }
    });
    Ok(local)
}

/// Connects from inside `netns` (this thread moves there) and copies both ways.
fn carry(client: TcpStream, netns: &str, target: SocketAddr) -> std::io::Result<()> {
    crate::testbed::netns::enter(netns)?;
    let server = TcpStream::connect(target)?;
    let (mut c_in, mut s_out) = (client.try_clone()?, server.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = copy(&mut c_in, &mut s_out);
        let _ = s_out.shutdown(Shutdown::Write);
    });
    let (mut s_in, mut c_out) = (server, client);
    let _ = copy(&mut s_in, &mut c_out);
    let _ = c_out.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}
