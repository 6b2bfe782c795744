//! `/healthz` and `/api/v1/openapi.json` on the gateway's public port. `/readyz` (which says
//! why the gateway is not ready) and `/metrics` are on the operations listener
//! (`gateway.ops_listen`, loopback by default), like the other services'.

use axum::Json;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(openapi))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "ok")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI 3.1")))]
async fn openapi() -> impl IntoResponse {
    Json(crate::openapi_document())
}
