//! The operations listener of the back-end services: `/healthz` (the process is alive),
//! `/readyz` (its dependencies answer) and `/metrics` (Prometheus text format).
//!
//! Metrics are recorded through the `metrics` facade into one process-wide Prometheus
//! recorder, so several services run in one process (tests, the all-in-one runner) report into
//! the same page, each under its own `flick_<service>_` names.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::BoxFuture;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::OpsSettings;
use crate::shutdown::CancellationToken;

/// Answers whether the service can do its work now; `Err` says what is missing.
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Seconds buckets for latency histograms: 1 ms to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("Another metrics recorder is installed; /metrics will be empty");
        }
        handle
    })
}

/// Binds `settings.listen` (when set) and serves the operations endpoints until `shutdown`.
pub async fn spawn(
    settings: &OpsSettings,
    ready: ReadinessCheck,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<(SocketAddr, JoinHandle<()>)>> {
    let Some(address) = settings.address() else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address).await.map_err(|err| {
        anyhow::anyhow!("cannot listen on {address} for /healthz and /metrics: {err}")
    })?;
    let bound = listener.local_addr()?;
    prometheus();
    let app = router(ready);
    let task = tokio::spawn(async move {
        let upkeep = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                let mut every = tokio::time::interval(Duration::from_secs(5));
                while !shutdown.is_cancelled() {
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        _ = every.tick() => prometheus().run_upkeep(),
                    }
                }
            }
        });
        if let Err(err) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
        {
            tracing::error!(error = %err, "Operations listener failed");
        }
        upkeep.abort();
    });
    tracing::info!(address = %bound, "Serving /healthz, /readyz and /metrics");
    Ok(Some((bound, task)))
}

fn router(ready: ReadinessCheck) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_page))
        .with_state(ready)
}

async fn readyz(State(ready): State<ReadinessCheck>) -> impl IntoResponse {
    readiness(&ready).await
}

/// The answer of `/readyz`: 200 "ready", or 503 with the reason (a check over 3 s fails).
pub async fn readiness(ready: &ReadinessCheck) -> (StatusCode, String) {
    match tokio::time::timeout(Duration::from_secs(3), ready()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n".to_owned()),
        Ok(Err(reason)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: readiness check timed out\n".to_owned(),
        ),
    }
}

async fn metrics_page() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        prometheus().render(),
    )
}

/// The readiness of a service that needs NATS and PostgreSQL.
pub fn nats_and_database(client: async_nats::Client, pool: sqlx::PgPool) -> ReadinessCheck {
    Arc::new(move || {
        let client = client.clone();
        let pool = pool.clone();
        Box::pin(async move {
            if client.connection_state() != async_nats::connection::State::Connected {
                return Err("NATS is not connected".to_owned());
            }
            sqlx::query("SELECT 1")
                .execute(&pool)
                .await
                .map(|_| ())
                .map_err(|err| format!("PostgreSQL does not answer: {err}"))
        })
    })
}
