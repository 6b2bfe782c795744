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
        StreamKind::Processes => (
            limits.processes_max_age_secs,
            limits.processes_max_bytes,
            "FLick top-process lists, one per server every few seconds",
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

/// How long creating a stream may keep failing in ways that pass: a NATS cluster electing its
/// meta leader, or forming a replicated stream's group on a loaded machine, answers late or
/// "temporarily unavailable" for seconds, and every service creates its streams at start-up.
const TRANSIENT_FOR: Duration = Duration::from_secs(30);

/// Whether a failed create or update is worth trying again: no answer in time, JetStream not
/// answering, or a cluster without a leader or with too few peers yet. Anything else (a refused
/// configuration, a permission) is the answer.
fn is_transient(err: &jetstream::context::CreateStreamError) -> bool {
    use jetstream::ErrorCode;
    use jetstream::context::CreateStreamErrorKind as Kind;
    match err.kind() {
        Kind::TimedOut | Kind::JetStreamUnavailable => true,
        Kind::JetStream(err) => [
            ErrorCode::CLUSTER_NOT_AVAILABLE,
            ErrorCode::CLUSTER_NOT_ACTIVE,
            ErrorCode::CLUSTER_NOT_LEADER,
            ErrorCode::CLUSTER_INCOMPLETE,
            ErrorCode::CLUSTER_NO_PEERS,
        ]
        .contains(&err.error_code()),
        _ => false,
    }
}

/// Creates each stream in `kinds`, or updates it when it exists with other limits.
///
/// Safe to call from every replica at once: creating an identical stream is a no-op on the
/// server, and a lost race is retried as an update. Transient failures (see `is_transient`) are
/// retried with backoff for up to 30 s: a request that timed out may have succeeded, and doing
/// it again is harmless.
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
        let deadline = tokio::time::Instant::now() + TRANSIENT_FOR;
        let mut backoff =
            crate::backoff::Backoff::new(Duration::from_millis(200), Duration::from_secs(2));
        let mut raced = false;
        loop {
            match js.create_or_update_stream(config.clone()).await {
                Ok(_) => break,
                Err(err) if is_transient(&err) && tokio::time::Instant::now() < deadline => {
                    tracing::debug!(stream = %name, error = %err, "Stream not ready yet; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                // Another replica may have created it between our update and create: once more.
                Err(_) if !raced => raced = true,
                Err(source) => {
                    return Err(StreamError {
                        stream: name.clone(),
                        source,
                    });
                }
            }
        }
        tracing::debug!(stream = %name, "Stream ready");
    }
    Ok(())
}

/// The newest process list `server` published, from the processes stream (`None` when it has
/// published none within the stream's retention, or the stored one does not decode, which is
/// logged). The alerter attaches it to firing events and the gateway shows it: both read the
/// stream, so neither keeps state that a restart would lose.
pub async fn newest_process_list(
    js: &jetstream::Context,
    subjects: &Subjects,
    server: &crate::wire::ServerId,
) -> Result<Option<crate::wire::ProcessList>, async_nats::Error> {
    use jetstream::stream::LastRawMessageErrorKind;
    let stream = js
        .get_stream_no_info(subjects.stream_name(StreamKind::Processes))
        .await?;
    let subject = subjects.processes(server);
    let message = match stream.get_last_raw_message_by_subject(&subject).await {
        Ok(message) => message,
        Err(err) if matches!(err.kind(), LastRawMessageErrorKind::NoMessageFound) => {
            return Ok(None);
        }
        // No stream yet: the persister creates it at start, and no collector has published
        // into it, so there is no list rather than an outage.
        Err(err)
            if matches!(err.kind(), LastRawMessageErrorKind::JetStream(ref js_err)
                if js_err.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            return Ok(None);
        }
        Err(err) => return Err(err.into()),
    };
    match crate::wire::decode_on::<crate::wire::ProcessList>(
        subjects,
        message.subject.as_str(),
        &message.payload,
        chrono::Utc::now(),
    ) {
        Ok(list) => Ok(Some(list)),
        Err(err) => {
            tracing::warn!(%subject, reason = err.kind(), error = %err, "The newest process list does not decode");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jetstream::context::{CreateStreamError, CreateStreamErrorKind};

    fn answered(err_code: u64) -> CreateStreamError {
        let answer = serde_json::json!({"code": 503, "err_code": err_code, "description": "x"});
        let err = serde_json::from_value(answer).expect("a JetStream error");
        CreateStreamError::new(CreateStreamErrorKind::JetStream(err))
    }

    #[test]
    fn a_cluster_on_its_way_is_retried_a_refusal_is_not() {
        assert!(is_transient(&CreateStreamError::new(
            CreateStreamErrorKind::TimedOut
        )));
        assert!(
            is_transient(&answered(10008)),
            "JetStream temporarily unavailable"
        );
        assert!(is_transient(&answered(10005)), "no suitable peers yet");
        assert!(
            !is_transient(&answered(10058)),
            "a stream name in use with another config"
        );
        assert!(!is_transient(&CreateStreamError::new(
            CreateStreamErrorKind::InvalidStreamName
        )));
    }
}
