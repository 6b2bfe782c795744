//! `/silences`: maintenance windows. While a silence matches a transition (its server, every
//! one of its tags, its metric), the alerter records and publishes the transition but notifies
//! no one. A user's silence covers only the servers that user owns; an admin's, every server.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use flick_shared::alerting::rules::Metric;

use super::access::visible_server;
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_silences, create_silence))
        .routes(routes!(end_silence))
}

/// The longest silence: a maintenance window, not a way to switch alerting off.
const LONGEST: chrono::Duration = chrono::Duration::days(30);

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    pub id: Uuid,
    /// `null`: every server of the owner (an admin's: every server) carrying the tags.
    pub server_id: Option<String>,
    /// The server must carry every one of these.
    pub tags: Vec<String>,
    /// `cpu`, `memory`, `disk`, `offline`, or a container alert's metric (every container of
    /// the server); `null`: every metric.
    pub metric: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub comment: String,
    /// The e-mail of whoever created it.
    pub author: String,
    pub owner_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// `pending`, `active` or `expired` (now).
    #[sqlx(skip)]
    pub status: &'static str,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSilence {
    pub server_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub metric: Option<String>,
    /// Default: now.
    pub starts_at: Option<DateTime<Utc>>,
    /// Either `endsAt` or `durationSecs` (e.g. 7200 for "silence for 2 h").
    pub ends_at: Option<DateTime<Utc>>,
    pub duration_secs: Option<i64>,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SilenceQuery {
    /// Also list expired silences (of the last 30 days).
    #[serde(default)]
    pub expired: bool,
}

const COLUMNS: &str =
    "id, server_id, tags, metric, starts_at, ends_at, comment, author, owner_id, created_at";

fn with_status(mut silence: Silence, now: DateTime<Utc>) -> Silence {
    silence.status = if now < silence.starts_at {
        "pending"
    } else if now < silence.ends_at {
        "active"
    } else {
        "expired"
    };
    silence
}

/// The caller's silences (an admin's: everyone's), active and pending first.
#[utoipa::path(get, path = "/silences", tag = "alerts", security(("bearer" = [])), params(SilenceQuery),
    responses((status = 200, body = Vec<Silence>), (status = 401, body = ErrorBody)))]
async fn list_silences(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<SilenceQuery>,
) -> ApiResult<ApiJson<Vec<Silence>>> {
    let rows: Vec<Silence> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM silences
         WHERE ($1 OR owner_id = $2) AND ends_at > now() - CASE WHEN $3 THEN interval '30 days' ELSE interval '0' END
         ORDER BY ends_at DESC, id LIMIT 1000"
    )))
    .bind(user.is_admin())
    .bind(user.id)
    .bind(query.expired)
    .fetch_all(&state.pool)
    .await?;
    let now = Utc::now();
    Ok(ApiJson(
        rows.into_iter().map(|s| with_status(s, now)).collect(),
    ))
}

/// Silences notifications for a server, tags and/or a metric, for a while.
#[utoipa::path(post, path = "/silences", tag = "alerts", security(("bearer" = [])), request_body = NewSilence,
    responses((status = 201, body = Silence), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "A server the caller cannot see", body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_silence(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<NewSilence>,
) -> ApiResult<(StatusCode, ApiJson<Silence>)> {
    if let Some(server) = &body.server_id {
        // Another user's server is "not found", as everywhere.
        visible_server(&state, &user, server).await?;
    }
    if let Some(metric) = &body.metric
        && Metric::parse(metric).is_none()
    {
        let names: Vec<_> = Metric::ALL
            .iter()
            .chain(&Metric::CONTAINER)
            .map(|m| m.as_str())
            .collect();
        return Err(ApiError::unprocessable(format!(
            "metric: one of {}",
            names.join(", ")
        )));
    }
    if body.tags.len() > 20 {
        return Err(ApiError::unprocessable("tags: at most 20"));
    }
    for tag in &body.tags {
        ApiError::storable("tags", tag)?;
        if tag.is_empty() || tag.len() > 64 {
            return Err(ApiError::unprocessable("tags: 1 to 64 characters each"));
        }
    }
    ApiError::storable("comment", &body.comment)?;
    if body.comment.len() > 1_000 {
        return Err(ApiError::unprocessable("comment: at most 1000 bytes"));
    }
    let now = Utc::now();
    let starts_at = body.starts_at.unwrap_or(now);
    let ends_at = match (body.ends_at, body.duration_secs) {
        (Some(ends), None) => ends,
        (None, Some(secs)) if secs > 0 => {
            starts_at + chrono::Duration::seconds(secs.min(LONGEST.num_seconds()))
        }
        (None, Some(_)) => return Err(ApiError::unprocessable("durationSecs: more than 0")),
        _ => {
            return Err(ApiError::unprocessable(
                "endsAt or durationSecs: exactly one of them",
            ));
        }
    };
    if ends_at <= starts_at || ends_at <= now {
        return Err(ApiError::unprocessable(
            "endsAt: after startsAt and in the future",
        ));
    }
    if ends_at - starts_at > LONGEST {
        return Err(ApiError::unprocessable(
            "endsAt: at most 30 days after startsAt",
        ));
    }
    let author: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(user.id)
        .fetch_one(&state.pool)
        .await?;
    let silence: Silence = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO silences (id, owner_id, server_id, tags, metric, starts_at, ends_at, comment, author)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(user.id)
    .bind(&body.server_id)
    .bind(&body.tags)
    .bind(&body.metric)
    .bind(starts_at)
    .bind(ends_at)
    .bind(&body.comment)
    .bind(author)
    .fetch_one(&state.pool)
    .await?;
    crate::audit::record(
        &state.pool,
        Some(user.id),
        "silence_created",
        Some(&silence.id.to_string()),
        None,
        serde_json::json!({ "serverId": silence.server_id, "endsAt": silence.ends_at }),
    )
    .await;
    Ok((StatusCode::CREATED, ApiJson(with_status(silence, now))))
}

/// Ends a silence now (it stays listed as expired).
#[utoipa::path(delete, path = "/silences/{id}", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Silence id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn end_silence(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("silence"))?;
    let ended = sqlx::query(
        "UPDATE silences SET ends_at = LEAST(ends_at, now()),
                starts_at = LEAST(starts_at, now() - interval '1 microsecond')
         WHERE id = $1 AND ($2 OR owner_id = $3)",
    )
    .bind(id)
    .bind(user.is_admin())
    .bind(user.id)
    .execute(&state.pool)
    .await?
    .rows_affected();
    if ended == 0 {
        return Err(ApiError::NotFound("silence"));
    }
    Ok(StatusCode::NO_CONTENT)
}
