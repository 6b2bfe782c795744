//! FLick's writer: consumes the metrics, alerts and logs streams and stores them in PostgreSQL
//! (TimescaleDB when present).
//!
//! This first version connects, makes sure the streams exist, and stops cleanly; consuming and
//! storing come with the persister's own issue.

pub mod config;

use anyhow::Context as _;

use flick_shared::shutdown::CancellationToken;
use flick_shared::streams::ensure_streams;
use flick_shared::subjects::StreamKind;
use flick_shared::{db, nats};

pub use config::Config;

/// Runs the persister until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let client = nats::connect(&config.nats, "persister").await?;
    let js = async_nats::jetstream::new(client.clone());
    ensure_streams(
        &js,
        &config.nats.subjects(),
        &config.streams,
        &StreamKind::ALL,
    )
    .await?;
    let pool = db::connect(&config.database, "flick-persister").await?;
    tracing::info!("Persister started");
    shutdown.cancelled().await;
    pool.close().await;
    client.drain().await.context("drain the NATS connection")?;
    tracing::info!("Persister stopped");
    Ok(())
}
