//! FLick's per-host agent: samples this host's metrics every collection interval and publishes
//! them to `<prefix>.metrics.<serverId>` through JetStream, buffering locally while NATS is
//! unreachable.
//!
//! `flick-collector simulate` (see [`simulate`]) publishes synthetic samples for many virtual
//! servers: the load generator of every benchmark, and a demo without real hosts.

pub mod config;
pub mod containers;
pub mod enroll;
pub mod heartbeat;
mod identity;
mod processes;
pub mod publisher;
mod sampler;
pub mod simulate;

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::time::{Instant, MissedTickBehavior};

use flick_shared::shutdown::CancellationToken;
use flick_shared::streams::ensure_streams;
use flick_shared::subjects::StreamKind;
use flick_shared::wire::{MetricSample, ServerId, ServerStatus, StatusState, WIRE_VERSION};
use flick_shared::{Subjects, nats};

pub use config::Config;
use publisher::{Outgoing, Publisher};
use sampler::Sampler;

/// What a collector run did, for its final log line and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectorReport {
    /// Samples taken.
    pub taken: u64,
    /// Samples JetStream acknowledged.
    pub delivered: u64,
    /// Samples still unacknowledged at exit.
    pub undelivered: u64,
    /// Samples dropped because the buffer was full during an outage.
    pub dropped: u64,
}

/// Runs the collector until `shutdown` is cancelled, then delivers what it can of its buffer
/// (for up to `collector.shutdown_flush_ms`) and announces the planned stop.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<CollectorReport> {
    let settings = &config.collector;
    let hostname = settings.hostname.clone().unwrap_or_else(nats::sysname);
    let (server_id, id_source) = identity::resolve(settings, &hostname);
    tracing::info!(server_id = %server_id, id_source, hostname, interval_ms = settings.interval_ms, "Collector starting");

    let subjects = config.nats.subjects();
    let (client, js) = connect_jetstream(&config).await?;
    ensure_metrics_stream(&config, &js).await?;
    publish_status(&client, &subjects, &server_id, StatusState::Starting).await;

    let mut sampler = Sampler::new(server_id.clone(), hostname, settings.host_root.clone())
        .context("start sampling")?;
    let mut publisher = Publisher::new(js, settings.buffer_capacity(), settings.max_in_flight);
    let interval = Duration::from_millis(settings.interval_ms);
    let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut taken = 0u64;
    // The newest container list, taken by the next sample (`None`: nothing new since).
    let (container_lists, mut new_containers) = tokio::sync::watch::channel(None);
    let containers = settings.docker_socket.clone().map(|socket| {
        tracing::info!(
            socket,
            interval_ms = settings.containers_interval_ms,
            "Reading containers from the engine"
        );
        tokio::spawn(containers::run(
            socket,
            Duration::from_millis(settings.containers_interval_ms),
            container_lists,
            shutdown.clone(),
        ))
    });
    let top_processes = (settings.processes_interval_ms > 0).then(|| {
        tokio::spawn(processes::run(
            client.clone(),
            subjects.clone(),
            server_id.clone(),
            Duration::from_millis(settings.processes_interval_ms),
            settings.top_processes,
            shutdown.clone(),
        ))
    });

    loop {
        publisher.pump().await;
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = ticker.tick() => {
                let span = tracing::debug_span!("sample", server_id = %server_id);
                let mut sample = span.in_scope(|| sampler.sample(now_millis()));
                if new_containers.has_changed().unwrap_or(false) {
                    sample.containers = new_containers.borrow_and_update().clone();
                }
                publisher.enqueue(outgoing(&subjects, &sample)?);
                taken += 1;
                if let Some(path) = &settings.heartbeat_path {
                    heartbeat::beat(path, sample.timestamp);
                }
            }
            () = publisher.progress() => {}
        }
    }

    if let Some(task) = top_processes {
        let _ = task.await;
    }
    if let Some(task) = containers {
        let _ = task.await;
    }
    let undelivered = publisher
        .flush(Duration::from_millis(settings.shutdown_flush_ms))
        .await;
    if undelivered > 0 {
        tracing::warn!(undelivered, "Stopping with samples NATS never acknowledged");
    }
    publish_status(
        &client,
        &subjects,
        sampler.server_id(),
        StatusState::Stopping,
    )
    .await;
    let report = CollectorReport {
        taken,
        delivered: publisher.delivered(),
        undelivered: undelivered as u64,
        dropped: publisher.dropped(),
    };
    tracing::info!(?report, "Collector stopped");
    Ok(report)
}

/// Connects as the `collector` role and returns the client with a JetStream context whose
/// acks time out with the configured request timeout.
/// Creates the metrics stream when the collector runs without a NATS identity (a development
/// NATS without auth). With one (`.creds`, user and password), streams are the services'
/// business: a collector's identity may not create or change them, and until the persister has
/// created it, samples wait in the buffer.
pub(crate) async fn ensure_metrics_stream(
    config: &Config,
    js: &jetstream::Context,
) -> anyhow::Result<()> {
    let authenticated = config.nats.creds_for("collector").is_some() || config.nats.user.is_some();
    if !authenticated {
        ensure_streams(
            js,
            &config.nats.subjects(),
            &config.streams,
            &[StreamKind::Metrics],
        )
        .await?;
    }
    Ok(())
}

async fn connect_jetstream(
    config: &Config,
) -> anyhow::Result<(async_nats::Client, jetstream::Context)> {
    let client = nats::connect(&config.nats, "collector").await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(config.nats.request_timeout_ms))
        .build(client.clone());
    Ok((client, js))
}

/// Now, truncated to the millisecond the wire format carries (so the `Nats-Msg-Id` and the
/// timestamp agree exactly).
pub fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// The message for one sample: its subject, its `Nats-Msg-Id`, its JSON.
pub fn outgoing(subjects: &Subjects, sample: &MetricSample) -> anyhow::Result<Outgoing> {
    Ok(Outgoing {
        subject: subjects.metrics(&sample.server_id),
        message_id: sample.message_id(),
        payload: Bytes::from(serde_json::to_vec(sample).context("serialise a sample")?),
    })
}

/// Announces a start or a planned stop on `<prefix>.status.<serverId>` (core NATS: it is a
/// hint for live consumers, not history). Failure is logged, never fatal.
async fn publish_status(
    client: &async_nats::Client,
    subjects: &Subjects,
    server_id: &ServerId,
    state: StatusState,
) {
    let status = ServerStatus {
        v: WIRE_VERSION,
        server_id: server_id.clone(),
        state,
        at: Some(now_millis()),
    };
    let sent = match serde_json::to_vec(&status) {
        Ok(payload) => client
            .publish(subjects.status(server_id), payload.into())
            .await
            .map_err(|err| err.to_string()),
        Err(err) => Err(err.to_string()),
    };
    let flushed = match sent {
        Ok(()) => tokio::time::timeout(Duration::from_secs(2), client.flush())
            .await
            .map_err(|_| "flush timed out".to_owned())
            .and_then(|flushed| flushed.map_err(|err| err.to_string())),
        Err(err) => Err(err),
    };
    if let Err(error) = flushed {
        tracing::warn!(%error, ?state, "Cannot publish collector status");
    }
}
