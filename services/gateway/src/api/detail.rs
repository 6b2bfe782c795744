//! `/servers/{id}/metrics/detail`: the history of a server's detail figures (per core, per
//! mount, per interface, swap, load, disk I/O, temperatures), one line per core, mount or interface,
//! bucketed exactly as `/servers/{id}/metrics` buckets the headline figures (the same
//! [`Window`]: range checks, default and minimum bucket, `date_bin` from the same origin).
//!
//! The detail is stored with each raw sample (`cpu_cores real[]`, `mounts`/`interfaces` as
//! the wire's JSON), so it is always read from the raw rows, with or without TimescaleDB; the
//! history's admission control and statement timeout bound what a long range costs.

use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::visible_server;
use super::history::Window;
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(detail))
}

/// The detail series a request may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Series {
    /// Busy percent of each core (`core 0`, `core 1`, …).
    Cores,
    /// Used percent of each mount as `df` computes it (one line per mount point).
    Mounts,
    /// Bytes per second, `<name> received` and `<name> sent` for each interface.
    Interfaces,
    /// Swap in use, percent of the swap space (absent on hosts without swap).
    Swap,
    /// Load average, `1 min`, `5 min`, `15 min`.
    Load,
    /// Bytes per second, `read` and `write`, all disks.
    DiskIo,
    /// Degrees Celsius, one line per sensor (no line on a host without sensors).
    Temperatures,
}

impl Series {
    /// What the values measure: `percent`, `bytesPerSecond`, `load` or `celsius`.
    fn unit(self) -> &'static str {
        match self {
            Self::Cores | Self::Mounts | Self::Swap => "percent",
            Self::Interfaces | Self::DiskIo => "bytesPerSecond",
            Self::Load => "load",
            Self::Temperatures => "celsius",
        }
    }

    /// `(line order, line name, value)` for each stored row `m`, as a lateral source. A line's
    /// order keeps cores numeric (`core 2` before `core 10`) and the others by name.
    fn lines(self) -> &'static str {
        match self {
            Self::Cores => {
                "SELECT c.i, 'core ' || (c.i - 1), c.v::float8
                 FROM unnest(m.cpu_cores) WITH ORDINALITY AS c(v, i)"
            }
            // `df`'s percent, as `MountUsage::usage_percent` computes it: used / (used +
            // available); a mount from a collector without `availableBytes`, used / total.
            Self::Mounts => {
                "SELECT 0::bigint, e->>'mountPoint',
                        CASE WHEN e->>'availableBytes' IS NOT NULL
                             THEN 100 * (e->>'usedBytes')::float8
                                  / NULLIF((e->>'usedBytes')::float8 + (e->>'availableBytes')::float8, 0)
                             ELSE 100 * (e->>'usedBytes')::float8 / NULLIF((e->>'totalBytes')::float8, 0)
                        END
                 FROM json_array_elements(m.mounts) AS e"
            }
            Self::Interfaces => {
                "SELECT 0::bigint, v.name, v.value
                 FROM json_array_elements(m.interfaces) AS e,
                      LATERAL (VALUES (e->>'name' || ' received', (e->>'rxBytesPerSec')::float8),
                                      (e->>'name' || ' sent', (e->>'txBytesPerSec')::float8)) AS v(name, value)"
            }
            Self::Swap => {
                "SELECT 0::bigint, 'swap used', 100 * m.swap_used::float8 / NULLIF(m.swap_total, 0)"
            }
            Self::Load => {
                "SELECT v.o, v.name, v.value
                 FROM (VALUES (1::bigint, '1 min', m.load1::float8), (2, '5 min', m.load5::float8),
                              (3, '15 min', m.load15::float8)) AS v(o, name, value)"
            }
            Self::DiskIo => {
                "SELECT v.o, v.name, v.value
                 FROM (VALUES (1::bigint, 'read', m.disk_read::float8),
                              (2, 'write', m.disk_write::float8)) AS v(o, name, value)"
            }
            Self::Temperatures => {
                "SELECT 0::bigint, e->>'label', (e->>'celsius')::float8
                 FROM json_array_elements(m.temperatures) AS e"
            }
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DetailQuery {
    /// `cores`, `mounts`, `interfaces`, `swap`, `load`, `disk_io` or `temperatures`.
    pub series: Series,
    /// Start, RFC 3339 (default: one hour before `to`).
    pub from: Option<String>,
    /// End, RFC 3339 (default: now).
    pub to: Option<String>,
    /// Bucket size, as for `/servers/{id}/metrics`.
    pub bucket: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DetailPoint {
    /// Start of the bucket.
    pub t: DateTime<Utc>,
    /// Stored values in the bucket.
    pub samples: i64,
    pub avg: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DetailLine {
    /// `core 0`, `/var`, `eth0 received`, `5 min`, `read`…
    pub name: String,
    pub points: Vec<DetailPoint>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetailHistory {
    pub server_id: String,
    pub series: Series,
    /// `percent`, `bytesPerSecond`, `load` or `celsius`.
    pub unit: &'static str,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket_secs: i64,
    pub lines: Vec<DetailLine>,
}

/// Time-bucketed averages, minima and maxima of a server's detail figures, a line each.
#[utoipa::path(get, path = "/servers/{id}/metrics/detail", tag = "metrics", security(("bearer" = [])),
    params(("id" = String, Path, description = "Server id"), DetailQuery),
    responses((status = 200, body = DetailHistory), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "Unparseable times, from not before to, range beyond retention", body = ErrorBody),
        (status = 429, description = "This user already runs gateway.history_per_user history queries", body = ErrorBody),
        (status = 503, description = "Too many history queries, or one slower than gateway.statement_timeout_ms", body = ErrorBody)))]
async fn detail(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(query): Query<DetailQuery>,
) -> ApiResult<ApiJson<DetailHistory>> {
    let server = visible_server(&state, &user, &id).await?;
    let Window { from, to, bucket } = Window::of(
        &state,
        query.from.as_deref(),
        query.to.as_deref(),
        query.bucket.as_deref(),
    )?;
    let sql = format!(
        "SELECT l.o, l.name, date_bin($1::interval, m.ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS t,
                count(l.value), avg(l.value), min(l.value), max(l.value)
         FROM metrics m CROSS JOIN LATERAL ({}) AS l(o, name, value)
         WHERE m.server_id = $2 AND m.ts >= $3 AND m.ts < $4 AND l.name IS NOT NULL
         GROUP BY 1, 2, 3 HAVING count(l.value) > 0 ORDER BY 1, 2, 3",
        query.series.lines()
    );
    let _admission = state.history.admit(user.id).await?;
    let rows = crate::heavy::fetch_all(
        &state.pool,
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(format!("{bucket} seconds"))
            .bind(&server.id)
            .bind(from)
            .bind(to),
    )
    .await?;
    let mut lines: Vec<DetailLine> = Vec::new();
    for row in &rows {
        use sqlx::Row;
        let name: String = row
            .try_get(1)
            .map_err(|err| ApiError::Internal(err.into()))?;
        let point = DetailPoint {
            t: row.get(2),
            samples: row.get(3),
            avg: row.get(4),
            min: row.get(5),
            max: row.get(6),
        };
        match lines.last_mut() {
            Some(line) if line.name == name => line.points.push(point),
            _ => lines.push(DetailLine {
                name,
                points: vec![point],
            }),
        }
    }
    Ok(ApiJson(DetailHistory {
        server_id: server.id,
        series: query.series,
        unit: query.series.unit(),
        from,
        to,
        bucket_secs: bucket,
        lines,
    }))
}
