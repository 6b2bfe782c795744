//! `/servers/{id}/metrics`: a server's history, bucketed.
//!
//! Each point is the average, minimum and maximum of the headline figures over one bucket.
//! With TimescaleDB, buckets of a minute or more are read from the `metrics_1m` aggregate and
//! buckets of an hour or more from `metrics_1h` (sums and counts, so the means are exact); on
//! plain PostgreSQL, from the raw rows with `date_bin`.
//!
//! `format=csv` gives the same points as a CSV file, streamed (see [`super::csv`]): one row a
//! point, the columns of [`Point`] flattened, and the answer's other fields as headers
//! (`X-Bucket-Secs`, `X-Source`, `X-From`, `X-To`).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::visible_server;
use super::csv::{self, Format};
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(history))
}

/// About this many points per answer when no bucket is given.
pub const TARGET_POINTS: i64 = 1_000;
/// Never more than this many points in one answer.
pub const MAX_POINTS: i64 = 10_000;
/// Bucket sizes picked by default (seconds): round numbers on a clock.
const NICE_BUCKETS: [i64; 17] = [
    1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400,
];

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Start, RFC 3339 (default: one hour before `to`).
    pub from: Option<String>,
    /// End, RFC 3339 (default: now).
    pub to: Option<String>,
    /// Bucket size: seconds (`300`) or with a unit (`30s`, `5m`, `1h`, `1d`). Default: a round
    /// size giving at most ~1,000 points. One giving more than 10,000 points is raised to the
    /// smallest round size that does not.
    pub bucket: Option<String>,
    /// `json` (default) or `csv`: the points as a CSV file, one row a point. Without it,
    /// `Accept: text/csv` asks for CSV too.
    #[param(inline, value_type = Option<Format>)]
    pub format: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stat {
    pub avg: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// Start of the bucket.
    pub t: DateTime<Utc>,
    pub samples: i64,
    pub cpu: Stat,
    pub memory: Stat,
    pub disk: Stat,
    /// Bytes per second, received plus transmitted.
    pub network: Stat,
    pub network_rx: Option<f64>,
    pub network_tx: Option<f64>,
    pub load1: Option<f64>,
}

impl<'r> sqlx::FromRow<'r, PgRow> for Point {
    /// A row of [`RAW`], [`MINUTE`] or [`HOUR`].
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row as _;
        let stat = |i: usize| -> Result<Stat, sqlx::Error> {
            Ok(Stat {
                avg: row.try_get(i)?,
                min: row.try_get(i + 1)?,
                max: row.try_get(i + 2)?,
            })
        };
        Ok(Point {
            t: row.try_get(0)?,
            samples: row.try_get(1)?,
            cpu: stat(2)?,
            memory: stat(5)?,
            disk: stat(8)?,
            network: stat(11)?,
            network_rx: row.try_get(14)?,
            network_tx: row.try_get(15)?,
            load1: row.try_get(16)?,
        })
    }
}

impl csv::Row for Point {
    const COLUMNS: &'static [&'static str] = &[
        "t",
        "samples",
        "cpuAvg",
        "cpuMin",
        "cpuMax",
        "memoryAvg",
        "memoryMin",
        "memoryMax",
        "diskAvg",
        "diskMin",
        "diskMax",
        "networkAvg",
        "networkMin",
        "networkMax",
        "networkRx",
        "networkTx",
        "load1",
    ];

    fn write(&self, record: &mut csv::Record<'_>) {
        record.time(Some(self.t)).integer(self.samples);
        for stat in [&self.cpu, &self.memory, &self.disk, &self.network] {
            record.number(stat.avg).number(stat.min).number(stat.max);
        }
        record
            .number(self.network_rx)
            .number(self.network_tx)
            .number(self.load1);
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub server_id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket_secs: i64,
    /// Where the points came from: `raw`, `minute` (metrics_1m) or `hour` (metrics_1h).
    pub source: &'static str,
    pub points: Vec<Point>,
}

