//! Metric samples into `metrics`, and the `servers` they come from.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use flick_shared::Subjects;
use flick_shared::subjects::StreamKind;
use flick_shared::wire::{MetricSample, decode_on};

use super::binary_copy::BinaryCopy;
use crate::pipeline::{Refusal, Sink};

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

/// One `metrics` row. Mounts, interfaces and temperatures travel as JSON text.
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
    cpu_cores: Vec<f32>,
    mounts: Option<String>,
    interfaces: Option<String>,
    temperatures: Option<String>,
    /// The container list the sample carried (none on most samples), stored in `containers`.
    containers: Option<Vec<flick_shared::wire::ContainerUsage>>,
}

/// `{1.5,2.25}`: a `real[]` literal, written in one buffer (for the `UNNEST` fallback, whose
/// arrays cannot be ragged).
fn array_literal(values: &[f32]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(2 + values.len() * 7);
    text.push('{');
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let _ = write!(text, "{value}");
    }
    text.push('}');
    text
}

fn big(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl From<MetricSample> for MetricRow {
    fn from(s: MetricSample) -> Self {
        let cpu_cores = s.cpu_cores.iter().map(|c| *c as f32).collect();
        let mounts = (!s.mounts.is_empty())
            .then(|| serde_json::to_string(&s.mounts).ok())
            .flatten();
        let interfaces = (!s.interfaces.is_empty())
            .then(|| serde_json::to_string(&s.interfaces).ok())
            .flatten();
        let temperatures = (!s.temperatures.is_empty())
            .then(|| serde_json::to_string(&s.temperatures).ok())
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
            temperatures,
            containers: s.containers,
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
        Ok(decode_on::<MetricSample>(&self.subjects, subject, payload, now)?.into())
    }

    /// The common case, a batch none of whose rows exists yet, is a plain `INSERT`: the
    /// speculative insertion behind `ON CONFLICT` costs about a quarter of the database's time
    /// per row. A redelivered sample makes it fail with a unique violation; the batch then rolls
    /// back to a savepoint and is written again with `ON CONFLICT DO NOTHING`, so a repeat is a
    /// no-op either way.
    async fn write(&self, conn: &mut PgConnection, rows: &[MetricRow]) -> Result<u64, sqlx::Error> {
        let containers: Vec<super::containers::ContainerRow<'_>> = rows
            .iter()
            .flat_map(|r| {
                super::containers::rows_of(r.server_id.as_str(), r.ts, r.containers.as_deref())
            })
            .collect();
        super::containers::write(conn, &containers).await?;
        sqlx::query("SAVEPOINT new_rows")
            .execute(&mut *conn)
            .await?;
        match copy_new(conn, rows).await {
            Ok(inserted) => {
                sqlx::query("RELEASE SAVEPOINT new_rows")
                    .execute(&mut *conn)
                    .await?;
                Ok(inserted)
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
                 disk_read, disk_write, uptime_secs, processes, cpu_cores, mounts, interfaces,
                 temperatures)
             SELECT s, t, c, m, d, n, rx, tx, l1, l5, l15, mu, mt, su, st, dr, dw, up, p,
                    cc::real[], mo::json, ifs::json, te::json
             FROM UNNEST($1::text[], $2::timestamptz[], $3::real[], $4::real[], $5::real[],
                         $6::bigint[], $7::bigint[], $8::bigint[], $9::real[], $10::real[],
                         $11::real[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[],
                         $16::bigint[], $17::bigint[], $18::bigint[], $19::int[], $20::text[],
                         $21::text[], $22::text[], $23::text[])
                  AS u(s, t, c, m, d, n, rx, tx, l1, l5, l15, mu, mt, su, st, dr, dw, up, p, cc, mo, ifs,
                       te)",
            $tail
        )
    };
}

const INSERT_IDEMPOTENT: &str = insert_metrics!(" ON CONFLICT (server_id, ts) DO NOTHING");

const COPY_NEW: &str = "COPY metrics (server_id, ts, cpu, memory, disk, network, network_rx,
    network_tx, load1, load5, load15, memory_used, memory_total, swap_used, swap_total, disk_read,
    disk_write, uptime_secs, processes, cpu_cores, mounts, interfaces, temperatures)
    FROM STDIN (FORMAT binary)";

/// The batch through binary `COPY … FROM STDIN`: the cheapest way into PostgreSQL, for it and
/// for us. A row that exists makes it fail with a unique violation, as a plain `INSERT` would.
async fn copy_new(conn: &mut PgConnection, rows: &[MetricRow]) -> Result<u64, sqlx::Error> {
    let payload = copy_payload(rows);
    let mut copy = conn.copy_in_raw(COPY_NEW).await?;
    if let Err(err) = copy.send(payload).await {
        let _ = copy.abort("the batch could not be sent").await;
        return Err(err);
    }
    copy.finish().await
}

/// The rows as binary `COPY` tuples, columns in `COPY_NEW`'s order.
fn copy_payload(rows: &[MetricRow]) -> Vec<u8> {
    let mut copy = BinaryCopy::with_capacity(rows.len() * 400);
    for r in rows {
        copy.row(23);
        copy.text(&r.server_id);
        copy.timestamptz(r.ts);
        copy.f32(r.cpu);
        copy.f32(r.memory);
        copy.f32(r.disk);
        copy.i64(r.network);
        for value in [r.network_rx, r.network_tx] {
            copy.opt(value, BinaryCopy::i64);
        }
        for value in [r.load1, r.load5, r.load15] {
            copy.opt(value, BinaryCopy::f32);
        }
        for value in [
            r.memory_used,
            r.memory_total,
            r.swap_used,
            r.swap_total,
            r.disk_read,
            r.disk_write,
            r.uptime_secs,
        ] {
            copy.opt(value, BinaryCopy::i64);
        }
        copy.opt(r.processes, BinaryCopy::i32);
        if r.cpu_cores.is_empty() {
            copy.null();
        } else {
            copy.f32_array(&r.cpu_cores);
        }
        copy.opt(r.mounts.as_deref(), BinaryCopy::text);
        copy.opt(r.interfaces.as_deref(), BinaryCopy::text);
        copy.opt(r.temperatures.as_deref(), BinaryCopy::text);
    }
    copy.finish()
}

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
        .bind(column(rows, |r| {
            (!r.cpu_cores.is_empty()).then(|| array_literal(&r.cpu_cores))
        }))
        .bind(column(rows, |r| r.mounts.as_deref()))
        .bind(column(rows, |r| r.interfaces.as_deref()))
        .bind(column(rows, |r| r.temperatures.as_deref()))
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
