//! The REST API under `/api/v1`, described by the OpenAPI document it serves at
//! `/api/v1/openapi.json`. Every route is registered through `utoipa_axum`, so a route cannot
//! exist without its description.

mod access;
mod alerts;
pub mod auth;
mod channels;
mod containers;
mod credential_url;
mod csv;
mod detail;
mod enrollments;
pub mod history;
pub mod install;
mod logs;
mod notifications;
mod ops;
mod page;
mod preview;
mod processes;
mod prometheus;
pub mod servers;
mod silences;
mod thresholds;
mod tokens;

use axum::Router;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub use access::visible_server;
pub use channels::seal_stored_urls;

#[derive(OpenApi)]
#[openapi(
    info(title = "FLick API", description = "Servers, metric history, alerts and logs of a FLick installation."),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "servers", description = "The fleet"),
        (name = "metrics", description = "Metric history"),
        (name = "alerts", description = "Alert rules, alerts, notification channels"),
        (name = "logs", description = "Log entries"),
        (name = "live", description = "Live metrics and alerts over WebSocket"),
        (name = "operations", description = "Health and metrics of the gateway itself"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The router of every documented route, and the OpenAPI document describing exactly them.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::new()
        .merge(auth::router())
        .merge(servers::router())
        .merge(history::router())
        .merge(detail::router())
        .merge(processes::router())
        .merge(containers::router())
        .merge(thresholds::router())
        .merge(preview::router())
        .merge(alerts::router())
        .merge(channels::router())
        .merge(silences::router())
        .merge(notifications::router())
        .merge(enrollments::router())
        .merge(logs::router())
        .merge(tokens::router())
        .merge(prometheus::router())
        .merge(crate::live::router());
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api)
        .merge(ops::router())
        .merge(install::router())
        .split_for_parts()
}