pub(super) fn parse_time(name: &str, value: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::unprocessable(format!("{name} {value:?} is not an RFC 3339 time")))
}

/// `300`, `30s`, `5m`, `1h`, `1d` → seconds.
pub fn parse_bucket(text: &str) -> Option<i64> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: i64 = digits.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(scale).filter(|secs| *secs > 0)
}

/// The smallest round bucket giving at most `TARGET_POINTS` over `range_secs`.
pub fn default_bucket(range_secs: i64) -> i64 {
    round_bucket(range_secs, TARGET_POINTS)
}

/// The smallest bucket a request over `range_secs` may use: the smallest round one giving at
/// most `MAX_POINTS`. A smaller bucket asked for is raised to it (the answer's `bucketSecs`
/// says so), so no request is refused for its bucket and none returns more than the limit.
pub fn minimum_bucket(range_secs: i64) -> i64 {
    round_bucket(range_secs, MAX_POINTS)
}

fn round_bucket(range_secs: i64, points: i64) -> i64 {
    let wanted = (range_secs + points - 1) / points;
    NICE_BUCKETS
        .iter()
        .copied()
        .find(|b| *b >= wanted)
        .unwrap_or_else(|| wanted.div_euclid(86_400).max(1) * 86_400)
}

/// The range and bucket a history request asks for, checked: `from` before `to`, at most
/// `gateway.history_max_days`, a bucket giving at most [`MAX_POINTS`] points. Every history
/// route reads its window this way, so they bucket alike.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: i64,
}

impl Window {
    pub fn of(
        state: &AppState,
        from: Option<&str>,
        to: Option<&str>,
        bucket: Option<&str>,
    ) -> ApiResult<Self> {
        let to = to
            .map(|t| parse_time("to", t))
            .transpose()?
            .unwrap_or_else(Utc::now);
        let from = from
            .map(|t| parse_time("from", t))
            .transpose()?
            .unwrap_or(to - chrono::Duration::hours(1));
        if from >= to {
            return Err(ApiError::unprocessable("from must be before to"));
        }
        let max_days = i64::from(state.settings.history_max_days);
        if to - from > chrono::Duration::days(max_days) {
            return Err(ApiError::unprocessable(format!(
                "the range may span at most {max_days} days"
            )));
        }
        let range = (to - from).num_seconds().max(1);
        let bucket = match bucket {
            Some(text) => parse_bucket(text).ok_or_else(|| {
                ApiError::unprocessable(format!(
                    "bucket {text:?} is not a duration such as 60, 30s, 5m, 1h"
                ))
            })?,
            None => default_bucket(range),
        };
        Ok(Self {
            from,
            to,
            bucket: bucket.max(minimum_bucket(range)),
        })
    }
}

/// The source serving `bucket_secs`: raw rows, or a TimescaleDB aggregate whose buckets divide it.
pub fn source_for(bucket_secs: i64, timescale: bool) -> &'static str {
    match (timescale, bucket_secs) {
        (true, b) if b >= 3_600 && b % 3_600 == 0 => "hour",
        (true, b) if b >= 60 && b % 60 == 0 => "minute",
        _ => "raw",
    }
}

const RAW: &str =
    "SELECT date_bin($1::interval, ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS t, count(*),
        avg(cpu)::float8, min(cpu)::float8, max(cpu)::float8,
        avg(memory)::float8, min(memory)::float8, max(memory)::float8,
        avg(disk)::float8, min(disk)::float8, max(disk)::float8,
        avg(network)::float8, min(network)::float8, max(network)::float8,
        avg(network_rx)::float8, avg(network_tx)::float8, avg(load1)::float8
    FROM metrics WHERE server_id = $2 AND ts >= $3 AND ts < $4
    GROUP BY 1 ORDER BY 1";

