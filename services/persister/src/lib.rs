//! FLick's writer: consumes the metrics, alerts and logs streams and stores them in PostgreSQL
//! (TimescaleDB when present), in idempotent batches, acknowledging JetStream only after commit.
//!
//! Any number of replicas can run: they share one durable consumer per stream, so each message
//! goes to one of them, and a message redelivered after a crash is written as a no-op.

pub mod config;
mod exclusive;
pub mod pipeline;
pub mod purge;
pub mod retention;
pub mod sinks;

use std::sync::Arc;

use anyhow::Context as _;
use async_nats::jetstream;

use flick_shared::deadletter::DeadLetters;
use flick_shared::shutdown::CancellationToken;
use flick_shared::streams::ensure_streams;
use flick_shared::subjects::StreamKind;
use flick_shared::tasks::TaskGroup;
use flick_shared::{db, nats, ops};

pub use config::Config;
use pipeline::Context;
use sinks::{AlertsSink, LogsSink, MetricsSink, ProcessesSink};

/// The dead-letter subject's service name: `<prefix>.deadletter.persister`.
pub const SERVICE: &str = "persister";

/// Runs the persister until `shutdown` is cancelled; then commits and acknowledges the batches
/// in hand and returns.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Our own token under the caller's: a pipeline that fails stops this persister only.
    let shutdown = shutdown.child_token();
    let subjects = config.nats.subjects();
    let client = nats::connect(&config.nats, SERVICE).await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(std::time::Duration::from_millis(
            config.nats.request_timeout_ms,
        ))
        .build(client.clone());
    ensure_streams(&js, &subjects, &config.streams, &StreamKind::ALL).await?;
    let pool = db::connect_and_migrate(&config.database, "flick-persister").await?;
    let timescale = db::has_timescaledb(&pool)
        .await
        .context("detect TimescaleDB")?;
    if timescale {
        retention::apply_timescale_policies(&pool, &config.retention)
            .await
            .context("apply the TimescaleDB policies")?;
    }
    tracing::info!(timescale, prefix = subjects.prefix(), "Persister started");

    let ops = ops::spawn(
        &config.persister.ops(),
        ops::nats_and_database(client.clone(), pool.clone()),
        shutdown.clone(),
    )
    .await?;
    let ctx = Context {
        client: client.clone(),
        js,
        pool: pool.clone(),
        subjects: subjects.clone(),
        settings: config.persister.clone(),
        deadletters: Arc::new(DeadLetters::new(client.clone(), &subjects, SERVICE)),
    };
    // Every task stops on `shutdown`; the first to fail (or end by itself) cancels it, and the
    // others commit the batches in hand before returning.
    let mut tasks = TaskGroup::new(shutdown.clone());
    tasks.spawn(
        "the metrics pipeline",
        pipeline::run(
            ctx.clone(),
            Arc::new(MetricsSink::new(subjects.clone())),
            shutdown.clone(),
        ),
    );
    tasks.spawn(
        "the alerts pipeline",
        pipeline::run(
            ctx.clone(),
            Arc::new(AlertsSink::new(subjects.clone())),
            shutdown.clone(),
        ),
    );
    tasks.spawn(
        "the logs pipeline",
        pipeline::run(
            ctx.clone(),
            Arc::new(LogsSink::new(subjects.clone())),
            shutdown.clone(),
        ),
    );
    tasks.spawn(
        "the processes pipeline",
        pipeline::run(
            ctx,
            Arc::new(ProcessesSink::new(subjects)),
            shutdown.clone(),
        ),
    );
    let (retention, purge) = (config.retention.clone(), config.retention);
    let (sweep_pool, purge_pool, stop) = (pool.clone(), pool.clone(), shutdown.clone());
    tasks.spawn("retention", async move {
        retention::run(sweep_pool, retention, timescale, stop).await;
        Ok(())
    });
    let stop = shutdown.clone();
    tasks.spawn("the purge of deleted servers", async move {
        purge::run(purge_pool, purge, timescale, stop).await;
        Ok(())
    });
    let outcome = tasks.join().await;
    shutdown.cancel();
    if let Some((_, task)) = ops {
        let _ = task.await;
    }
    // Acknowledgements are published asynchronously: make sure they leave before exiting.
    if let Err(err) = client.flush().await {
        tracing::warn!(error = %err, "Cannot flush the last acknowledgements");
    }
    pool.close().await;
    outcome?;
    tracing::info!("Persister stopped");
    Ok(())
}
