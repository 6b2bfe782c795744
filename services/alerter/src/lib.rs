//! FLick's alert evaluator: reads samples through its own durable consumer, evaluates
//! thresholds and publishes alert transitions on `<prefix>.alerts.<serverId>`.
//!
//! This first version connects, makes sure the streams it uses exist, and stops cleanly;
//! evaluation comes with the alerter's own issue.

pub mod config;

use anyhow::Context as _;

use flick_shared::shutdown::CancellationToken;
use flick_shared::streams::ensure_streams;
use flick_shared::subjects::StreamKind;
use flick_shared::{db, nats};

pub use config::Config;

/// Runs the alerter until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let client = nats::connect(&config.nats, "alerter").await?;
    let js = async_nats::jetstream::new(client.clone());
    ensure_streams(
        &js,
        &config.nats.subjects(),
        &config.streams,
        &[StreamKind::Metrics, StreamKind::Alerts],
    )
    .await?;
    let pool = db::connect(&config.database, "flick-alerter").await?;
    tracing::info!("Alerter started");
    shutdown.cancelled().await;
    pool.close().await;
    client.drain().await.context("drain the NATS connection")?;
    tracing::info!("Alerter stopped");
    Ok(())
}
