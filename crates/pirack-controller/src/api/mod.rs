//! The HTTP API (axum), its OpenAPI document at `/openapi.json` kept in step with the
//! routes by utoipa, bearer-token auth with admin and customer scopes, and JSON
//! errors with stable codes.

pub mod alerts;
pub mod auth;
pub mod backups;
pub mod client;
pub mod cluster;
pub mod dns;
pub mod error;
pub mod guard;
pub mod images;
pub mod limits;
pub mod listing;
pub mod model;
pub mod names;
pub mod proxy;
pub mod routes;
pub mod server;

use crate::Controller;
use axum::Json;
use axum::routing::get;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pirack",
        description = "Netboot Raspberry Pi 3 slots: provision, power, reimage, watch.",
        version = "1"
    ),
    modifiers(&Bearer)
)]
struct Doc;

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's routes and its OpenAPI document.
pub fn router(ctl: Arc<Controller>) -> axum::Router {
    let (router, doc) = OpenApiRouter::with_openapi(Doc::openapi())
        .routes(routes!(routes::list_slots))
        .routes(routes!(routes::show_slot))
        .routes(routes!(routes::provision))
        .routes(routes!(routes::power))
        .routes(routes!(routes::reimage))
        .routes(routes!(routes::rollback))
        .routes(routes!(routes::decommission))
        .routes(routes!(routes::accept_board))
        .routes(routes!(routes::operation))
        .routes(routes!(routes::events))
        .routes(routes!(routes::events_stream))
        .routes(routes!(routes::plan))
        .routes(routes!(routes::metrics))
        .routes(routes!(routes::healthz))
        .routes(routes!(routes::whoami))
        .routes(routes!(routes::port))
        .routes(routes!(routes::console))
        .routes(routes!(dns::sync))
        .routes(routes!(dns::status))
        .routes(routes!(dns::zones))
        .routes(routes!(proxy::routes))
        .routes(routes!(proxy::show, proxy::set))
        .routes(routes!(dns::grant, dns::revoke))
        .routes(routes!(names::list))
        .routes(routes!(names::show, names::put, names::edit, names::delete))
        .routes(routes!(alerts::list))
        .routes(routes!(alerts::show))
        .routes(routes!(alerts::routes, alerts::add_route))
        .routes(routes!(alerts::delete_route))
        .routes(routes!(alerts::windows, alerts::open_window))
        .routes(routes!(alerts::end_window))
        .routes(routes!(alerts::checks))
        .routes(routes!(alerts::glance))
        .routes(routes!(backups::show, backups::run))
        .routes(routes!(backups::snapshots))
        .routes(routes!(backups::restore))
        .routes(routes!(images::list))
        .routes(routes!(images::show))
        .routes(routes!(cluster::status))
        .split_for_parts();
    let doc = Arc::new(doc);
    router
        .route(
            "/openapi.json",
            get(move || async move { Json(doc.as_ref().clone()) }),
        )
        .route("/", get(routes::rack))
        .fallback(|| async { error::ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            error::ApiError::method_not_allowed("this endpoint does not take that method")
        })
        .layer(axum::extract::DefaultBodyLimit::max(guard::MAX_BODY))
        .layer(axum::middleware::from_fn(guard::guard))
        .with_state(ctl)
}

/// Serves the API on `listener` (over TLS when given) under `limits` until
/// `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ctl: Arc<Controller>,
    limits: limits::Limits,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve(listener, router(ctl), limits, tls, shutdown).await
}
