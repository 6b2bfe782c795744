//! `/servers/{id}/processes`: what is eating a host. The newest list comes from the processes
//! stream (what the collector published last, a few seconds old); a list of the past
//! (`?at=`) from what the persister stored (`retention.processes_days`).

use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use flick_shared::streams::newest_process_list;
use flick_shared::wire::{ProcessUsage, ServerId};

use super::access::visible_server;
use super::history::parse_time;
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(processes))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProcessesQuery {
    /// RFC 3339: the list stored last at or before this time. Default: the newest one.
    pub at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Processes {
    pub server_id: String,
    /// When the list was taken; `null` when the host has published none (a collector with
    /// `processes_interval_ms = 0`, or none within the stream's hour).
    pub timestamp: Option<DateTime<Utc>>,
    #[schema(value_type = Vec<Object>)]
    pub by_cpu: Vec<ProcessUsage>,
    #[schema(value_type = Vec<Object>)]
    pub by_memory: Vec<ProcessUsage>,
}

/// The top processes of a server, by CPU and by memory.
#[utoipa::path(get, path = "/servers/{id}/processes", tag = "metrics", security(("bearer" = [])),
    params(("id" = String, Path, description = "Server id"), ProcessesQuery),
    responses((status = 200, body = Processes), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "`at` is not RFC 3339", body = ErrorBody)))]
async fn processes(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(query): Query<ProcessesQuery>,
) -> ApiResult<ApiJson<Processes>> {
    let server = visible_server(&state, &user, &id).await?;
    let empty = |server_id: String| Processes {
        server_id,
        timestamp: None,
        by_cpu: Vec::new(),
        by_memory: Vec::new(),
    };
    if let Some(at) = query.at.as_deref() {
        let at = parse_time("at", at)?;
        return Ok(ApiJson(
            stored(&state, &server.id, at)
                .await?
                .unwrap_or_else(|| empty(server.id)),
        ));
    }
    let newest = match ServerId::parse(server.id.clone()) {
        Ok(id) => newest_process_list(&state.js, &state.subjects, &id)
            .await
            .map_err(|err| ApiError::Unavailable(format!("cannot read the process list: {err}")))?,
        Err(_) => None,
    };
    Ok(ApiJson(match newest {
        Some(list) => Processes {
            server_id: server.id,
            timestamp: Some(list.timestamp),
            by_cpu: list.by_cpu,
            by_memory: list.by_memory,
        },
        None => stored(&state, &server.id, Utc::now())
            .await?
            .unwrap_or_else(|| empty(server.id)),
    }))
}

/// The list stored last at or before `at`.
async fn stored(state: &AppState, server: &str, at: DateTime<Utc>) -> ApiResult<Option<Processes>> {
    type Row = (
        DateTime<Utc>,
        sqlx::types::Json<Vec<ProcessUsage>>,
        sqlx::types::Json<Vec<ProcessUsage>>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT ts, by_cpu, by_memory FROM process_lists
         WHERE server_id = $1 AND ts <= $2 ORDER BY ts DESC LIMIT 1",
    )
    .bind(server)
    .bind(at)
    .fetch_optional(&state.pool)
    .await?;
    Ok(row.map(|(ts, by_cpu, by_memory)| Processes {
        server_id: server.to_owned(),
        timestamp: Some(ts),
        by_cpu: by_cpu.0,
        by_memory: by_memory.0,
    }))
}
