//! Keeping stored data within its retention periods.
//!
//! With TimescaleDB, retention and compression are TimescaleDB policies on `metrics` and its
//! aggregates, (re)applied at start-up from `[retention]`. The periodic sweep also drops expired
//! chunks and runs those policies' jobs itself, because on some PostgreSQL builds TimescaleDB's
//! background scheduler cannot run jobs: expired data must go whatever the scheduler does.
//! On plain PostgreSQL the sweep deletes expired rows in small batches, so no statement holds
//! locks for long. Logs and alerts are swept the same way on both. Only one replica sweeps at a
//! time (an advisory lock); the others skip that round.

use std::time::Duration;

use sqlx::{AssertSqlSafe, PgConnection, PgPool};

use flick_shared::shutdown::CancellationToken;

use crate::config::RetentionSettings;
use crate::exclusive::{Exclusive, in_batches};

/// Advisory lock key of the sweep ("flick" in ASCII).
const SWEEP_LOCK: i64 = 0x66_6c_69_63_6b;

/// Advisory lock key of applying the TimescaleDB policies ("flickp").
const POLICY_LOCK: i64 = 0x66_6c_69_63_6b_70;

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub metrics: u64,
    pub logs: u64,
    pub alert_events: u64,
    pub alerts: u64,
    pub process_lists: u64,
    pub containers: u64,
    /// Another replica held the lock: nothing was done.
    pub skipped: bool,
}

fn days(n: u32) -> String {
    format!("{n} days")
}

/// Applies the TimescaleDB retention and compression policies from `settings`, replacing any
/// policy whose interval differs (TimescaleDB keeps the old one if simply re-added). In one
/// transaction under an advisory lock: replicas starting together would otherwise both find a
/// policy missing and the second add fail ("policy already exists"), stopping its start.
#[tracing::instrument(skip_all, err)]
pub async fn apply_timescale_policies(
    pool: &PgPool,
    settings: &RetentionSettings,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(POLICY_LOCK)
        .execute(&mut *tx)
        .await?;
    let policies: [(&str, &str, String); 4] = [
        ("metrics", "policy_retention", days(settings.metrics_days)),
        (
            "metrics",
            "policy_compression",
            days(settings.compress_after_days),
        ),
        (
            "metrics_1m",
            "policy_retention",
            days(settings.minute_aggregates_days),
        ),
        (
            "metrics_1h",
            "policy_retention",
            days(settings.hour_aggregates_days),
        ),
    ];
    for (relation, policy, interval) in policies {
        let key = if policy == "policy_retention" {
            "drop_after"
        } else {
            "compress_after"
        };
        let current: Option<bool> = sqlx::query_scalar(
            "SELECT (config->>$3)::interval = $4::interval
             FROM timescaledb_information.jobs
             WHERE proc_name = $2 AND (hypertable_name = $1 OR hypertable_name IN
                 (SELECT materialization_hypertable_name
                  FROM timescaledb_information.continuous_aggregates WHERE view_name = $1))
             LIMIT 1",
        )
        .bind(relation)
        .bind(policy)
        .bind(key)
        .bind(&interval)
        .fetch_optional(&mut *tx)
        .await?
        .flatten();
        if current == Some(true) {
            continue;
        }
        let (remove, add) = match policy {
            "policy_retention" => (
                "SELECT remove_retention_policy($1::regclass, if_exists => true)",
                "SELECT add_retention_policy($1::regclass, drop_after => $2::interval)",
            ),
            _ => (
                "SELECT remove_compression_policy($1::regclass, if_exists => true)",
                "SELECT add_compression_policy($1::regclass, compress_after => $2::interval)",
            ),
        };
        sqlx::query(remove).bind(relation).execute(&mut *tx).await?;
        sqlx::query(add)
            .bind(relation)
            .bind(&interval)
            .execute(&mut *tx)
            .await?;
        tracing::info!(relation, policy, interval, "TimescaleDB policy applied");
    }
    tx.commit().await
}

/// Sweeps every `sweep_interval_secs` until `shutdown`.
pub async fn run(
    pool: PgPool,
    settings: RetentionSettings,
    timescale: bool,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(Duration::from_secs(settings.sweep_interval_secs));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {
                match sweep(&pool, &settings, timescale).await {
                    Ok(report) if !report.skipped => tracing::debug!(?report, "Retention sweep done"),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "Retention sweep failed; next round retries"),
                }
            }
        }
    }
}

/// One sweep, if no other replica is sweeping.
#[tracing::instrument(skip_all, err)]
pub async fn sweep(
    pool: &PgPool,
    settings: &RetentionSettings,
    timescale: bool,
) -> Result<SweepReport, sqlx::Error> {
    let Some(mut lock) = Exclusive::try_take(pool, SWEEP_LOCK).await? else {
        return Ok(SweepReport {
            skipped: true,
            ..SweepReport::default()
        });
    };
    let result = sweep_locked(lock.conn(), settings, timescale).await;
    lock.release().await?;
    result
}

