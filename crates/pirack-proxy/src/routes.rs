//! Which backend a name goes to. The table is replaced whole when the routes
//! change; a connection keeps the backend it was given, so a change never
//! touches an open connection. A backend whose route did not change keeps its
//! identity (and its connection count) across replacements.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::{Arc, RwLock};
use tokio::sync::Semaphore;

/// The PROXY protocol header a backend is sent first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Off,
    #[default]
    V1,
    V2,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Off => "off",
            Protocol::V1 => "v1",
            Protocol::V2 => "v2",
        }
    }
}

/// A backend and the names routed to it, as the controller publishes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// What the backend is (a slot's key): in logs and metrics.
    pub backend: String,
    /// Exact names, or `*.example.com` for every name under example.com.
    pub names: Vec<String>,
    /// The Pi's addresses, tried in turn.
    pub addrs: Vec<Ipv6Addr>,
    #[serde(default)]
    pub protocol: Protocol,
}

/// A backend as connections use it.
#[derive(Debug)]
pub struct Backend {
    pub name: String,
    pub addrs: Vec<Ipv6Addr>,
    pub protocol: Protocol,
    /// Connections it may still take.
    pub slots: Arc<Semaphore>,
}

#[derive(Debug, Default)]
pub struct Table {
    exact: HashMap<String, Arc<Backend>>,
    wild: HashMap<String, Arc<Backend>>,
}

impl Table {
    /// The table for `routes`, each backend taking at most `per_backend`
    /// connections; backends unchanged from `old` are carried over.
    pub fn build(routes: &[Route], per_backend: usize, old: &Table) -> Table {
        let carried: HashMap<&str, &Arc<Backend>> = old
            .exact
            .values()
            .chain(old.wild.values())
            .map(|b| (b.name.as_str(), b))
            .collect();
        let mut t = Table::default();
        for r in routes {
            let backend = match carried.get(r.backend.as_str()) {
                Some(b) if b.addrs == r.addrs && b.protocol == r.protocol => Arc::clone(b),
                _ => Arc::new(Backend {
                    name: r.backend.clone(),
                    addrs: r.addrs.clone(),
                    protocol: r.protocol,
                    slots: Arc::new(Semaphore::new(per_backend)),
                }),
            };
            for n in &r.names {
                match n.strip_prefix("*.") {
                    Some(parent) => {
                        if let Some(p) = normal(parent) {
                            t.wild.insert(p, Arc::clone(&backend));
                        }
                    }
                    None => {
                        if let Some(n) = normal(n) {
                            t.exact.insert(n, Arc::clone(&backend));
                        }
                    }
                }
            }
        }
        t
    }

    /// The backend for `host` (normalised): its exact name, else the nearest
    /// wildcard above it.
    pub fn lookup(&self, host: &str) -> Option<Arc<Backend>> {
        if let Some(b) = self.exact.get(host) {
            return Some(Arc::clone(b));
        }
        let mut rest = host;
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(b) = self.wild.get(parent) {
                return Some(Arc::clone(b));
            }
            rest = parent;
        }
        None
    }

    pub fn len(&self) -> usize {
        self.exact.len() + self.wild.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The live table, shared by every listener.
#[derive(Debug, Default)]
pub struct Routes {
    table: RwLock<Arc<Table>>,
    per_backend: usize,
}

impl Routes {
    pub fn new(per_backend: usize) -> Routes {
        Routes {
            table: RwLock::default(),
            per_backend,
        }
    }

    pub fn current(&self) -> Arc<Table> {
        Arc::clone(&self.table.read().expect("not poisoned"))
    }

    /// Replaces the table; open connections keep their backends.
    pub fn set(&self, routes: &[Route]) {
        let old = self.current();
        let new = Arc::new(Table::build(routes, self.per_backend, &old));
        *self.table.write().expect("not poisoned") = new;
    }
}

/// `name` as routed: lower-case, without a trailing dot; `None` unless it is
/// a host name (labels of letters, digits, `-` and `_`, 1-63 bytes, 253 in all).
pub fn normal(name: &str) -> Option<String> {
    let n = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(backend: &str, names: &[&str], last: u16) -> Route {
        Route {
            backend: backend.into(),
            names: names.iter().map(|n| n.to_string()).collect(),
            addrs: vec![Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last)],
            protocol: Protocol::V1,
        }
    }

    #[test]
    fn exact_then_the_nearest_wildcard() {
        let t = Table::build(
            &[
                route("a", &["a.example.com", "*.example.com"], 1),
                route("b", &["*.b.example.com", "B.example.com."], 2),
            ],
            4,
            &Table::default(),
        );
        let at = |h: &str| t.lookup(h).map(|b| b.name.clone());
        assert_eq!(at("a.example.com").as_deref(), Some("a"));
        assert_eq!(at("x.y.example.com").as_deref(), Some("a"));
        assert_eq!(at("b.example.com").as_deref(), Some("b"));
        assert_eq!(at("z.b.example.com").as_deref(), Some("b"));
        assert_eq!(at("example.com"), None);
        assert_eq!(at("other.net"), None);
    }

    #[test]
    fn an_unchanged_backend_keeps_its_count_across_a_change() {
        let routes = Routes::new(2);
        routes.set(&[route("a", &["a.example"], 1), route("b", &["b.example"], 2)]);
        let a = routes.current().lookup("a.example").unwrap();
        let _held = Arc::clone(&a.slots).try_acquire_owned().unwrap();
        routes.set(&[
            route("a", &["a.example", "www.a.example"], 1),
            route("b", &["b.example"], 3),
        ]);
        let again = routes.current().lookup("www.a.example").unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(again.slots.available_permits(), 1);
        let b = routes.current().lookup("b.example").unwrap();
        assert_eq!(b.addrs[0], Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3));
    }

    #[test]
    fn names_are_host_names() {
        assert_eq!(
            normal("WWW.Example.COM.").as_deref(),
            Some("www.example.com")
        );
        for bad in ["", ".", "a..b", "a b", "a/b", &"x".repeat(64)] {
            assert_eq!(normal(bad), None, "{bad:?}");
        }
    }
}
