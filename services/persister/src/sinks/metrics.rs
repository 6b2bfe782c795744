//! Metric samples into `metrics`, and the `servers` they come from.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use flick_shared::Subjects;
use flick_shared::subjects::StreamKind;
use flick_shared::wire::{MetricSample, decode};

use crate::pipeline::{Refusal, Sink, check_subject};

/// How stale `servers.last_seen_at` may get: a server's row is updated at most once per this
/// period per persister, instead of once per batch (an update per server per batch is a fifth
/// of the database's work at 1,000 servers).
pub const LAST_SEEN_RESOLUTION: chrono::Duration = chrono::Duration::seconds(10);

#[derive(Debug)]
pub struct MetricsSink {
    subjects: Subjects,
    /// The `last_seen_at` this persister last wrote for each server.
    last_seen: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl MetricsSink {
    pub fn new(subjects: Subjects) -> Self {
        Self {
            subjects,
            last_seen: Mutex::new(HashMap::new()),
        }
    }
}

/// One `metrics` row. Detail that varies in length travels as text the database casts: cores
/// as an array literal, mounts and interfaces as JSON.
#[derive(Debug)]
pub struct MetricRow {
    server_id: String,
    hostname: Option<String>,
    ts: DateTime<Utc>,
    cpu: f32,
    memory: f32,
    disk: f32,
    network: i64,
    network_rx: Option<i64>,
    network_tx: Option<i64>,
    load1: Option<f32>,
    load5: Option<f32>,
    load15: Option<f32>,
    memory_used: Option<i64>,
    memory_total: Option<i64>,
    swap_used: Option<i64>,
    swap_total: Option<i64>,
    disk_read: Option<i64>,
    disk_write: Option<i64>,
    uptime_secs: Option<i64>,
    processes: Option<i32>,
    cpu_cores: Option<String>,
    mounts: Option<String>,
    interfaces: Option<String>,
}

/// `{1.5,2.25}`: a `real[]` literal, written in one buffer.
fn array_literal(values: &[f64]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(2 + values.len() * 7);
    text.push('{');
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let _ = write!(text, "{}", *value as f32);
    }
    text.push('}');
    text
}

fn big(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl From<MetricSample> for MetricRow {
    fn from(s: MetricSample) -> Self {
        let cpu_cores = (!s.cpu_cores.is_empty()).then(|| array_literal(&s.cpu_cores));
        let mounts = (!s.mounts.is_empty())
            .then(|| serde_json::to_string(&s.mounts).ok())
            .flatten();
        let interfaces = (!s.interfaces.is_empty())
            .then(|| serde_json::to_string(&s.interfaces).ok())
            .flatten();
        Self {
            server_id: s.server_id.into(),
            hostname: s.hostname,
            ts: s.timestamp,
            cpu: s.cpu_usage as f32,
            memory: s.memory_usage as f32,
            disk: s.disk_usage as f32,
            network: big(s.network_usage),
            network_rx: s.network.map(|n| big(n.rx_bytes_per_sec)),
            network_tx: s.network.map(|n| big(n.tx_bytes_per_sec)),
            load1: s.load_average.map(|l| l.one as f32),
            load5: s.load_average.map(|l| l.five as f32),
            load15: s.load_average.map(|l| l.fifteen as f32),
            memory_used: s.memory.map(|m| big(m.used_bytes)),
            memory_total: s.memory.map(|m| big(m.total_bytes)),
            swap_used: s.swap.map(|m| big(m.used_bytes)),
            swap_total: s.swap.map(|m| big(m.total_bytes)),
            disk_read: s.disk_io.map(|d| big(d.read_bytes_per_sec)),
            disk_write: s.disk_io.map(|d| big(d.write_bytes_per_sec)),
            uptime_secs: s.uptime_secs.map(big),
            processes: s
                .process_count
                .map(|p| i32::try_from(p).unwrap_or(i32::MAX)),
            cpu_cores,
            mounts,
            interfaces,
        }
    }
}

impl Sink for MetricsSink {
    type Row = MetricRow;
    const KIND: StreamKind = StreamKind::Metrics;
    const NAME: &'static str = "metrics";

    fn decode(
        &self,
        subject: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<MetricRow, Refusal> {
        let sample: MetricSample = decode(payload, now)?;
        check_subject(
            &self.subjects,
            Self::KIND,
            subject,
            sample.server_id.as_str(),
        )?;
        Ok(sample.into())
    }

    /// The common case, a batch none of whose rows exists yet, is a plain `INSERT`: the
    /// speculative insertion behind `ON CONFLICT` costs about a quarter of the database's time
    /// per row. A redelivered sample makes it fail with a unique violation; the batch then rolls
    /// back to a savepoint and is written again with `ON CONFLICT DO NOTHING`, so a repeat is a
    /// no-op either way.
    async fn write(&self, conn: &mut PgConnection, rows: &[MetricRow]) -> Result<u64, sqlx::Error> {
        sqlx::query("SAVEPOINT new_rows")
            .execute(&mut *conn)
            .await?;
        match bind_columns(sqlx::query(INSERT_NEW), rows)
            .execute(&mut *conn)
            .await
        {
            Ok(done) => {
                sqlx::query("RELEASE SAVEPOINT new_rows")
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected())
            }
            Err(sqlx::Error::Database(err)) if err.is_unique_violation() => {
                sqlx::query("ROLLBACK TO SAVEPOINT new_rows")
                    .execute(&mut *conn)
                    .await?;
                let done = bind_columns(sqlx::query(INSERT_IDEMPOTENT), rows)
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected())
            }
            Err(err) => Err(err),
        }
    }

    async fn after_commit(&self, pool: &PgPool, rows: &[MetricRow]) -> Result<(), sqlx::Error> {
        let due = {
            let written = self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
            servers_due(rows, &written)
        };
        if due.is_empty() {
            return Ok(());
        }
        upsert_servers(pool, &due).await?;
        let mut written = self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
        for server in due {
            written.insert(server.id.to_owned(), server.seen);
        }
        Ok(())
    }
}

