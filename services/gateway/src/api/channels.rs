//! `/notification-channels`: where the alerter sends transitions (admins only). Secrets are
//! write-only: they are sealed on the way in and never returned.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use flick_shared::outbound::Refused;

use crate::audit;
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::{AppState, ClientIp};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_channels, create_channel))
        .routes(routes!(delete_channel))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub id: Uuid,
    pub name: String,
    /// `webhook`.
    pub kind: String,
    pub url: String,
    pub enabled: bool,
    /// Names of the secret headers sent with each call (their values are never returned).
    pub header_names: Vec<String>,
    /// Whether calls are signed (`X-Flick-Signature`).
    pub signed: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewChannel {
    pub name: String,
    /// `http://` or `https://` URL the alerter POSTs each transition to. Loopback, link-local,
    /// unspecified and multicast destinations are refused unless `notify.allow_hosts` allows
    /// them; redirects are never followed.
    pub url: String,
    /// Extra headers, such as `Authorization`; sealed at rest.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Key of the HMAC-SHA256 signature; sealed at rest.
    pub signing_secret: Option<String>,
}

type ChannelRow = (
    Uuid,
    String,
    String,
    String,
    bool,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    DateTime<Utc>,
);

fn channel_of(state: &AppState, row: ChannelRow) -> Channel {
    let (id, name, kind, url, enabled, headers, secret, created_at) = row;
    // Only the header names are shown; a value that cannot be opened shows no names.
    let header_names = headers
        .and_then(|sealed| state.keys.open(id.as_bytes(), &sealed).ok())
        .and_then(|plain| serde_json::from_slice::<BTreeMap<String, String>>(&plain).ok())
        .map(|map| map.into_keys().collect())
        .unwrap_or_default();
    Channel {
        id,
        name,
        kind,
        url,
        enabled,
        header_names,
        signed: secret.is_some(),
        created_at,
    }
}

/// The notification channels (admins only).
#[utoipa::path(get, path = "/notification-channels", tag = "alerts", security(("bearer" = [])),
    responses((status = 200, body = Vec<Channel>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_channels(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<ApiJson<Vec<Channel>>> {
    user.require_admin()?;
    let rows: Vec<ChannelRow> = sqlx::query_as(
        "SELECT id, name, kind, url, enabled, secret_headers, signing_secret, created_at
         FROM notification_channels ORDER BY created_at, id",
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(ApiJson(
        rows.into_iter()
            .map(|row| channel_of(&state, row))
            .collect(),
    ))
}

/// Adds a webhook channel (admins only).
#[utoipa::path(post, path = "/notification-channels", tag = "alerts", security(("bearer" = [])), request_body = NewChannel,
    responses((status = 201, body = Channel), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_channel(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<NewChannel>,
) -> ApiResult<(StatusCode, ApiJson<Channel>)> {
    user.require_admin()?;
    ApiError::storable("name", &body.name)?;
    ApiError::storable("url", &body.url)?;
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::unprocessable("name must be 1 to 100 characters"));
    }
    let url = body.url.trim().to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://"))
        || url.len() > 2_048
        || url.contains(char::is_whitespace)
    {
        return Err(ApiError::unprocessable(
            "url must be an http:// or https:// URL",
        ));
    }
    // Where the alerter would call: never inside this machine or its link unless allowed. A
    // name that does not resolve from here (yet) is accepted: the alerter checks the addresses
    // again at every delivery.
    let checked = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        state.destinations.check_url(&url),
    )
    .await;
    match checked {
        Ok(Err(refused)) if !matches!(refused, Refused::Unresolved { .. }) => {
            return Err(ApiError::unprocessable(format!("url: {refused}")));
        }
        _ => {}
    }
    for (header, value) in &body.headers {
        let valid = !header.is_empty()
            && header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !value.contains(|c: char| c.is_control() && c != '\t');
        if !valid {
            return Err(ApiError::unprocessable(format!(
                "header {header:?} is not a valid header"
            )));
        }
    }
    let id = Uuid::new_v4();
    let seal = |plain: &[u8]| {
        state
            .keys
            .seal(id.as_bytes(), plain)
            .map_err(|err| ApiError::Internal(anyhow::anyhow!("seal a channel secret: {err}")))
    };
    let headers = if body.headers.is_empty() {
        None
    } else {
        Some(seal(
            &serde_json::to_vec(&body.headers).map_err(|err| ApiError::Internal(err.into()))?,
        )?)
    };
    let secret = body
        .signing_secret
        .filter(|s| !s.is_empty())
        .map(|s| seal(s.as_bytes()))
        .transpose()?;
    let row: ChannelRow = sqlx::query_as(
        "INSERT INTO notification_channels (id, name, url, secret_headers, signing_secret)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING id, name, kind, url, enabled, secret_headers, signing_secret, created_at",
    )
    .bind(id)
    .bind(&name)
    .bind(&url)
    .bind(headers)
    .bind(secret)
    .fetch_one(&state.pool)
    .await?;
    audit::record(
        &state.pool,
        Some(user.id),
        "channel_created",
        Some(&id.to_string()),
        Some(ip),
        serde_json::json!({ "name": name }),
    )
    .await;
    Ok((StatusCode::CREATED, ApiJson(channel_of(&state, row))))
}

/// Removes a channel (admins only).
#[utoipa::path(delete, path = "/notification-channels/{id}", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Channel id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn delete_channel(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    user.require_admin()?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("channel"))?;
    let deleted = sqlx::query("DELETE FROM notification_channels WHERE id = $1")
        .bind(id)
        .execute(&state.pool)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(ApiError::NotFound("channel"));
    }
    audit::record(
        &state.pool,
        Some(user.id),
        "channel_deleted",
        Some(&id.to_string()),
        Some(ip),
        serde_json::json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
