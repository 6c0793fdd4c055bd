//! The rack view on this machine's loopback: the controller's API listens inside
//! its own namespace, so connections to a local port are carried into it; and
//! the other way, a database on this machine's loopback reached from inside the
//! namespace at the same address. The demo touches no interface of the host's own.

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

/// Listens on `target` inside `netns` and carries each connection out to
/// `target` on this machine (a PostgreSQL on its loopback, for a lab's
/// controllers).
pub fn out_of(netns: &str, target: SocketAddr) -> Result<()> {
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let (conns_tx, conns) = std::sync::mpsc::channel::<TcpStream>();
    let netns = netns.to_string();
    // This thread moves into the namespace to listen there; the connections
    // out are made by one that stays here.
    std::thread::spawn(move || {
        let listener =
            crate::testbed::netns::enter(&netns).and_then(|()| TcpListener::bind(target));
        let listener = match listener {
            Ok(l) => {
                let _ = ready_tx.send(Ok(()));
                l
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        for client in listener.incoming().map_while(Result::ok) {
            if conns_tx.send(client).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for client in conns {
            std::thread::spawn(move || match TcpStream::connect(target) {
                Ok(server) => pipe(client, server),
                Err(e) => tracing::debug!("carrying a connection to {target}: {e}"),
            });
        }
    });
    ready
        .recv()?
        .with_context(|| format!("listening on {target} inside the lab's namespace"))
}

/// Connects from inside `netns` (this thread moves there) and copies both ways.
fn carry(client: TcpStream, netns: &str, target: SocketAddr) -> std::io::Result<()> {
    crate::testbed::netns::enter(netns)?;
    let server = TcpStream::connect(target)?;
    pipe(client, server);
    Ok(())
}

/// Copies both ways until both sides are done.
fn pipe(client: TcpStream, server: TcpStream) {
    let (Ok(mut c_in), Ok(mut s_out)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let _ = copy(&mut c_in, &mut s_out);
        let _ = s_out.shutdown(Shutdown::Write);
    });
    let (mut s_in, mut c_out) = (server, client);
    let _ = copy(&mut s_in, &mut c_out);
    let _ = c_out.shutdown(Shutdown::Write);
    let _ = up.join();
}
