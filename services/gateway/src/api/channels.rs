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

use anyhow::Context as _;
use flick_shared::crypto::KeyRing;
use flick_shared::outbound::Refused;

use super::credential_url;
use crate::audit;
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::{AppState, ClientIp};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_channels, create_channel))
        .routes(routes!(delete_channel))
        .routes(routes!(test_channel))
}

const KINDS: [&str; 7] = [
    "webhook",
    "standard_webhook",
    "slack",
    "discord",
    "telegram",
    "ntfy",
    "email",
];

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub id: Uuid,
    pub name: String,
    /// `webhook`, `standard_webhook`, `slack`, `discord`, `telegram`, `ntfy` or `email`.
    pub kind: String,
    /// Where the alerter calls; a URL that is a credential (Slack, Discord, or one with a
    /// password or a query string) is shown with the credential cut out (`…`).
    pub url: String,
    pub enabled: bool,
    /// The kind's non-secret settings (telegram `chatId`; email `from`, `to`, `username`).
    pub settings: serde_json::Value,
    /// Whether a secret (bot token, SMTP password, ntfy token) is stored.
    pub has_secret: bool,
    /// Only critical transitions.
    pub critical_only: bool,
    /// Only servers carrying one of these tags; empty: every server.
    pub tags: Vec<String>,
    /// A still-firing incident is sent again this often; `null`: never.
    pub repeat_secs: Option<i32>,
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
    /// Default `webhook`; see `Channel.kind`.
    #[serde(default = "webhook")]
    pub kind: String,
    /// Where the alerter sends: an `http://` or `https://` URL (the webhook, Slack or Discord
    /// incoming-webhook URL, the ntfy topic URL, `https://api.telegram.org`), or for `email`
    /// the SMTP server: `smtp://host:587` (STARTTLS), `smtps://host:465` (TLS). Loopback,
    /// link-local, unspecified and multicast destinations are refused unless
    /// `notify.allow_hosts` allows them; redirects are never followed.
    pub url: String,
    /// Non-secret settings: telegram `{"chatId": "…"}`; email `{"from": "…", "to": ["…"],
    /// "username": "…"}`; ntfy `{"priority": 1-5}`.
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// The telegram bot token, the SMTP password or an ntfy access token; sealed at rest.
    pub secret: Option<String>,
    #[serde(default)]
    pub critical_only: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    /// 60 to 604800; omitted: no repeats.
    pub repeat_secs: Option<i32>,
    /// Extra headers, such as `Authorization`; sealed at rest.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Key of the HMAC-SHA256 signature (`webhook`), or the `whsec_…` secret of a
    /// `standard_webhook`; sealed at rest.
    pub signing_secret: Option<String>,
}

fn webhook() -> String {
    "webhook".to_owned()
}

#[derive(sqlx::FromRow)]
struct ChannelRow {
    id: Uuid,
    name: String,
    kind: String,
    url: String,
    enabled: bool,
    secret_headers: Option<Vec<u8>>,
    signing_secret: Option<Vec<u8>>,
    created_at: DateTime<Utc>,
    settings: serde_json::Value,
    has_secret: bool,
    critical_only: bool,
    tags: Vec<String>,
    repeat_secs: Option<i32>,
}

const COLUMNS: &str = "id, name, kind, url, enabled, secret_headers, signing_secret, created_at,
    settings, secret IS NOT NULL AS has_secret, critical_only, tags, repeat_secs";

