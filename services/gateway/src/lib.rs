//! FLick's gateway: the REST API, the live WebSocket and the dashboard.
//!
//! This first version connects to NATS and PostgreSQL, answers `/healthz`, and stops cleanly;
//! the API comes with the gateway's own issues.

pub mod config;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

use flick_shared::shutdown::CancellationToken;
use flick_shared::streams::ensure_streams;
use flick_shared::subjects::StreamKind;
use flick_shared::{db, nats};

pub use config::Config;

/// Binds the configured address, then serves until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let address = config
        .gateway
        .listen_address()
        .context("gateway.host and gateway.port do not form an address")?;
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    serve(config, listener, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0 and read the port back).
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let client = nats::connect(&config.nats, "gateway").await?;
    let js = async_nats::jetstream::new(client.clone());
    ensure_streams(
        &js,
        &config.nats.subjects(),
        &config.streams,
        &[StreamKind::Logs],
    )
    .await?;
    let pool = db::connect(&config.database, "flick-gateway").await?;

    let app = Router::new().route("/healthz", get(|| async { "ok" }));
    tracing::info!(address = %listener.local_addr()?, "Gateway listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serve HTTP")?;
    pool.close().await;
    client.drain().await.context("drain the NATS connection")?;
    tracing::info!("Gateway stopped");
    Ok(())
}
