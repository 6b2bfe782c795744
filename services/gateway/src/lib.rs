//! FLick's gateway: the REST API (JWT auth, servers, metric history, alerts, logs), the live
//! WebSocket, and the operations endpoints, on one port.

pub mod api;
mod audit;
pub mod auth;
pub mod config;
pub mod enrollment;
pub mod error;
mod heavy;
mod http;
mod limits;
pub mod live;
pub mod state;
pub mod web;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use flick_shared::shutdown::CancellationToken;
use flick_shared::streams::ensure_streams;
use flick_shared::subjects::StreamKind;
use flick_shared::{db, nats, ops};

pub use config::Config;
use state::AppState;

/// The NATS role and service name.
pub const SERVICE: &str = "gateway";

static OPENAPI: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();

/// The OpenAPI document of every route the gateway serves.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    OPENAPI.get_or_init(|| api::routes().1).clone()
}

/// The application: every route with its layers (tests drive it directly).
pub fn app(state: AppState) -> Router {
    let (routes, document) = api::routes();
    let _ = OPENAPI.set(document);
    let settings = state.settings.clone();
    let web_dir = web::resolve_dir(settings.web_dir.as_deref());
    let mut app = routes
        // Not an API route: the dashboard's files and client-side routes (the API's JSON 404
        // for `/api/…` and for anything the dashboard does not serve).
        .fallback_service(web::service(web_dir))
        .method_not_allowed_fallback(http::method_not_allowed)
        // Bodies are only read through extractors, which this limit bounds (and `ApiJson` turns
        // into a JSON 413).
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .layer(middleware::from_fn_with_state(
            Duration::from_millis(settings.request_timeout_ms),
            http::time_limit,
        ))
        .layer(middleware::from_fn(http::record_metrics))
        .with_state(state);
    if let Some(cors) = http::cors(&settings) {
        app = app.layer(cors);
    }
    app.layer(middleware::from_fn(http::security_headers))
        .layer(TraceLayer::new_for_http())
}

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

/// Connects to NATS and PostgreSQL and builds the shared state.
pub async fn connect(config: &Config, shutdown: CancellationToken) -> anyhow::Result<AppState> {
    let secret = config
        .gateway
        .jwt_secret
        .as_ref()
        .filter(|s| s.expose().len() >= config::MIN_JWT_SECRET_BYTES)
        .context("gateway.jwt_secret (JWT_SECRET) must be at least 32 bytes")?;
    let keys = config
        .encryption
        .key_ring()?
        .context("encryption.key (ENCRYPTION_KEY) is required by the gateway")?;
    let client = nats::connect(&config.nats, SERVICE).await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(config.nats.request_timeout_ms))
        .build(client.clone());
    let subjects = config.nats.subjects();
    ensure_streams(&js, &subjects, &config.streams, &[StreamKind::Logs]).await?;
    let settings = &config.gateway;
    let pool = db::migrate_then_connect(
        &config.database,
        "flick-gateway",
        &[
            (
                "statement_timeout",
                settings.statement_timeout_ms.to_string(),
            ),
            // A query whose request went away (its connection closed) stops within a second.
            ("client_connection_check_interval", "1000".to_owned()),
        ],
    )
    .await?;
    let sealed = api::seal_stored_urls(&pool, &keys).await?;
    if sealed > 0 {
        tracing::info!(
            channels = sealed,
            "Sealed the credential-bearing URLs of stored notification channels"
        );
    }
    let timescale = db::has_timescaledb(&pool)
        .await
        .context("detect TimescaleDB")?;
    ops::prometheus();
    let hub = live::Hub::start(client.clone(), subjects.clone(), shutdown.clone()).await?;
    let registrar = enrollment::Registrar::new(&config.enrollment, &config.nats, pool.clone())?;
    Ok(AppState {
        hub,
        shutdown,
        pool,
        nats: client,
        js,
        subjects,
        jwt: Arc::new(auth::tokens::JwtKeys::new(
            secret.expose().as_bytes(),
            config.gateway.access_token_ttl_secs,
        )),
        keys: Arc::new(keys),
        settings: Arc::new(config.gateway.clone()),
        limits: Arc::new(limits::Limits::new(settings)),
        access: Arc::new(auth::access::Access::new(Duration::from_millis(
            settings.access_cache_ms,
        ))),
        hasher: Arc::new(auth::password::Hasher::new(
            settings.password_hash_workers,
            Duration::from_millis(settings.password_hash_queue_ms),
        )),
        registrar,
        downloads: {
            let dir = settings.downloads_dir.clone();
            tokio::task::spawn_blocking(move || api::install::Downloads::load(dir.as_deref()))
                .await?
                .context("gateway.downloads_dir")?
        },
        enrollment_ttl_secs: config.enrollment.token_ttl_secs,
        destinations: Arc::new(config.notify.destinations()?),
        history: Arc::new(heavy::Gate::new(
            settings.history_per_user,
            settings.history_concurrency,
            config.database.max_connections,
        )),
        timescale,
    })
}

/// Serves on an already bound listener (tests bind port 0 and read the port back).
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = connect(&config, shutdown.clone()).await?;
    let ops = ops::spawn(
        &config.gateway.ops(),
        ops::nats_and_database(state.nats.clone(), state.pool.clone()),
        shutdown.clone(),
    )
    .await?;
    if let Some((address, _)) = &ops {
        tracing::info!(%address, "Operations endpoints listening");
    }
    let registrar_task = state
        .registrar
        .clone()
        .map(|registrar| tokio::spawn(registrar.run(shutdown.clone())));
    let listener_task = tokio::spawn(auth::access::listen(
        state.pool.clone(),
        state.access.clone(),
        state.hub.clone(),
        shutdown.clone(),
    ));
    let sweeper = tokio::spawn({
        let limits = state.limits.clone();
        let access = state.access.clone();
        let shutdown = shutdown.clone();
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            while !shutdown.is_cancelled() {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    _ = every.tick() => {
                        limits.sweep();
                        access.sweep();
                    }
                }
            }
        }
    });
    let pool = state.pool.clone();
    let client = state.nats.clone();
    tracing::info!(address = %listener.local_addr()?, "Gateway listening");
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned())
    .await
    .context("serve HTTP")?;
    sweeper.abort();
    listener_task.abort();
    if let Some(task) = registrar_task {
        task.abort();
    }
    if let Some((_, task)) = ops {
        let _ = task.await;
    }
    pool.close().await;
    client.drain().await.context("drain the NATS connection")?;
    tracing::info!("Gateway stopped");
    Ok(())
}