fn channel_of(state: &AppState, row: ChannelRow) -> Channel {
    let ChannelRow {
        id,
        name,
        kind,
        url,
        enabled,
        secret_headers: headers,
        signing_secret: secret,
        created_at,
        settings,
        has_secret,
        critical_only,
        tags,
        repeat_secs,
    } = row;
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
        settings,
        has_secret,
        critical_only,
        tags,
        repeat_secs,
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
    let rows: Vec<ChannelRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notification_channels ORDER BY created_at, id"
    )))
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
    if !KINDS.contains(&body.kind.as_str()) {
        return Err(ApiError::unprocessable(format!(
            "kind: one of {}",
            KINDS.join(", ")
        )));
    }
    let email = body.kind == "email";
    let schemes: &[&str] = if email {
        &["smtp://", "smtps://"]
    } else {
        &["http://", "https://"]
    };
    if !schemes.iter().any(|scheme| url.starts_with(scheme))
        || url.len() > 2_048
        || url.contains(char::is_whitespace)
    {
        return Err(ApiError::unprocessable(format!(
            "url must be a {} URL for a {} channel",
            schemes.join(" or "),
            body.kind
        )));
    }
    check_kind_settings(&body)?;
    if body.tags.len() > 20
        || body
            .tags
            .iter()
            .any(|t| t.is_empty() || t.len() > 64 || t.contains('\0'))
    {
        return Err(ApiError::unprocessable(
            "tags: at most 20, 1 to 64 characters each",
        ));
    }
    if body
        .repeat_secs
        .is_some_and(|secs| !(60..=604_800).contains(&secs))
    {
        return Err(ApiError::unprocessable("repeatSecs: 60 to 604800"));
    }
    // The address check works on http URLs: an SMTP server is checked by its host and port.
    let checked_url = url
        .replacen("smtps://", "https://", 1)
        .replacen("smtp://", "http://", 1);
    // Where the alerter would call: never inside this machine or its link unless allowed. A
    // name that does not resolve from here (yet) is accepted: the alerter checks the addresses
    // again at every delivery.
    let checked = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        state.destinations.check_url(&checked_url),
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
    let signing = match body.signing_secret.as_deref().filter(|s| !s.is_empty()) {
        // Standard Webhooks: the key is the base64 after `whsec_`.
        Some(key) if body.kind == "standard_webhook" => {
            use base64::Engine as _;
            let encoded = key.strip_prefix("whsec_").unwrap_or(key);
            let raw = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| ApiError::unprocessable("signingSecret: whsec_ followed by base64"))?;
            if raw.len() < 24 {
                return Err(ApiError::unprocessable("signingSecret: at least 24 bytes"));
            }
            Some(seal(&raw)?)
        }
        Some(key) => Some(seal(key.as_bytes())?),
        None => None,
    };
    let secret = match body.secret.as_deref().filter(|s| !s.is_empty()) {
        Some(secret) => {
            ApiError::storable("secret", secret)?;
            Some(seal(secret.as_bytes())?)
        }
        None => None,
    };
    let (shown_url, url_sealed) = match credential_url::redacted(&body.kind, &url) {
        Some(shown) => (shown, Some(seal(url.as_bytes())?)),
        None => (url.clone(), None),
    };
    let row: ChannelRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO notification_channels (id, name, kind, url, secret_headers, signing_secret, secret,
                                            settings, critical_only, tags, repeat_secs, url_sealed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(&name)
    .bind(&body.kind)
    .bind(&shown_url)
    .bind(headers)
    .bind(signing)
    .bind(secret)
    .bind(serde_json::Value::Object(body.settings.clone()))
    .bind(body.critical_only)
    .bind(&body.tags)
    .bind(body.repeat_secs)
    .bind(url_sealed)
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

/// What each kind needs besides its URL.
fn check_kind_settings(body: &NewChannel) -> ApiResult<()> {
    let text = |key: &str| {
        body.settings
            .get(key)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty() && v.len() <= 256 && !v.contains('\0'))
    };
    let has_secret = body.secret.as_deref().is_some_and(|s| !s.is_empty());
    match body.kind.as_str() {
        "telegram" => {
            if text("chatId").is_none() && !body.settings.get("chatId").is_some_and(|v| v.is_i64())
            {
                return Err(ApiError::unprocessable(
                    "settings.chatId: the chat to send to",
                ));
            }
            if !has_secret {
                return Err(ApiError::unprocessable("secret: the bot token"));
            }
        }
        "email" => {
            let address =
                |v: &str| v.contains('@') && v.len() <= 254 && !v.contains(['\r', '\n', '\0']);
            if !text("from").is_some_and(address) {
                return Err(ApiError::unprocessable(
                    "settings.from: the sender's address",
                ));
            }
            let to = body.settings.get("to").and_then(|v| v.as_array());
            let valid = to.is_some_and(|to| {
                !to.is_empty()
                    && to.len() <= 50
                    && to.iter().all(|v| v.as_str().is_some_and(address))
            });
            if !valid {
                return Err(ApiError::unprocessable(
                    "settings.to: a list of 1 to 50 addresses",
                ));
            }
        }
        "standard_webhook" if body.signing_secret.as_deref().is_none_or(str::is_empty) => {
            return Err(ApiError::unprocessable("signingSecret: the whsec_ secret"));
        }
        _ => {}
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestQueued {
    /// The notice the alerter sends; see `GET /notification-channels/{id}/notifications`.
    pub notification_id: Uuid,
}

/// Asks the leading alerter to send a test notice to the channel (within about a second);
/// its attempts appear in the channel's notifications.
#[utoipa::path(post, path = "/notification-channels/{id}/test", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Channel id")),
    responses((status = 202, body = TestQueued), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn test_channel(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, ApiJson<TestQueued>)> {
    user.require_admin()?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("channel"))?;
    let notification_id = Uuid::new_v4();
    let queued = sqlx::query(
        "INSERT INTO notification_tests (id, channel_id, requested_by)
         SELECT $1, id, $3 FROM notification_channels WHERE id = $2",
    )
    .bind(notification_id)
    .bind(id)
    .bind(user.id)
    .execute(&state.pool)
    .await?
    .rows_affected();
    if queued == 0 {
        return Err(ApiError::NotFound("channel"));
    }
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(TestQueued { notification_id }),
    ))
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

/// Seals the credential-bearing URLs of channels stored before they were sealed (a start-up
/// step: the key is the gateway's, so a SQL migration cannot do it). Each row is updated only
/// while still unsealed, so two gateways starting together do not seal one twice.
pub async fn seal_stored_urls(pool: &sqlx::PgPool, keys: &KeyRing) -> anyhow::Result<u64> {
    let rows: Vec<(Uuid, String, String)> =
        sqlx::query_as("SELECT id, kind, url FROM notification_channels WHERE url_sealed IS NULL")
            .fetch_all(pool)
            .await
            .context("read the channels' URLs")?;
    let mut sealed = 0;
    for (id, kind, url) in rows {
        let Some(shown) = credential_url::redacted(&kind, &url) else {
            continue;
        };
        let ciphertext = keys
            .seal(id.as_bytes(), url.as_bytes())
            .map_err(|err| anyhow::anyhow!("seal the URL of channel {id}: {err}"))?;
        sealed += sqlx::query(
            "UPDATE notification_channels SET url = $2, url_sealed = $3
             WHERE id = $1 AND url_sealed IS NULL",
        )
        .bind(id)
        .bind(shown)
        .bind(ciphertext)
        .execute(pool)
        .await
        .with_context(|| format!("seal the URL of channel {id}"))?
        .rows_affected();
    }
    Ok(sealed)
}
