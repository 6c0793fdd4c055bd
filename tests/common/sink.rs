//! Stand-ins for the push services and a mail relay: an HTTP server that
//! records every request (ntfy, Prowl, Pushover, webhooks alike) and an SMTP
//! sink that records every message, both listening on a namespace's loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request: its path, headers (lower-cased names) and body.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a server took in, one entry per connection.
type Seen<T> = Arc<Mutex<Vec<T>>>;

/// Serves 127.0.0.1 inside `netns` (this process's namespace for `None`), one
/// connection at a time, keeping what `take` makes of each.
fn serve<T: Send + 'static>(
    netns: Option<&str>,
    take: fn(&TcpStream) -> Option<T>,
) -> (SocketAddr, Seen<T>) {
    let netns = netns.map(str::to_string);
    let listener = std::thread::spawn(move || {
        if let Some(n) = &netns {
            pirack_lab::testbed::netns::enter(n).unwrap();
        }
        TcpListener::bind("127.0.0.1:0").unwrap()
    })
    .join()
    .unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen<T> = Arc::default();
    let s = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            if let Some(t) = take(&conn) {
                s.lock().unwrap().push(t);
            }
        }
    });
    (addr, seen)
}

pub struct Http {
    pub addr: SocketAddr,
    seen: Seen<Request>,
}

impl Http {
    pub fn start(netns: Option<&str>) -> Http {
        let (addr, seen) = serve(netns, |conn| {
            let r = read_request(conn);
            // Prowl's and NMA's answer; the others read only the status.
            let body = "<prowl><success code=\"200\"/></prowl>\n";
            let _ = (&*conn).write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
            r
        });
        Http { addr, seen }
    }

    /// The requests to `path` so far.
    pub fn to(&self, path: &str) -> Vec<Request> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    pub fn all(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

fn read_request(conn: &TcpStream) -> Option<Request> {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some(Request {
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// An SMTP server that takes every message.
pub struct Smtp {
    pub addr: SocketAddr,
    seen: Seen<String>,
}

impl Smtp {
    pub fn start(netns: Option<&str>) -> Smtp {
        let (addr, seen) = serve(netns, session);
        Smtp { addr, seen }
    }

    /// Every message: its envelope recipient, headers and body.
    pub fn messages(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn session(conn: &TcpStream) -> Option<String> {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    let mut w = conn;
    let mut r = BufReader::new(conn);
    w.write_all(b"220 sink ESMTP\r\n").ok()?;
    let mut message = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        if cmd.starts_with("EHLO") {
            w.write_all(b"250-sink\r\n250 8BITMIME\r\n").ok()?;
        } else if cmd.starts_with("RCPT TO:") {
            message += line.trim_end();
            message += "\n";
            w.write_all(b"250 ok\r\n").ok()?;
        } else if cmd == "DATA" {
            w.write_all(b"354 go on\r\n").ok()?;
            loop {
                let mut l = String::new();
                r.read_line(&mut l).ok()?;
                if l == ".\r\n" {
                    break;
                }
                message += &l;
            }
            w.write_all(b"250 queued\r\n").ok()?;
        } else if cmd == "QUIT" {
            let _ = w.write_all(b"221 bye\r\n");
            return Some(message);
        } else {
            w.write_all(b"250 ok\r\n").ok()?;
        }
    }
}
