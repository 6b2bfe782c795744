//! `/alerts`: alerts of the servers the caller may see, filtered and paged; acknowledgement.
//!
//! `format=csv` gives the same page as a CSV file, streamed (see [`super::csv`]): one row an
//! alert, the columns of [`Alert`], and the next page's cursor in the `X-Next-Cursor` header
//! (absent on the last page) instead of `nextCursor`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Arguments as _;
use sqlx::postgres::PgArguments;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::csv::{self, Format};
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
    /// `json` (default) or `csv`: the page as a CSV file, one row an alert, the next page's
    /// cursor in the `X-Next-Cursor` header. Without it, `Accept: text/csv` asks for CSV too.
    #[param(inline, value_type = Option<Format>)]
    pub format: Option<String>,
}

impl csv::Row for Alert {
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "serverId",
        "serverName",
        "metric",
        "severity",
        "state",
        "value",
        "threshold",
        "startedAt",
        "resolvedAt",
        "message",
        "acknowledgedAt",
        "acknowledgedBy",
        "topProcesses",
        "container",
    ];

    fn write(&self, record: &mut csv::Record<'_>) {
        // The list as its JSON text; it holds process names and commands, free text.
        let top_processes = self
            .top_processes
            .as_ref()
            .and_then(|list| serde_json::to_string(&list.0).ok());
        record
            .uuid(Some(self.id))
            .plain(Some(&self.server_id))
            .text(self.server_name.as_deref())
            .plain(Some(&self.metric))
            .plain(Some(&self.severity))
            .plain(Some(&self.state))
            .number(self.value)
            .number(self.threshold)
            .time(Some(self.started_at))
            .time(self.resolved_at)
            .text(self.message.as_deref())
            .time(self.acknowledged_at)
            .uuid(self.acknowledged_by)
            .text(top_processes.as_deref())
            .text(self.container.as_deref());
    }
}

const SELECT: &str =
    "SELECT a.id, a.server_id, s.name AS server_name, a.metric, a.severity, a.state, a.value,
        a.threshold, a.started_at, a.resolved_at, a.message, a.acknowledged_at, a.acknowledged_by,
        a.top_processes, NULLIF(a.container, '') AS container
    FROM alerts a LEFT JOIN servers s ON s.id = a.server_id";

/// The alerts a list asks for, newest first: $1..$9 as [`Filters::arguments`] binds them.
const FILTER: &str = "WHERE ($1 OR s.owner_id = $2)
       AND ($3::text IS NULL OR a.server_id = $3)
       AND ($4::text IS NULL OR a.state = $4)
       AND ($5::text IS NULL OR a.severity = $5)
       AND ($6::timestamptz IS NULL OR a.started_at >= $6)
       AND ($7::timestamptz IS NULL OR a.started_at < $7)
       AND ($8::timestamptz IS NULL OR (a.started_at, a.id) < ($8, $9))
     ORDER BY a.started_at DESC, a.id DESC";

/// A list request, checked: the same for JSON and CSV.
#[derive(Debug)]
struct Filters {
    admin: bool,
    user: Uuid,
    server_id: Option<String>,
    state: Option<String>,
    severity: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    cursor_at: Option<DateTime<Utc>>,
    cursor_id: Option<Uuid>,
    limit: i64,
}

impl Filters {
    fn of(user: &CurrentUser, query: AlertQuery) -> ApiResult<Self> {
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
        Ok(Self {
            admin: user.is_admin(),
            user: user.id,
            server_id: query.server_id,
            state: query.state,
            severity: query.severity,
            from,
            to,
            cursor_at,
            cursor_id,
            limit,
        })
    }

    /// $1..$9 of [`FILTER`], then `last` as $10.
    fn arguments(&self, last: i64) -> ApiResult<PgArguments> {
        let mut args = PgArguments::default();
        let bound = (|| {
            args.add(self.admin)?;
            args.add(self.user)?;
            args.add(self.server_id.clone())?;
            args.add(self.state.clone())?;
            args.add(self.severity.clone())?;
            args.add(self.from)?;
            args.add(self.to)?;
            args.add(self.cursor_at)?;
            args.add(self.cursor_id)?;
            args.add(last)
        })();
        bound.map_err(|err| {
            ApiError::Internal(anyhow::anyhow!(err).context("bind alert filters"))
        })?;
        Ok(args)
    }
}

