//! The upgrade: origin check, optional header authentication, socket limits.

use axum::extract::State;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::user::bearer_header;
use crate::error::{ApiError, ErrorBody};
use crate::http;
use crate::state::{AppState, ClientIp};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upgrade))
}

/// Live metrics and alerts. Authenticate with `Authorization: Bearer <token>` on the upgrade
/// (non-browser clients), or with a first message `{"type":"auth","data":{"token":"…"}}` within
/// 5 s. Never put a token in the URL. See README.md for the protocol.
#[utoipa::path(get, path = "/ws", tag = "live",
    responses((status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade", body = ErrorBody),
        (status = 401, description = "Invalid bearer token", body = ErrorBody),
        (status = 403, description = "Origin not allowed", body = ErrorBody),
        (status = 429, description = "This address holds gateway.ws_max_per_address connections", body = ErrorBody)))]
async fn upgrade(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(_) => {
            return ApiError::bad_request("this route needs a WebSocket upgrade").into_response();
        }
    };
    if !http::origin_allowed(&headers, &state.settings) {
        return ApiError::Forbidden("this origin may not open the live socket".into())
            .into_response();
    }
    let slot = match state.limits.open_socket(ip) {
        Ok(slot) => slot,
        Err(err) => return err.into_response(),
    };
    let authenticated = match bearer_header(&headers) {
        Some(token) => match super::credential::authenticate(&state, token, Some(ip)).await {
            Ok(authenticated) => Some(authenticated),
            Err(err) => return err.into_response(),
        },
        None => None,
    };
    let max = state.settings.ws_max_message_bytes;
    // Client messages are small (a subscription is ~100 bytes); the read buffer is allocated
    // whole for every connection, so 512 bytes keeps an idle connection small (a larger
    // message, up to `max`, is read into a buffer grown for it).
    upgrade
        .read_buffer_size(512)
        .write_buffer_size(4 * 1024)
        // One frame must fit whole: a sample of a host with its 500 containers is ~260 KiB.
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| super::connection::run(socket, state, slot, authenticated))
}
