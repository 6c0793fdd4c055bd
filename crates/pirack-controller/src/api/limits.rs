//! The API's bounds: how many connections it holds, how long a client may take
//! to send a request head or leave a connection idle, and how many event
//! streams one token may keep open. A client that holds connections open costs
//! the controller a bounded share of its file descriptors, never DHCP's or
//! TFTP's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; beyond, a connection is answered 503 and closed.
    pub max_connections: usize,
    /// Time to send a request's head (and, over TLS, to finish the handshake);
    /// also how long a kept-alive connection waits for its next request.
    pub header_timeout: Duration,
    /// Time a connection may pass without a byte either way before it is closed.
    pub idle_timeout: Duration,
    /// Event streams one token may hold open (429 beyond).
    pub streams_per_token: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            streams_per_token: 16,
        }
    }
}

/// File descriptors kept back from API connections for everything else (the
/// store, DHCP, TFTP, SNMP, roots, consoles).
pub const FD_RESERVE: usize = 512;

impl Limits {
    /// `max_connections` within what the process's file limit allows after the
    /// reserve; the soft limit is raised to the hard one first.
    pub fn fitted(mut self) -> Limits {
        let fds = raise_fd_limit();
        let room = fds.saturating_sub(FD_RESERVE as u64).max(16);
        if (self.max_connections as u64) > room {
            tracing::warn!(
                "API: {} connections asked, {room} allowed by the file limit ({fds})",
                self.max_connections
            );
            self.max_connections = room as usize;
        }
        self
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; the soft limit now.
fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 1024,
    }
}

/// Event streams open per token.
#[derive(Debug, Default)]
pub struct Streams {
    per_token: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open stream, counted until dropped.
#[derive(Debug)]
pub struct StreamHeld {
    token: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl Streams {
    pub fn new(per_token: usize) -> Streams {
        Streams {
            per_token,
            open: Arc::default(),
        }
    }

    pub fn per_token(&self) -> usize {
        self.per_token
    }

    /// Counts a stream for `token`, unless it has its share open already.
    pub fn open(&self, token: &str) -> Option<StreamHeld> {
        let mut open = self.open.lock().expect("not poisoned");
        let n = open.entry(token.to_string()).or_default();
        if *n >= self.per_token {
            return None;
        }
        *n += 1;
        Some(StreamHeld {
            token: token.to_string(),
            open: Arc::clone(&self.open),
        })
    }
}

impl Drop for StreamHeld {
    fn drop(&mut self) {
        let mut open = self.open.lock().expect("not poisoned");
        if let Some(n) = open.get_mut(&self.token) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.token);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_gets_its_share_of_streams_back_as_they_close() {
        let s = Streams::new(2);
        let a = s.open("t1").unwrap();
        let _b = s.open("t1").unwrap();
        assert!(s.open("t1").is_none(), "third stream refused");
        assert!(s.open("t2").is_some(), "other tokens unaffected");
        drop(a);
        assert!(s.open("t1").is_some(), "a closed stream frees its place");
    }
}
