//! What was sent to whom: every notice the alerter recorded, with each attempt (outcome,
//! latency, error), per alert and per channel.

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(alert_notifications))
        .routes(routes!(channel_notifications))
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    /// `delivered`, `failed` (will be retried) or `refused` (final).
    pub outcome: String,
    pub latency_ms: f64,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: Uuid,
    pub channel_id: Option<Uuid>,
    pub channel_name: String,
    pub summary: String,
    pub alert_ids: Vec<Uuid>,
    pub server_ids: Vec<String>,
    pub repeat: bool,
    pub test: bool,
    /// `sending`, `delivered`, `given_up`, or `unknown` (its alerter died while sending it;
    /// it is not sent again).
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub attempts: Vec<Attempt>,
}

type Row = (
    Uuid,
    Option<Uuid>,
    String,
    String,
    Vec<Uuid>,
    Vec<String>,
    bool,
    bool,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

async fn with_attempts(state: &AppState, rows: Vec<Row>) -> ApiResult<Vec<Notification>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    type AttemptRow = (Uuid, i32, DateTime<Utc>, String, f64, Option<String>);
    let attempts: Vec<AttemptRow> = sqlx::query_as(
        "SELECT notification_id, attempt, at, outcome, latency_ms, error FROM notification_attempts
         WHERE notification_id = ANY($1) ORDER BY notification_id, attempt",
    )
    .bind(&ids)
    .fetch_all(&state.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Notification {
            attempts: attempts
                .iter()
                .filter(|a| a.0 == r.0)
                .map(|a| Attempt {
                    attempt: a.1,
                    at: a.2,
                    outcome: a.3.clone(),
                    latency_ms: a.4,
                    error: a.5.clone(),
                })
                .collect(),
            id: r.0,
            channel_id: r.1,
            channel_name: r.2,
            summary: r.3,
            alert_ids: r.4,
            server_ids: r.5,
            repeat: r.6,
            test: r.7,
            status: r.8,
            created_at: r.9,
            finished_at: r.10,
        })
        .collect())
}

const SELECT: &str =
    "SELECT id, channel_id, channel_name, summary, alert_ids, server_ids, repeat, test,
    status, created_at, finished_at FROM notifications";

/// The notices that carried this alert (its firing, repeats, its resolution), newest first.
#[utoipa::path(get, path = "/alerts/{id}/notifications", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Alert id")),
    responses((status = 200, body = Vec<Notification>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn alert_notifications(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<Vec<Notification>>> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("alert"))?;
    let visible: Option<Uuid> = sqlx::query_scalar(
        "SELECT a.id FROM alerts a LEFT JOIN servers s ON s.id = a.server_id
         WHERE a.id = $1 AND ($2 OR s.owner_id = $3)",
    )
    .bind(id)
    .bind(user.is_admin())
    .bind(user.id)
    .fetch_optional(&state.pool)
    .await?;
    let id = visible.ok_or(ApiError::NotFound("alert"))?;
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE alert_ids @> ARRAY[$1]::uuid[] ORDER BY created_at DESC LIMIT 200"
    )))
    .bind(id)
    .fetch_all(&state.pool)
    .await?;
    Ok(ApiJson(with_attempts(&state, rows).await?))
}

/// The channel's last 200 notices, newest first (admins only).
#[utoipa::path(get, path = "/notification-channels/{id}/notifications", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Channel id")),
    responses((status = 200, body = Vec<Notification>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn channel_notifications(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<Vec<Notification>>> {
    user.require_admin()?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("channel"))?;
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE channel_id = $1 ORDER BY created_at DESC LIMIT 200"
    )))
    .bind(id)
    .fetch_all(&state.pool)
    .await?;
    Ok(ApiJson(with_attempts(&state, rows).await?))
}
