//! `/servers/{id}/containers`: the containers of a host, from the newest list its collector
//! sent (lists ride on samples, every `collector.containers_interval_ms`, and the persister
//! keeps them as long as samples), or the list stored last at or before `?at=`. The live
//! stream carries the same lists as part of the samples.

use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use flick_shared::wire::ContainerUsage;

use super::access::visible_server;
use super::history::parse_time;
use crate::auth::CurrentUser;
use crate::error::{ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(containers))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContainersQuery {
    /// RFC 3339: the list stored last at or before this time. Default: the newest one.
    pub at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Containers {
    pub server_id: String,
    /// When the list was taken; `null` when the host never sent one (its collector has no
    /// `docker_socket`).
    pub timestamp: Option<DateTime<Utc>>,
    /// By name: `{id, name, image, state, health?, exitCode?, restarts, cpuPercent,
    /// memoryBytes, memoryLimitBytes?, netRxBytes, netTxBytes, blockReadBytes,
    /// blockWriteBytes}`, as on the wire.
    #[schema(value_type = Vec<Object>)]
    pub containers: Vec<ContainerUsage>,
}

/// The containers of a server: name, image, state, health, restarts and usage.
#[utoipa::path(get, path = "/servers/{id}/containers", tag = "metrics", security(("bearer" = [])),
    params(("id" = String, Path, description = "Server id"), ContainersQuery),
    responses((status = 200, body = Containers), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "`at` is not RFC 3339", body = ErrorBody)))]
async fn containers(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(query): Query<ContainersQuery>,
) -> ApiResult<ApiJson<Containers>> {
    let server = visible_server(&state, &user, &id).await?;
    let at = match query.at.as_deref() {
        Some(at) => parse_time("at", at)?,
        None => Utc::now() + chrono::Duration::minutes(5),
    };
    Ok(ApiJson(stored(&state, server.id, at).await?))
}

/// One `containers` row.
type Row = (
    DateTime<Utc>,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    i64,
    f32,
    i64,
    Option<i64>,
    (i64, i64, i64, i64),
);

/// The list stored last at or before `at`.
async fn stored(state: &AppState, server: String, at: DateTime<Utc>) -> ApiResult<Containers> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT ts, name, container_id, image, state, health, exit_code, restarts, cpu_percent,
                memory_bytes, memory_limit_bytes,
                ROW(net_rx_bytes, net_tx_bytes, block_read_bytes, block_write_bytes)
         FROM containers
         WHERE server_id = $1
           AND ts = (SELECT max(ts) FROM containers WHERE server_id = $1 AND ts <= $2)
         ORDER BY name",
    )
    .bind(&server)
    .bind(at)
    .fetch_all(&state.pool)
    .await?;
    let unsigned = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(Containers {
        timestamp: rows.first().map(|r| r.0),
        // A list without containers is stored as one row with an empty name.
        containers: rows
            .into_iter()
            .filter(|row| !row.1.is_empty())
            .map(
                |(
                    _,
                    name,
                    id,
                    image,
                    state,
                    health,
                    exit_code,
                    restarts,
                    cpu,
                    memory,
                    limit,
                    io,
                )| {
                    ContainerUsage {
                        id,
                        name,
                        image,
                        state,
                        health,
                        exit_code,
                        restarts: unsigned(restarts),
                        cpu_percent: f64::from(cpu),
                        memory_bytes: unsigned(memory),
                        memory_limit_bytes: limit.map(unsigned),
                        net_rx_bytes: unsigned(io.0),
                        net_tx_bytes: unsigned(io.1),
                        block_read_bytes: unsigned(io.2),
                        block_write_bytes: unsigned(io.3),
                    }
                },
            )
            .collect(),
        server_id: server,
    })
}
