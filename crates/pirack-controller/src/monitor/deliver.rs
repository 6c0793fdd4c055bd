//! Sending an alert's notices: to every staff route, and to the routes of each
//! customer with a slot in it (telling it of its own slots only). Each route
//! has a budget of calls per window; a failed call is tried again with
//! backoff; every outcome is recorded as a delivery of the alert.

use super::notify::{self, Notice};
use crate::Controller;
use crate::store::alerts::{AlertRow, DeliveryRow, for_owner};
use crate::store::now_ms;
use pirack_core::inventory::SiteMonitor;
use pirack_core::monitor::limit::Window;
use pirack_core::monitor::uri::{self, Target};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Tries per notice and route, and the wait before each retry.
const BACKOFF: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(4)];
/// How long one call may take.
const CALL: Duration = Duration::from_secs(10);

/// Each route's call budget.
#[derive(Default)]
pub struct Deliveries {
    windows: Mutex<HashMap<String, Window>>,
}

/// One route as a notice goes out.
struct Route {
    /// `site:N` for the inventory's, else the API route's id.
    id: String,
    owner: Option<String>,
    target: Target,
}

impl Deliveries {
    /// Sends `notice` about `a` to every route that should hear of it, in the
    /// background.
    pub fn notify(&self, ctl: &Arc<Controller>, m: &SiteMonitor, a: &AlertRow, notice: Notice) {
        let (ctl, m, a) = (Arc::clone(ctl), m.clone(), a.clone());
        tokio::spawn(async move {
            for route in routes(&ctl, &m).await {
                let seen = match &route.owner {
                    None => Some(a.clone()),
                    Some(o) => for_owner(&a, o),
                };
                let Some(seen) = seen else { continue };
                if !ctl.monitor.deliver.take(&route.id, &m) {
                    record(
                        &ctl,
                        &seen,
                        &route,
                        notice,
                        "limited",
                        0,
                        "over the route's call budget",
                    )
                    .await;
                    continue;
                }
                let (ctl, m) = (Arc::clone(&ctl), m.clone());
                tokio::spawn(async move { send(&ctl, &m, &seen, &route, notice).await });
            }
        });
    }

    fn take(&self, route: &str, m: &SiteMonitor) -> bool {
        let mut w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        w.entry(route.to_string())
            .or_insert_with(|| Window::new(m.rate_max as usize, m.rate_per.as_millis() as u64))
            .take(now_ms() as u64)
    }
}

/// The staff's routes from the inventory, then those kept through the API.
async fn routes(ctl: &Controller, m: &SiteMonitor) -> Vec<Route> {
    let mut out: Vec<Route> = m
        .routes
        .iter()
        .enumerate()
        .map(|(i, t)| Route {
            id: format!("site:{i}"),
            owner: None,
            target: t.clone(),
        })
        .collect();
    match ctl.store.alert_routes().await {
        Ok(rows) => {
            for r in rows {
                match uri::parse(&r.uri) {
                    Ok(p) => out.push(Route {
                        id: r.id,
                        owner: r.owner,
                        target: p.target,
                    }),
                    Err(e) => tracing::warn!("monitor: route {}: {e}", r.id),
                }
            }
        }
        Err(e) => tracing::warn!("monitor: reading the alert routes: {e}"),
    }
    out
}

async fn send(ctl: &Controller, m: &SiteMonitor, a: &AlertRow, route: &Route, notice: Notice) {
    let out = notify::outgoing(&route.target, &m.providers, &ctl.site.name, a, notice);
    let mut attempts = 0;
    loop {
        attempts += 1;
        // Only the region's leader sends, and none after it lost the lead.
        let fence = match ctl.region_fence().await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("monitor: alert {} to {} not sent: {e}", a.id, route.id);
                return;
            }
        };
        let (out, m2, target) = (out.clone(), m.clone(), route.target.clone());
        let customer = route.owner.is_some();
        let result = tokio::task::spawn_blocking(move || {
            if customer {
                notify::customer_may_call(&m2, &target)?;
            }
            notify::send(&out, m2.smtp.as_ref(), CALL)
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        fence.release().await;
        match result {
            Ok(()) => {
                record(ctl, a, route, notice, "sent", attempts, "").await;
                return;
            }
            Err(why) => match BACKOFF.get(attempts - 1) {
                Some(wait) => tokio::time::sleep(*wait).await,
                None => {
                    tracing::warn!("monitor: alert {} to {}: {why}", a.id, route.id);
                    record(ctl, a, route, notice, "failed", attempts, &why).await;
                    return;
                }
            },
        }
    }
}

async fn record(
    ctl: &Controller,
    a: &AlertRow,
    route: &Route,
    notice: Notice,
    status: &str,
    attempts: usize,
    detail: &str,
) {
    ctl.metrics
        .deliveries
        .get_or_create(&crate::metrics::StatusLabel {
            status: status.into(),
        })
        .inc();
    let d = DeliveryRow {
        alert_id: a.id,
        route: route.id.clone(),
        owner: route.owner.clone(),
        notice: notice.name().into(),
        status: status.into(),
        attempts: attempts as i64,
        detail: detail.into(),
        at: now_ms(),
    };
    if let Err(e) = ctl.store.record_delivery(&d).await {
        tracing::warn!("monitor: a delivery of alert {} not recorded: {e}", a.id);
    }
}