/// Alerts, newest first: a page as JSON or, with `format=csv`, as a CSV file streamed row by
/// row (the same filters and limit; the next page's cursor in `X-Next-Cursor`). A CSV download
/// that fails after its first rows ends as a truncated transfer.
#[utoipa::path(get, path = "/alerts", tag = "alerts", security(("bearer" = [])), params(AlertQuery),
    responses((status = 200, description = "A page: JSON, or with format=csv a CSV file (columns id, serverId, serverName, metric, severity, state, value, threshold, startedAt, resolvedAt, message, acknowledgedAt, acknowledgedBy, topProcesses, container)",
            content((Page<Alert> = "application/json"), (String = "text/csv")),
            headers(("Content-Disposition" = String, description = "CSV only: attachment; filename=\"alerts.csv\""),
                ("X-Next-Cursor" = String, description = "CSV only: pass as cursor for the next page (nextCursor); absent on the last page"))),
        (status = 400, description = "An unknown format", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_alerts(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Query(query): Query<AlertQuery>,
) -> ApiResult<Response> {
    let format = Format::of(query.format.as_deref(), &headers)?;
    let filters = Filters::of(&user, query)?;
    if format == Format::Csv {
        return csv_alerts(&state, &filters).await;
    }
    let sql = sqlx::AssertSqlSafe(format!("{SELECT} {FILTER} LIMIT $10"));
    let items: Vec<Alert> = sqlx::query_as_with(sql, filters.arguments(filters.limit + 1)?)
        .fetch_all(&state.pool)
        .await?;
    Ok(ApiJson(page::finish(items, filters.limit, |last| {
        (last.started_at, last.id)
    }))
    .into_response())
}

/// The page as CSV. The cursor goes out in a header, before the rows, so it is read first: the
/// key of the page's last row when a row follows it (as [`page::finish`] does), in the same
/// snapshot as the rows, so the two agree however many alerts fire meanwhile.
async fn csv_alerts(state: &AppState, filters: &Filters) -> ApiResult<Response> {
    let mut connection = csv::Connection::acquire(&state.pool).await?;
    connection.begin_snapshot().await?;
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT a.started_at, a.id FROM alerts a LEFT JOIN servers s ON s.id = a.server_id
         {FILTER} OFFSET $10 LIMIT 2"
    ));
    let keys: Vec<(DateTime<Utc>, Uuid)> =
        sqlx::query_as_with(sql, filters.arguments(filters.limit - 1)?)
            .fetch_all(connection.get()?)
            .await?;
    let next_cursor = match keys.as_slice() {
        [(at, id), _] => Some(page::encode(*at, &id.to_string())),
        _ => None,
    };
    let download = csv::Download {
        filename: "alerts.csv".to_owned(),
        headers: next_cursor
            .map(|cursor| (HeaderName::from_static("x-next-cursor"), cursor))
            .into_iter()
            .collect(),
    };
    let sql = sqlx::AssertSqlSafe(format!("{SELECT} {FILTER} LIMIT $10"));
    let rows = sqlx::query_with(sql, filters.arguments(filters.limit)?);
    csv::download::<Alert>(state, download, connection, rows, ()).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csv_columns_are_the_json_fields() {
        let alert = Alert {
            id: Uuid::new_v4(),
            server_id: "web-1".into(),
            server_name: Some("web".into()),
            metric: "cpu".into(),
            severity: "warning".into(),
            state: "firing".into(),
            value: Some(95.0),
            threshold: Some(90.0),
            started_at: Utc::now(),
            resolved_at: None,
            message: Some("hot, very".into()),
            acknowledged_at: None,
            acknowledged_by: None,
            top_processes: Some(sqlx::types::Json(serde_json::json!([{ "name": "a,b" }]))),
            container: Some("db".into()),
        };
        let json = serde_json::to_value(&alert).expect("json");
        let mut fields: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut columns = <Alert as csv::Row>::COLUMNS.to_vec();
        fields.sort_unstable();
        columns.sort_unstable();
        assert_eq!(columns, fields);
        let mut line = String::new();
        csv::record(&alert, &mut line);
        assert!(line.ends_with(",db\r\n"), "{line}");
        assert!(
            line.contains(",\"hot, very\","),
            "a comma is quoted: {line}"
        );
    }
}
