//! FLick's alert evaluator: reads every sample through its own durable consumer, evaluates the
//! thresholds of each server (CPU, memory, disk, offline) as a state machine with a `for`
//! duration and hysteresis, and publishes exactly one `AlertEvent` per transition on
//! `<prefix>.alerts.<serverId>`, notifying webhooks.
//!
//! Replicas may run side by side for availability: one holds the lease and evaluates, the
//! others stand by and take over within a second or two of its death (see [`leader`]).

pub mod config;
mod culprits;
pub mod defaults;
pub mod leader;
mod lease;
pub mod notify;
mod publish;
pub mod store;
mod watch;

/// The evaluator lives in the shared crate (the gateway's threshold preview replays the same
/// code); this path is kept for the alerter's own modules.
pub mod evaluate {
    pub use flick_shared::alerting::evaluate::*;
    pub use flick_shared::alerting::threshold;
}

/// The rule model lives in the shared crate; this path is kept for the alerter's own modules.
pub use flick_shared::alerting::rules;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use sqlx::postgres::PgConnectOptions;

use flick_shared::crypto::KeyRing;
use flick_shared::deadletter::DeadLetters;
use flick_shared::shutdown::CancellationToken;
use flick_shared::streams::ensure_streams;
use flick_shared::subjects::StreamKind;
use flick_shared::{Subjects, db, nats, ops};

use config::AlerterSettings;
pub use config::Config;
use defaults::Record;
use notify::Notifier;
use rules::RuleSet;
use store::Store;

/// The dead-letter subject's service name and the NATS role.
pub const SERVICE: &str = "alerter";

/// What the leader's tasks share.
#[derive(Debug, Clone)]
pub struct Context {
    client: async_nats::Client,
    js: jetstream::Context,
    subjects: Subjects,
    store: Store,
    settings: AlerterSettings,
    defaults: RuleSet,
    keys: Option<KeyRing>,
    notifier: Notifier,
    /// Rung after each commit that recorded transitions, so the notifier need not poll.
    notify_wake: Arc<tokio::sync::Notify>,
    deadletters: Arc<DeadLetters>,
    leader_name: String,
}

/// Runs the alerter until `shutdown`: standing by, or leading when it holds the lease.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Webhooks may be https: rustls with the ring provider async-nats already uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let shutdown = shutdown.child_token();
    let subjects = config.nats.subjects();
    let client = nats::connect(&config.nats, SERVICE).await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(config.nats.request_timeout_ms))
        .build(client.clone());
    ensure_streams(
        &js,
        &subjects,
        &config.streams,
        &[StreamKind::Metrics, StreamKind::Alerts],
    )
    .await?;
    let pool = db::connect_and_migrate(&config.database, "flick-alerter").await?;
    let keys = config.encryption.key_ring()?;
    if keys.is_none() {
        tracing::info!(
            "No encryption key (ENCRYPTION_KEY): notification channels with secrets are skipped"
        );
    }
    let settings = config.alerter.clone();
    let notifier = Notifier::new(
        Duration::from_millis(settings.notify_timeout_ms),
        Duration::from_secs(settings.notify_give_up_secs),
        config.notify.destinations()?,
    )
    .context("build the webhook client")?;
    let ops = ops::spawn(
        &settings.ops(),
        ops::nats_and_database(client.clone(), pool.clone()),
        shutdown.clone(),
    )
    .await?;
    metrics::gauge!("flick_alerter_leader").set(0.0);

    let stream = subjects.stream_name(StreamKind::Metrics);
    let db_options: PgConnectOptions = config
        .database
        .url
        .expose()
        .parse()
        .context("database.url is not a valid PostgreSQL URL")?;
    let ctx = Context {
        client: client.clone(),
        js,
        store: Store::new(pool.clone(), stream.clone()),
        defaults: settings.default_rules(),
        keys,
        notifier,
        notify_wake: Arc::new(tokio::sync::Notify::new()),
        deadletters: Arc::new(DeadLetters::new(client.clone(), &subjects, SERVICE)),
        leader_name: format!("{}:{}", nats::sysname(), std::process::id()),
        subjects,
        settings: settings.clone(),
    };
    defaults::record_or_warn(&pool, &ctx.defaults, &ctx.leader_name, Record::IfAbsent).await;
    tracing::info!(replica = %ctx.leader_name, "Alerter started");
    let poll = Duration::from_millis(settings.lease_poll_ms);
    while let Some(lease) = lease::acquire(&db_options, &stream, poll, &shutdown).await {
        // The leader's defaults are the ones applied: they replace whatever a standby recorded.
        defaults::record_or_warn(&pool, &ctx.defaults, &ctx.leader_name, Record::Overwrite).await;
        match leader::lead(&ctx, lease, &shutdown).await {
            Ok(end) => tracing::info!(?end, "Leadership term ended"),
            Err(err) => {
                tracing::error!(error = %flick_shared::telemetry::one_line(&err), "Leadership term failed; standing by");
                tokio::time::sleep(poll).await;
            }
        }
        if shutdown.is_cancelled() {
            break;
        }
    }
    if let Some((_, task)) = ops {
        shutdown.cancel();
        let _ = task.await;
    }
    let _ = client.flush().await;
    pool.close().await;
    tracing::info!("Alerter stopped");
    Ok(())
}
