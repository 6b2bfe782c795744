//! The upgrade: origin check, optional header authentication, socket limits.

use axum::extract::State;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::user::bearer_header;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upgrade))
}

/// Whether a browser page at `origin` may open the socket: an allowed CORS origin, or the
/// gateway's own origin (the dashboard it serves). Clients that send no Origin are not browsers.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    if allowed.iter().any(|a| a.trim_end_matches('/') == origin) {
        return true;
    }
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| !host.is_empty() && authority == host)
}

/// Live metrics and alerts. Authenticate with `Authorization: Bearer <token>` on the upgrade
/// (non-browser clients), or with a first message `{"type":"auth","data":{"token":"…"}}` within
/// 5 s. Never put a token in the URL. See README.md for the protocol.
#[utoipa::path(get, path = "/ws", tag = "live",
    responses((status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade", body = ErrorBody),
        (status = 401, description = "Invalid bearer token", body = ErrorBody),
        (status = 403, description = "Origin not allowed", body = ErrorBody)))]
async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(_) => {
            return ApiError::bad_request("this route needs a WebSocket upgrade").into_response();
        }
    };
    if !origin_allowed(&headers, &state.settings.cors_origins) {
        return ApiError::Forbidden("this origin may not open the live socket".into())
            .into_response();
    }
    let claims = match bearer_header(&headers) {
        Some(token) => match state.jwt.verify(token) {
            Some(claims) => Some(claims),
            None => {
                return ApiError::Unauthorized("invalid or expired token".into()).into_response();
            }
        },
        None => None,
    };
    let max = state.settings.ws_max_message_bytes;
    upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| super::connection::run(socket, state, claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, host.parse().expect("host"));
        if let Some(origin) = origin {
            headers.insert(ORIGIN, origin.parse().expect("origin"));
        }
        headers
    }

    #[test]
    fn browsers_from_the_allowlist_or_the_gateway_itself_only() {
        let allowed = vec!["https://dash.example.com".to_owned()];
        assert!(
            origin_allowed(&headers(None, "gw:8080"), &allowed),
            "not a browser"
        );
        assert!(origin_allowed(
            &headers(Some("https://dash.example.com"), "gw:8080"),
            &allowed
        ));
        assert!(
            origin_allowed(&headers(Some("http://gw:8080"), "gw:8080"), &allowed),
            "same origin"
        );
        assert!(!origin_allowed(
            &headers(Some("https://evil.example.com"), "gw:8080"),
            &allowed
        ));
        assert!(!origin_allowed(
            &headers(Some("https://evil.example.com"), "gw:8080"),
            &[]
        ));
    }
}