const MINUTE: &str = "SELECT time_bucket($1::interval, bucket) AS t, sum(samples)::bigint,
        (sum(cpu_sum) / sum(samples))::float8, min(cpu_min)::float8, max(cpu_max)::float8,
        (sum(memory_sum) / sum(samples))::float8, min(memory_min)::float8, max(memory_max)::float8,
        (sum(disk_sum) / sum(samples))::float8, min(disk_min)::float8, max(disk_max)::float8,
        (sum(network_sum) / sum(samples))::float8, min(network_min)::float8, max(network_max)::float8,
        (sum(network_rx_sum) / sum(samples))::float8, (sum(network_tx_sum) / sum(samples))::float8,
        (sum(load1_sum) / sum(samples))::float8
    FROM metrics_1m WHERE server_id = $2 AND bucket >= $3 AND bucket < $4
    GROUP BY 1 ORDER BY 1";

const HOUR: &str = "SELECT time_bucket($1::interval, bucket) AS t, sum(samples)::bigint,
        (sum(cpu_sum) / sum(samples))::float8, min(cpu_min)::float8, max(cpu_max)::float8,
        (sum(memory_sum) / sum(samples))::float8, min(memory_min)::float8, max(memory_max)::float8,
        (sum(disk_sum) / sum(samples))::float8, min(disk_min)::float8, max(disk_max)::float8,
        (sum(network_sum) / sum(samples))::float8, min(network_min)::float8, max(network_max)::float8,
        (sum(network_rx_sum) / sum(samples))::float8, (sum(network_tx_sum) / sum(samples))::float8,
        (sum(load1_sum) / sum(samples))::float8
    FROM metrics_1h WHERE server_id = $2 AND bucket >= $3 AND bucket < $4
    GROUP BY 1 ORDER BY 1";

/// Time-bucketed averages, minima and maxima of a server's headline figures, as JSON or, with
/// `format=csv`, as a CSV file streamed row by row (the same checks, limits and history slot;
/// `bucketSecs`, `source`, `from` and `to` as the headers `X-Bucket-Secs`, `X-Source`, `X-From`,
/// `X-To`). A CSV download that fails after its first rows ends as a truncated transfer.
#[utoipa::path(get, path = "/servers/{id}/metrics", tag = "metrics", security(("bearer" = [])),
    params(("id" = String, Path, description = "Server id"), HistoryQuery),
    responses((status = 200, description = "The points: JSON, or with format=csv a CSV file (columns t, samples, cpuAvg, cpuMin, cpuMax, memoryAvg, …, networkRx, networkTx, load1)",
            content((History = "application/json"), (String = "text/csv")),
            headers(("Content-Disposition" = String, description = "CSV only: attachment; filename=\"<id>-metrics.csv\""),
                ("X-Bucket-Secs" = i64, description = "CSV only: the bucket used (bucketSecs)"),
                ("X-Source" = String, description = "CSV only: raw, minute or hour (source)"))),
        (status = 400, description = "An unknown format", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "Unparseable times, from not before to, range beyond retention", body = ErrorBody),
        (status = 429, description = "This user already runs gateway.history_per_user history queries", body = ErrorBody),
        (status = 503, description = "Too many history queries, or one slower than gateway.statement_timeout_ms", body = ErrorBody)))]
