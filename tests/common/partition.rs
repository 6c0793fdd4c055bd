//! A TCP path that can be cut like a network partition: connections through
//! it stay open but carry nothing from then on (no reset, no FIN).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub struct Path {
    /// Where to connect instead of the target.
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
}

impl Path {
    /// Listens on loopback and carries each connection to `target`.
    pub fn to(target: SocketAddr) -> Path {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let c = Arc::clone(&cut);
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let cut = Arc::clone(&c);
                    std::thread::spawn(move || carry(from, to, &cut));
                }
            }
        });
        Path { addr, cut }
    }

    /// Nothing passes from now on (what was sent waits, as in a lost link).
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }
}

fn carry(mut from: TcpStream, mut to: TcpStream, cut: &AtomicBool) {
    let mut buf = [0u8; 16384];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while cut.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if to.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}
