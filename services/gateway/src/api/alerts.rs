//! `/alerts`: alerts of the servers the caller may see, filtered and paged; acknowledgement.

use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::page::{self, Page};
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_alerts))
        .routes(routes!(acknowledge))
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub id: Uuid,
    pub server_id: String,
    pub server_name: Option<String>,
    /// `cpu`, `memory`, `disk`, `offline`, `container_stopped`, `container_restarting`,
    /// `container_unhealthy`.
    pub metric: String,
    /// `warning` or `critical`.
    pub severity: String,
    /// `firing` or `resolved`.
    pub state: String,
    /// The value that fired it.
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub message: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<Uuid>,
    /// CPU and memory alerts: the host's busiest (largest) processes when it fired.
    #[schema(value_type = Vec<Object>)]
    pub top_processes: Option<sqlx::types::Json<serde_json::Value>>,
    /// Container alerts: the container's name (one alert per container); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    pub server_id: Option<String>,
    /// `firing` or `resolved`.
    pub state: Option<String>,
    /// `warning` or `critical`.
    pub severity: Option<String>,
    /// Started at or after (RFC 3339).
    pub from: Option<String>,
    /// Started before (RFC 3339).
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

const SELECT: &str =
    "SELECT a.id, a.server_id, s.name AS server_name, a.metric, a.severity, a.state, a.value,
        a.threshold, a.started_at, a.resolved_at, a.message, a.acknowledged_at, a.acknowledged_by,
        a.top_processes, NULLIF(a.container, '') AS container
    FROM alerts a LEFT JOIN servers s ON s.id = a.server_id";

/// Alerts, newest first.
#[utoipa::path(get, path = "/alerts", tag = "alerts", security(("bearer" = [])), params(AlertQuery),
    responses((status = 200, body = Page<Alert>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_alerts(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<AlertQuery>,
) -> ApiResult<ApiJson<Page<Alert>>> {
    let limit = page::limit(query.limit)?;
    if let Some(server) = &query.server_id {
        ApiError::storable("serverId", server)?;
    }
    if let Some(s) = &query.state
        && s != "firing"
        && s != "resolved"
    {
        return Err(ApiError::unprocessable("state must be firing or resolved"));
    }
    if let Some(s) = &query.severity
        && s != "warning"
        && s != "critical"
    {
        return Err(ApiError::unprocessable(
            "severity must be warning or critical",
        ));
    }
    let from = page::time("from", query.from.as_deref())?;
    let to = page::time("to", query.to.as_deref())?;
    let (cursor_at, cursor_id) = page::position(query.cursor.as_deref())?;
    let sql = sqlx::AssertSqlSafe(format!(
        "{SELECT}
         WHERE ($1 OR s.owner_id = $2)
           AND ($3::text IS NULL OR a.server_id = $3)
           AND ($4::text IS NULL OR a.state = $4)
           AND ($5::text IS NULL OR a.severity = $5)
           AND ($6::timestamptz IS NULL OR a.started_at >= $6)
           AND ($7::timestamptz IS NULL OR a.started_at < $7)
           AND ($8::timestamptz IS NULL OR (a.started_at, a.id) < ($8, $9))
         ORDER BY a.started_at DESC, a.id DESC LIMIT $10"
    ));
    let items: Vec<Alert> = sqlx::query_as(sql)
        .bind(user.is_admin())
        .bind(user.id)
        .bind(&query.server_id)
        .bind(&query.state)
        .bind(&query.severity)
        .bind(from)
        .bind(to)
        .bind(cursor_at)
        .bind(cursor_id)
        .bind(limit + 1)
        .fetch_all(&state.pool)
        .await?;
    Ok(ApiJson(page::finish(items, limit, |last| {
        (last.started_at, last.id)
    })))
}

/// Acknowledges an alert: someone is on it. Acknowledging twice keeps the first. While the
/// alert fires, its incident is acknowledged too: no repeats, no new page while it flaps.
#[utoipa::path(post, path = "/alerts/{id}/ack", tag = "alerts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Alert id")),
    responses((status = 200, body = Alert), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn acknowledge(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<Alert>> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("alert"))?;
    let visible: Option<Uuid> = sqlx::query_scalar(
        "SELECT a.id FROM alerts a LEFT JOIN servers s ON s.id = a.server_id WHERE a.id = $1 AND ($2 OR s.owner_id = $3)",
    )
    .bind(id)
    .bind(user.is_admin())
    .bind(user.id)
    .fetch_optional(&state.pool)
    .await?;
    let id = visible.ok_or(ApiError::NotFound("alert"))?;
    sqlx::query(
        "UPDATE alerts SET acknowledged_at = COALESCE(acknowledged_at, now()),
                acknowledged_by = COALESCE(acknowledged_by, $2)
         WHERE id = $1",
    )
    .bind(id)
    .bind(user.id)
    .execute(&state.pool)
    .await?;
    // The incident (its server, metric and container) while it lasts: the alerter sends no
    // repeats and no new page while it flaps.
    sqlx::query(
        "INSERT INTO alert_acks (server_id, metric, container, acked_by, author)
         SELECT a.server_id, a.metric, a.container, $2, u.email FROM alerts a, users u
         WHERE a.id = $1 AND u.id = $2 AND a.state = 'firing'
         ON CONFLICT (server_id, metric, container) DO NOTHING",
    )
    .bind(id)
    .bind(user.id)
    .execute(&state.pool)
    .await?;
    let alert: Alert = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE a.id = $1")))
        .bind(id)
        .fetch_one(&state.pool)
        .await?;
    Ok(ApiJson(alert))
}
