//! Removing what a deleted server left: its samples and container lists, its TimescaleDB
//! aggregate buckets, its alerts and alert transitions, and its logs.
//!
//! `DELETE /servers/{id}` only writes a tombstone (`server_tombstones`), so the request is quick
//! whatever the server holds; this loop then deletes the data from before the deletion in
//! statements of at most `retention.delete_batch` rows, so no statement holds locks for long. It
//! runs on plain PostgreSQL and TimescaleDB alike (deletes reach compressed chunks, and the
//! aggregates' materialized buckets are deleted too, or the hourly history would outlive the
//! samples). Passes go on for `retention.purge_settle_secs` after the deletion, because messages
//! about the server may still arrive (the alerter resolves the deleted server's alerts): only a
//! pass that finds nothing after that time marks the tombstone purged. Samples dated after the
//! deletion are kept: they come from a collector still reporting under that id, which makes it
//! reappear as a discovered server. One replica purges at a time (an advisory lock).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, PgConnection, PgPool};

use flick_shared::shutdown::CancellationToken;

use crate::config::RetentionSettings;
use crate::exclusive::{Exclusive, in_batches};

/// Advisory lock key of the purge ("purge" in ASCII).
const PURGE_LOCK: i64 = 0x70_75_72_67_65;

/// What one pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PurgeReport {
    pub servers: u64,
    pub rows: u64,
    /// Another replica held the lock.
    pub skipped: bool,
}

/// Purges every `purge_interval_secs` until `shutdown`.
pub async fn run(
    pool: PgPool,
    settings: RetentionSettings,
    timescale: bool,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(Duration::from_secs(settings.purge_interval_secs));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => match purge(&pool, &settings, timescale, &shutdown).await {
                Ok(report) if report.rows > 0 => {
                    tracing::info!(servers = report.servers, rows = report.rows, "Deleted servers' data removed");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "Purging deleted servers failed; the next pass retries"),
            }
        }
    }
}

/// One pass over the pending tombstones, if no other replica is purging.
#[tracing::instrument(skip_all, err)]
pub async fn purge(
    pool: &PgPool,
    settings: &RetentionSettings,
    timescale: bool,
    shutdown: &CancellationToken,
) -> Result<PurgeReport, sqlx::Error> {
    let Some(mut lock) = Exclusive::try_take(pool, PURGE_LOCK).await? else {
        return Ok(PurgeReport {
            skipped: true,
            ..PurgeReport::default()
        });
    };
    let result = purge_locked(lock.conn(), settings, timescale, shutdown).await;
    lock.release().await?;
    result
}

async fn purge_locked(
    conn: &mut PgConnection,
    settings: &RetentionSettings,
    timescale: bool,
    shutdown: &CancellationToken,
) -> Result<PurgeReport, sqlx::Error> {
    let pending: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT server_id, deleted_at FROM server_tombstones WHERE purged_at IS NULL
         ORDER BY deleted_at",
    )
    .fetch_all(&mut *conn)
    .await?;
    let aggregates = if timescale && !pending.is_empty() {
        materialized_aggregates(conn).await?
    } else {
        Vec::new()
    };
    let mut report = PurgeReport::default();
    for (server, deleted_at) in pending {
        if shutdown.is_cancelled() {
            break;
        }
        let rows = purge_server(
            conn,
            &server,
            deleted_at,
            settings.delete_batch,
            &aggregates,
        )
        .await?;
        report.servers += 1;
        report.rows += rows;
        let settled = Utc::now() - deleted_at
            > chrono::Duration::seconds(i64::try_from(settings.purge_settle_secs).unwrap_or(120));
        if rows == 0 && settled {
            sqlx::query(
                "UPDATE server_tombstones SET purged_at = now()
                 WHERE server_id = $1 AND deleted_at = $2",
            )
            .bind(&server)
            .bind(deleted_at)
            .execute(&mut *conn)
            .await?;
            tracing::info!(server, "Deleted server purged");
        }
    }
    Ok(report)
}

/// The batched deletes of one server's data from before `deleted_at`; rows removed.
async fn purge_server(
    conn: &mut PgConnection,
    server: &str,
    deleted_at: DateTime<Utc>,
    batch: i64,
    aggregates: &[String],
) -> Result<u64, sqlx::Error> {
    // The `batch`-th oldest row bounds each statement: an index range on (server_id, ts) that
    // works on a plain table and on every chunk of a hypertable alike.
    let statements: [&'static str; 6] = [
        // Several containers share a time: a statement may take a list more than `batch` rows.
        "DELETE FROM containers WHERE server_id = $1 AND ts <= $2 AND ts <= COALESCE(
             (SELECT ts FROM containers WHERE server_id = $1 AND ts <= $2
              ORDER BY ts OFFSET $3 - 1 LIMIT 1), $2)",
        "DELETE FROM process_lists WHERE server_id = $1 AND ts <= $2 AND ts <= COALESCE(
             (SELECT ts FROM process_lists WHERE server_id = $1 AND ts <= $2
              ORDER BY ts OFFSET $3 - 1 LIMIT 1), $2)",
        "DELETE FROM metrics WHERE server_id = $1 AND ts <= $2 AND ts <= COALESCE(
             (SELECT ts FROM metrics WHERE server_id = $1 AND ts <= $2
              ORDER BY ts OFFSET $3 - 1 LIMIT 1), $2)",
        "DELETE FROM logs WHERE id = ANY(ARRAY(
             SELECT id FROM logs WHERE server_id = $1 AND stored_at <= $2 LIMIT $3))",
        // An alert that began before the deletion goes whole, its late resolution included.
        "DELETE FROM alert_events WHERE id = ANY(ARRAY(
             SELECT id FROM alert_events WHERE server_id = $1 AND started_at <= $2 LIMIT $3))",
        "DELETE FROM alerts WHERE id = ANY(ARRAY(
             SELECT id FROM alerts WHERE server_id = $1 AND started_at <= $2 LIMIT $3))",
    ];
    let mut total = 0;
    for statement in statements {
        total += in_batches_of(conn, statement, server, deleted_at, batch).await?;
    }
    for table in aggregates {
        // A materialized hypertable of an aggregate: its name comes from TimescaleDB's catalog.
        let statement = format!(
            "DELETE FROM {table} WHERE server_id = $1 AND bucket <= $2 AND bucket <= COALESCE(
                 (SELECT bucket FROM {table} WHERE server_id = $1 AND bucket <= $2
                  ORDER BY bucket OFFSET $3 - 1 LIMIT 1), $2)"
        );
        total += in_batches_of(conn, &statement, server, deleted_at, batch).await?;
    }
    Ok(total)
}

/// Runs `statement` (`$1` server, `$2` deletion time, `$3` batch size) in batches. The
/// statements are this module's own text and TimescaleDB's table names.
async fn in_batches_of(
    conn: &mut PgConnection,
    statement: &str,
    server: &str,
    deleted_at: DateTime<Utc>,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    in_batches(conn, batch, || {
        sqlx::query(AssertSqlSafe(statement))
            .bind(server)
            .bind(deleted_at)
            .bind(batch)
    })
    .await
}

/// `schema.table` of the materialized hypertables behind `metrics_1m` and `metrics_1h`, quoted.
async fn materialized_aggregates(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)
         FROM timescaledb_information.continuous_aggregates
         WHERE view_name IN ('metrics_1m', 'metrics_1h')",
    )
    .fetch_all(&mut *conn)
    .await
}