async fn history(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Response> {
    let format = Format::of(query.format.as_deref(), &headers)?;
    let server = visible_server(&state, &user, &id).await?;
    let Window { from, to, bucket } = Window::of(
        &state,
        query.from.as_deref(),
        query.to.as_deref(),
        query.bucket.as_deref(),
    )?;
    let source = source_for(bucket, state.timescale);
    let sql = match source {
        "hour" => HOUR,
        "minute" => MINUTE,
        _ => RAW,
    };
    let admission = state.history.admit(user.id).await?;
    let query = sqlx::query(sql)
        .bind(format!("{bucket} seconds"))
        .bind(server.id.clone())
        .bind(from)
        .bind(to);
    if format == Format::Csv {
        let connection = csv::Connection::acquire(&state.pool).await?;
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let download = csv::Download {
            filename: format!("{}-metrics.csv", server.id),
            headers: vec![
                (HeaderName::from_static("x-bucket-secs"), bucket.to_string()),
                (HeaderName::from_static("x-source"), source.to_owned()),
                (HeaderName::from_static("x-from"), time(from)),
                (HeaderName::from_static("x-to"), time(to)),
            ],
        };
        return csv::download::<Point>(&state, download, connection, query, admission).await;
    }
    let rows = crate::heavy::fetch_all(&state.pool, query).await?;
    drop(admission);
    let points = rows
        .iter()
        .map(<Point as sqlx::FromRow<PgRow>>::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ApiJson(History {
        server_id: server.id,
        from,
        to,
        bucket_secs: bucket,
        source,
        points,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_bucket_gives_at_most_about_a_thousand_round_points() {
        assert_eq!(default_bucket(3_600), 5, "1 h → 5 s (720 points)");
        assert_eq!(default_bucket(86_400), 120, "24 h → 2 min (720 points)");
        assert_eq!(default_bucket(7 * 86_400), 900, "7 d → 15 min (672 points)");
        assert_eq!(
            default_bucket(30 * 86_400),
            3_600,
            "30 d → 1 h (720 points)"
        );
        assert_eq!(default_bucket(60), 1);
        for range in [60, 3_600, 86_400, 7 * 86_400, 30 * 86_400, 400 * 86_400] {
            assert!(range / default_bucket(range) <= TARGET_POINTS, "{range}");
            assert!(range / minimum_bucket(range) <= MAX_POINTS, "{range}");
        }
        assert_eq!(
            minimum_bucket(30 * 86_400),
            300,
            "30 d → at least 5 min (8,640 points)"
        );
        assert_eq!(minimum_bucket(3_600), 1);
    }

    #[test]
    fn buckets_parse_with_or_without_a_unit() {
        assert_eq!(parse_bucket("300"), Some(300));
        assert_eq!(parse_bucket("30s"), Some(30));
        assert_eq!(parse_bucket("5m"), Some(300));
        assert_eq!(parse_bucket("1h"), Some(3_600));
        assert_eq!(parse_bucket("2d"), Some(172_800));
        for bad in ["", "0", "-5", "5x", "m", "1.5h"] {
            assert_eq!(parse_bucket(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_csv_columns_are_the_json_fields_flattened() {
        let stat = |x: f64| Stat {
            avg: Some(x),
            min: Some(x),
            max: Some(x),
        };
        let point = Point {
            t: Utc::now(),
            samples: 1,
            cpu: stat(1.0),
            memory: stat(2.0),
            disk: stat(3.0),
            network: stat(4.0),
            network_rx: Some(5.0),
            network_tx: None,
            load1: Some(6.0),
        };
        let json = serde_json::to_value(&point).expect("json");
        let mut flat = Vec::new();
        for (name, value) in json.as_object().expect("object") {
            match value.as_object() {
                Some(nested) => flat.extend(nested.keys().map(|key| {
                    let mut key = key.chars();
                    let first = key.next().map(|c| c.to_ascii_uppercase());
                    format!("{name}{}{}", first.unwrap_or_default(), key.as_str())
                })),
                None => flat.push(name.clone()),
            }
        }
        let mut columns: Vec<String> = <Point as csv::Row>::COLUMNS
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        flat.sort();
        columns.sort();
        assert_eq!(columns, flat);
        let mut line = String::new();
        csv::record(&point, &mut line);
        assert_eq!(line.split(',').count(), <Point as csv::Row>::COLUMNS.len());
    }

    #[test]
    fn aggregates_serve_only_buckets_they_divide() {
        assert_eq!(source_for(120, true), "minute");
        assert_eq!(source_for(90, true), "raw");
        assert_eq!(source_for(7_200, true), "hour");
        assert_eq!(source_for(5_400, true), "minute");
        assert_eq!(source_for(3_600, false), "raw");
    }
}
