//! The proxy's routes: every published slot's name, and the customers' names
//! that lead to a slot (an ANAME ending at it, or records holding its address),
//! each to the slot's Pi with the PROXY protocol its owner chose. Recomputed
//! when the slots, the names or the settings change; the embedded proxy and
//! stand-alone ones (`GET /v1/proxy/routes`) follow the same document.

use crate::Controller;
use crate::store::StoreError;
use pirack_core::dns::Data;
use pirack_proxy::routes::{Protocol, Route};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a burst of changes is gathered into one new document.
const SETTLE: Duration = Duration::from_millis(100);
/// Routes are recomputed at least this often (a missed wake-up costs no more).
const EVERY: Duration = Duration::from_secs(10);

/// The routes as published: a version that grows with every change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RouteDoc {
    pub version: u64,
    pub routes: Vec<Route>,
}

pub struct ProxyRoutes {
    tx: watch::Sender<Arc<RouteDoc>>,
    kick: tokio::sync::Notify,
}

impl Default for ProxyRoutes {
    fn default() -> Self {
        ProxyRoutes {
            tx: watch::Sender::new(Arc::default()),
            kick: tokio::sync::Notify::new(),
        }
    }
}

impl ProxyRoutes {
    /// Asks for the routes to be recomputed soon (names or settings changed).
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    pub fn current(&self) -> Arc<RouteDoc> {
        Arc::clone(&self.tx.borrow())
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<RouteDoc>> {
        self.tx.subscribe()
    }
}

/// The routes the store and plan give now.
pub async fn compute(ctl: &Controller) -> Result<Vec<Route>, StoreError> {
    let published = crate::dns::published(ctl);
    let protocols = ctl.store.proxy_protocols().await?;
    let mut by_slot: BTreeMap<String, Route> = BTreeMap::new();
    for s in ctl
        .plan
        .slots
        .iter()
        .filter(|s| published.contains(&s.key.to_string()))
    {
        let key = s.key.to_string();
        by_slot.insert(
            key.clone(),
            Route {
                backend: key.clone(),
                names: s.fqdn.iter().map(|f| bare(f)).collect(),
                addrs: vec![s.ipv6],
                protocol: protocols.get(&key).copied().unwrap_or(Protocol::V1),
            },
        );
    }
    for n in ctl.store.names(None).await? {
        let via_aname = n.aname.as_ref().and_then(|a| a.slot.clone());
        let holding = by_slot.iter().find_map(|(key, r)| {
            n.records
                .iter()
                .any(|rec| rec.data == Data::Aaaa(r.addrs[0]))
                .then(|| key.clone())
        });
        // A customer's name leads only to the customer's own slot.
        let owner_of = |key: &str| ctl.store.mirror().slot(key).and_then(|s| s.owner);
        if let Some(key) = via_aname.or(holding)
            && owner_of(&key).as_deref() == Some(n.owner.as_str())
            && let Some(r) = by_slot.get_mut(&key)
        {
            r.names.push(bare(&n.name));
        }
    }
    let mut routes: Vec<Route> = by_slot.into_values().collect();
    for r in &mut routes {
        r.names.sort();
        r.names.dedup();
    }
    Ok(routes)
}

fn bare(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Keeps the route document current for as long as the controller runs.
pub async fn run(ctl: Arc<Controller>) {
    let mut events = ctl.store.mirror().subscribe();
    // Slot events come by the dozen during boots; only a change to which slots
    // are published changes the routes, so the store is read again only then.
    let mut done: Option<std::collections::BTreeSet<String>> = None;
    loop {
        let now = crate::dns::published(&ctl);
        if done.as_ref() != Some(&now) {
            match compute(&ctl).await {
                Ok(routes) => {
                    ctl.proxy.tx.send_if_modified(|doc| {
                        if doc.routes == routes {
                            return false;
                        }
                        *doc = Arc::new(RouteDoc {
                            version: doc.version + 1,
                            routes,
                        });
                        true
                    });
                    done = Some(now);
                }
                Err(e) => tracing::warn!("proxy routes: the store: {e}"),
            }
        }
        tokio::select! {
            () = ctl.proxy.kick.notified() => done = None,
            e = events.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = e {
                    return;
                }
            }
            () = tokio::time::sleep(EVERY) => done = None,
        }
        tokio::time::sleep(SETTLE).await;
        while events.try_recv().is_ok() {}
    }
}

/// Runs the proxy inside `serve`: its listeners bound now and served on
/// threads of their own, fed from the route document by a task on `tasks`.
pub fn serve(
    ctl: &Controller,
    site: &pirack_core::inventory::SiteProxy,
    tasks: &mut tokio::task::JoinSet<&'static str>,
) -> Result<(), pirack_proxy::ProxyError> {
    let shared = pirack_proxy::Shared::new(config(site), ctl.metrics.proxy.clone());
    pirack_proxy::listen::start(Arc::clone(&shared))?;
    let mut rx = ctl.proxy.subscribe();
    tasks.spawn(async move {
        loop {
            let doc = Arc::clone(&rx.borrow_and_update());
            shared.routes.set(&doc.routes);
            if rx.changed().await.is_err() {
                return "proxy routes";
            }
        }
    });
    Ok(())
}

/// The proxy's settings from the inventory's `proxy:` section.
pub fn config(p: &pirack_core::inventory::SiteProxy) -> pirack_proxy::Config {
    let mut config = pirack_proxy::Config {
        http: p.http.clone(),
        tls: p.tls.clone(),
        header_timeout: p.header_timeout,
        idle_timeout: p.idle_timeout,
        connect_timeout: p.connect_timeout,
        max_connections: p.max_connections,
        per_backend: p.per_backend,
        tls_fallback: match p.tls_default {
            Some(a) => pirack_proxy::Fallback::Backend(a),
            None => pirack_proxy::Fallback::Alert,
        },
        ..pirack_proxy::Config::default()
    };
    if let Some(t) = p.threads {
        config.threads = t;
    }
    config
}
