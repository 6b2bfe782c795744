//! The JetStream streams FLick stores its subjects in, created or brought up to date
//! idempotently by whichever service starts first.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::config::StreamSettings;
use crate::subjects::{StreamKind, Subjects};

#[derive(Debug, thiserror::Error)]
#[error("cannot create or update JetStream stream {stream}: {source}")]
pub struct StreamError {
    pub stream: String,
    #[source]
    pub source: jetstream::context::CreateStreamError,
}

/// The configuration of one stream: file storage, limits retention bounded by age and size
/// (oldest dropped first), and a duplicate window for `Nats-Msg-Id` de-duplication.
pub fn stream_config(
    subjects: &Subjects,
    limits: &StreamSettings,
    kind: StreamKind,
) -> stream::Config {
    let (max_age, max_bytes, description) = match kind {
        StreamKind::Metrics => (
            limits.metrics_max_age_secs,
            limits.metrics_max_bytes,
            "FLick metric samples, one per server per collection interval",
        ),
        StreamKind::Alerts => (
            limits.alerts_max_age_secs,
            limits.alerts_max_bytes,
            "FLick alert transitions (firing, resolved)",
        ),
        StreamKind::Logs => (
            limits.logs_max_age_secs,
            limits.logs_max_bytes,
            "FLick log entries",
        ),
    };
    stream::Config {
        name: subjects.stream_name(kind),
        description: Some(description.to_owned()),
        subjects: vec![subjects.stream_subject(kind)],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_age: Duration::from_secs(max_age),
        max_bytes,
        duplicate_window: Duration::from_secs(match kind {
            StreamKind::Alerts => limits.alerts_duplicate_window_secs,
            _ => limits.duplicate_window_secs,
        }),
        num_replicas: limits.replicas,
        ..Default::default()
    }
}

/// Creates each stream in `kinds`, or updates it when it exists with other limits.
///
/// Safe to call from every replica at once: creating an identical stream is a no-op on the
/// server, and a lost race is retried as an update.
#[tracing::instrument(skip_all, fields(prefix = subjects.prefix()))]
pub async fn ensure_streams(
    js: &jetstream::Context,
    subjects: &Subjects,
    limits: &StreamSettings,
    kinds: &[StreamKind],
) -> Result<(), StreamError> {
    for &kind in kinds {
        let config = stream_config(subjects, limits, kind);
        let name = config.name.clone();
        let mut attempt = js.create_or_update_stream(config.clone()).await;
        if attempt.is_err() {
            // Another replica may have created it between our update and create: try once more.
            attempt = js.create_or_update_stream(config).await;
        }
        attempt.map_err(|source| StreamError {
            stream: name.clone(),
            source,
        })?;
        tracing::debug!(stream = %name, "Stream ready");
    }
    Ok(())
}