macro_rules! insert_metrics {
    ($tail:literal) => {
        concat!(
            "INSERT INTO metrics (server_id, ts, cpu, memory, disk, network, network_rx, network_tx,
                 load1, load5, load15, memory_used, memory_total, swap_used, swap_total,
                 disk_read, disk_write, uptime_secs, processes, cpu_cores, mounts, interfaces)
             SELECT s, t, c, m, d, n, rx, tx, l1, l5, l15, mu, mt, su, st, dr, dw, up, p,
                    cc::real[], mo::json, ifs::json
             FROM UNNEST($1::text[], $2::timestamptz[], $3::real[], $4::real[], $5::real[],
                         $6::bigint[], $7::bigint[], $8::bigint[], $9::real[], $10::real[],
                         $11::real[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[],
                         $16::bigint[], $17::bigint[], $18::bigint[], $19::int[], $20::text[],
                         $21::text[], $22::text[])
                  AS u(s, t, c, m, d, n, rx, tx, l1, l5, l15, mu, mt, su, st, dr, dw, up, p, cc, mo, ifs)",
            $tail
        )
    };
}

const INSERT_NEW: &str = insert_metrics!("");
const INSERT_IDEMPOTENT: &str = insert_metrics!(" ON CONFLICT (server_id, ts) DO NOTHING");

/// Binds the batch, column by column, to the parameters of `insert_metrics!`.
fn bind_columns<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    rows: &'q [MetricRow],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(column(rows, |r| r.server_id.as_str()))
        .bind(column(rows, |r| r.ts))
        .bind(column(rows, |r| r.cpu))
        .bind(column(rows, |r| r.memory))
        .bind(column(rows, |r| r.disk))
        .bind(column(rows, |r| r.network))
        .bind(column(rows, |r| r.network_rx))
        .bind(column(rows, |r| r.network_tx))
        .bind(column(rows, |r| r.load1))
        .bind(column(rows, |r| r.load5))
        .bind(column(rows, |r| r.load15))
        .bind(column(rows, |r| r.memory_used))
        .bind(column(rows, |r| r.memory_total))
        .bind(column(rows, |r| r.swap_used))
        .bind(column(rows, |r| r.swap_total))
        .bind(column(rows, |r| r.disk_read))
        .bind(column(rows, |r| r.disk_write))
        .bind(column(rows, |r| r.uptime_secs))
        .bind(column(rows, |r| r.processes))
        .bind(column(rows, |r| r.cpu_cores.as_deref()))
        .bind(column(rows, |r| r.mounts.as_deref()))
        .bind(column(rows, |r| r.interfaces.as_deref()))
}

/// One column of the batch, for `UNNEST`.
pub fn column<'a, R, T>(rows: &'a [R], field: impl Fn(&'a R) -> T) -> Vec<T> {
    rows.iter().map(field).collect()
}

/// A server in a batch: its latest sample time and host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SeenServer<'a> {
    id: &'a str,
    seen: DateTime<Utc>,
    hostname: Option<&'a str>,
}

/// The servers of `rows` whose row is new to this persister or `LAST_SEEN_RESOLUTION` behind,
/// in id order.
fn servers_due<'a>(
    rows: &'a [MetricRow],
    written: &HashMap<String, DateTime<Utc>>,
) -> Vec<SeenServer<'a>> {
    let mut latest: BTreeMap<&str, SeenServer<'a>> = BTreeMap::new();
    for row in rows {
        let entry = latest.entry(&row.server_id).or_insert(SeenServer {
            id: &row.server_id,
            seen: row.ts,
            hostname: None,
        });
        entry.seen = entry.seen.max(row.ts);
        if row.hostname.is_some() {
            entry.hostname = row.hostname.as_deref();
        }
    }
    latest
        .into_values()
        .filter(|server| {
            written
                .get(server.id)
                .is_none_or(|last| server.seen >= *last + LAST_SEEN_RESOLUTION)
        })
        .collect()
}

/// Creates the servers seen for the first time (no owner: visible to admins) and moves
/// `last_seen_at` forward: one statement per batch, one row per server, in id order so that
/// concurrent writers lock rows in the same order, and outside the batch's transaction so that
/// they hold those locks only for this statement.
async fn upsert_servers(pool: &PgPool, servers: &[SeenServer<'_>]) -> Result<(), sqlx::Error> {
    let ids: Vec<&str> = servers.iter().map(|s| s.id).collect();
    let seen: Vec<DateTime<Utc>> = servers.iter().map(|s| s.seen).collect();
    let hostnames: Vec<Option<&str>> = servers.iter().map(|s| s.hostname).collect();
    sqlx::query(
        "INSERT INTO servers (id, name, hostname, last_seen_at)
         SELECT id, COALESCE(host, id), host, seen
         FROM UNNEST($1::text[], $2::text[], $3::timestamptz[]) AS u(id, host, seen)
         ON CONFLICT (id) DO UPDATE
            SET last_seen_at = EXCLUDED.last_seen_at,
                hostname = COALESCE(EXCLUDED.hostname, servers.hostname)
            WHERE servers.last_seen_at IS NULL OR servers.last_seen_at < EXCLUDED.last_seen_at",
    )
    .bind(ids)
    .bind(hostnames)
    .bind(seen)
    .execute(pool)
    .await?;
    Ok(())
}