async fn sweep_locked(
    conn: &mut PgConnection,
    settings: &RetentionSettings,
    timescale: bool,
) -> Result<SweepReport, sqlx::Error> {
    let batch = settings.delete_batch;
    let mut report = SweepReport::default();
    if timescale {
        sqlx::query("SELECT drop_chunks('metrics', older_than => $1::interval)")
            .bind(days(settings.metrics_days))
            .execute(&mut *conn)
            .await?;
        run_timescale_jobs(conn).await?;
        refresh_older_buckets(conn, settings).await;
    } else {
        report.metrics = delete_older(
            conn,
            "DELETE FROM metrics WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM metrics WHERE ts < now() - $1::interval LIMIT $2))",
            &days(settings.metrics_days),
            batch,
        )
        .await?;
    }
    report.logs = delete_older(
        conn,
        "DELETE FROM logs WHERE ctid = ANY(ARRAY(
             SELECT ctid FROM logs WHERE ts < now() - $1::interval LIMIT $2))",
        &days(settings.logs_days),
        batch,
    )
    .await?;
    report.process_lists = delete_older(
        conn,
        "DELETE FROM process_lists WHERE ctid = ANY(ARRAY(
             SELECT ctid FROM process_lists WHERE ts < now() - $1::interval LIMIT $2))",
        &days(settings.processes_days),
        batch,
    )
    .await?;
    // Container lists came with samples: they are kept as long as the samples.
    report.containers = delete_older(
        conn,
        "DELETE FROM containers WHERE ctid = ANY(ARRAY(
             SELECT ctid FROM containers WHERE ts < now() - $1::interval LIMIT $2))",
        &days(settings.metrics_days),
        batch,
    )
    .await?;
    report.alert_events = delete_older(
        conn,
        "DELETE FROM alert_events WHERE ctid = ANY(ARRAY(
             SELECT e.ctid FROM alert_events e JOIN alerts a ON a.id = e.alert_id
             WHERE a.state = 'resolved' AND a.resolved_at < now() - $1::interval LIMIT $2))",
        &days(settings.alerts_days),
        batch,
    )
    .await?;
    report.alerts = delete_older(
        conn,
        "DELETE FROM alerts WHERE ctid = ANY(ARRAY(
             SELECT ctid FROM alerts
             WHERE state = 'resolved' AND resolved_at < now() - $1::interval LIMIT $2))",
        &days(settings.alerts_days),
        batch,
    )
    .await?;
    Ok(report)
}

/// Runs `statement` (`$1` the age, `$2` the batch size) in batches.
async fn delete_older(
    conn: &mut PgConnection,
    statement: &'static str,
    older_than: &str,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    in_batches(conn, batch, || {
        sqlx::query(statement).bind(older_than).bind(batch)
    })
    .await
}

/// Runs the policy jobs of `metrics` and its aggregates now (refresh, compression, retention).
/// The window each aggregate's refresh policy covers (`20261125000002_timescaledb.sql`), as hours
/// before now: buckets older than its start are never materialized by the policy.
const POLICY_WINDOWS: [(&str, u32); 2] = [("metrics_1m", 3), ("metrics_1h", 3 * 24)];

/// Materializes the aggregates' buckets older than their refresh policies' windows, over the
/// whole time their source rows are kept (less a day, since whole chunks are dropped).
///
/// With real-time aggregation a bucket the policy never materialized is shown from the raw
/// rows only while it lies after the aggregate's watermark; once the policy has run, an older
/// bucket that was never materialized is simply absent. That is every bucket of a history
/// migrated into the hypertable and of samples that arrived hours late (a collector's outage
/// buffer): their rows are stored, but the long-range history (read from the aggregates)
/// showed nothing for them. A refresh over a window without invalidations reads only
/// TimescaleDB's invalidation log, so doing this on every sweep costs little once caught up.
async fn refresh_older_buckets(conn: &mut PgConnection, settings: &RetentionSettings) {
    // A bucket of `metrics_1m` is made from `metrics`, one of `metrics_1h` from `metrics_1m`:
    // never refresh where the source is gone (the refresh would empty the bucket) or where
    // the aggregate's own retention drops it again.
    let kept_days = [
        settings.metrics_days.min(settings.minute_aggregates_days),
        settings
            .minute_aggregates_days
            .min(settings.hour_aggregates_days),
    ];
    for ((view, policy_hours), days) in POLICY_WINDOWS.into_iter().zip(kept_days) {
        let from_hours = days.saturating_sub(1) * 24;
        if from_hours <= policy_hours + 1 {
            continue;
        }
        // The simple query protocol: a refresh may not run inside a transaction block.
        let call = sqlx::raw_sql(AssertSqlSafe(format!(
            "CALL refresh_continuous_aggregate('{view}', now() - interval '{from_hours} hours', \
             now() - interval '{policy_hours} hours')"
        )));
        if let Err(err) = call.execute(&mut *conn).await {
            tracing::warn!(view, error = %err, "Cannot refresh older aggregate buckets; the next sweep retries");
        }
    }
}

async fn run_timescale_jobs(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let jobs: Vec<i32> = sqlx::query_scalar(
        "SELECT job_id FROM timescaledb_information.jobs
         WHERE hypertable_name IN ('metrics', 'metrics_1m', 'metrics_1h')
            OR hypertable_name IN (SELECT materialization_hypertable_name
                                   FROM timescaledb_information.continuous_aggregates
                                   WHERE view_name IN ('metrics_1m', 'metrics_1h'))
         ORDER BY job_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for job in jobs {
        // The simple query protocol: a job may commit, which a prepared CALL may not.
        let call = sqlx::raw_sql(AssertSqlSafe(format!("CALL run_job({job})")));
        if let Err(err) = call.execute(&mut *conn).await {
            tracing::warn!(job, error = %err, "A TimescaleDB job failed; the next sweep retries");
        }
    }
    Ok(())
}
