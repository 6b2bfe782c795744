//! `/logs`: post a log entry about a server (it travels through `<prefix>.logs.<serverId>` to
//! the persister), and read them back filtered and paged.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use flick_shared::wire::{LogEntry, LogLevel, Payload, WIRE_VERSION};

use super::access::visible_server;
use super::page::{self, Page};
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_logs, post_log))
}

/// Longest `fields` object accepted (JSON bytes).
const MAX_FIELDS_BYTES: usize = 16 * 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewLog {
    pub server_id: String,
    /// `trace`, `debug`, `info`, `warn` (or `warning`), `error`.
    #[schema(value_type = String)]
    pub level: LogLevel,
    /// At most 16 KiB.
    pub message: String,
    pub source: Option<String>,
    /// When it happened (default: now).
    pub timestamp: Option<DateTime<Utc>>,
    /// Structured context, at most 16 KiB of JSON.
    #[schema(value_type = Option<Object>)]
    pub fields: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub id: Uuid,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Log {
    pub id: Uuid,
    pub server_id: String,
    pub timestamp: DateTime<Utc>,
    pub level: String,
    pub message: String,
    pub source: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub fields: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    pub server_id: Option<String>,
    /// One level or several, comma-separated (`warn,error`).
    pub level: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Text the message contains (case-insensitive).
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Accepts a log entry for a server the caller may see; the persister stores it.
#[utoipa::path(post, path = "/logs", tag = "logs", security(("bearer" = [])), request_body = NewLog,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "No such server", body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, description = "NATS unavailable", body = ErrorBody)))]
async fn post_log(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<NewLog>,
) -> ApiResult<(StatusCode, ApiJson<Accepted>)> {
    let server = visible_server(&state, &user, &body.server_id).await?;
    let server_id = flick_shared::wire::ServerId::parse(server.id)
        .map_err(|err| ApiError::Internal(err.into()))?;
    if let Some(fields) = &body.fields {
        let size = serde_json::to_vec(fields)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > MAX_FIELDS_BYTES {
            return Err(ApiError::unprocessable(format!(
                "fields must be at most {MAX_FIELDS_BYTES} bytes of JSON"
            )));
        }
    }
    if body
        .source
        .as_ref()
        .is_some_and(|s| s.chars().count() > 100)
    {
        return Err(ApiError::unprocessable(
            "source must be at most 100 characters",
        ));
    }
    let entry = LogEntry {
        v: WIRE_VERSION,
        id: Uuid::new_v4(),
        server_id,
        timestamp: body.timestamp.unwrap_or_else(Utc::now),
        level: body.level,
        message: body.message,
        source: body.source,
        fields: body.fields,
    };
    entry.check(Utc::now()).map_err(ApiError::Unprocessable)?;
    let payload = serde_json::to_vec(&entry).map_err(|err| ApiError::Internal(err.into()))?;
    let publish = async_nats::jetstream::message::PublishMessage::build()
        .payload(payload.into())
        .message_id(entry.id.to_string());
    let ack = state
        .js
        .send_publish(state.subjects.logs(&entry.server_id), publish)
        .await
        .map_err(|err| ApiError::Unavailable(format!("cannot reach NATS: {err}")))?;
    ack.await
        .map_err(|err| ApiError::Unavailable(format!("NATS did not store the entry: {err}")))?;
    Ok((StatusCode::ACCEPTED, ApiJson(Accepted { id: entry.id })))
}

/// Log entries of the servers the caller may see, newest first.
#[utoipa::path(get, path = "/logs", tag = "logs", security(("bearer" = [])), params(LogQuery),
    responses((status = 200, body = Page<Log>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_logs(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<LogQuery>,
) -> ApiResult<ApiJson<Page<Log>>> {
    let limit = page::limit(query.limit)?;
    for (field, value) in [("serverId", &query.server_id), ("q", &query.q)] {
        if let Some(value) = value {
            ApiError::storable(field, value)?;
        }
    }
    let levels: Option<Vec<String>> = match &query.level {
        None => None,
        Some(text) => {
            let mut levels = Vec::new();
            for level in text.split(',').map(str::trim).filter(|l| !l.is_empty()) {
                let parsed: LogLevel = serde_json::from_value(serde_json::Value::String(
                    level.to_owned(),
                ))
                .map_err(|_| {
                    ApiError::unprocessable(format!(
                        "level {level:?} is not trace, debug, info, warn or error"
                    ))
                })?;
                levels.push(parsed.as_str().to_owned());
            }
            Some(levels)
        }
    };
    let from = page::time("from", query.from.as_deref())?;
    let to = page::time("to", query.to.as_deref())?;
    let (cursor_at, cursor_id) = page::position(query.cursor.as_deref())?;
    let pattern = query.q.as_ref().filter(|q| !q.is_empty()).map(|q| {
        let escaped = q
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let items: Vec<Log> = sqlx::query_as(
        "SELECT l.id, l.server_id, l.ts AS timestamp, l.level, l.message, l.source, l.fields
         FROM logs l LEFT JOIN servers s ON s.id = l.server_id
         WHERE ($1 OR s.owner_id = $2)
           AND ($3::text IS NULL OR l.server_id = $3)
           AND ($4::text[] IS NULL OR l.level = ANY($4))
           AND ($5::timestamptz IS NULL OR l.ts >= $5)
           AND ($6::timestamptz IS NULL OR l.ts < $6)
           AND ($7::text IS NULL OR l.message ILIKE $7)
           AND ($8::timestamptz IS NULL OR (l.ts, l.id) < ($8, $9))
         ORDER BY l.ts DESC, l.id DESC LIMIT $10",
    )
    .bind(user.is_admin())
    .bind(user.id)
    .bind(&query.server_id)
    .bind(levels)
    .bind(from)
    .bind(to)
    .bind(pattern)
    .bind(cursor_at)
    .bind(cursor_id)
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    Ok(ApiJson(page::finish(items, limit, |last| {
        (last.timestamp, last.id)
    })))
}
