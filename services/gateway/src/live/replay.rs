//! `since` on a subscription: the stored samples of a server after a time, read from the
//! metrics stream, sent before the live ones with nothing missing and nothing twice.
//!
//! The live subscription starts first and holds its frames (see `ClientQueue::watch`); then an
//! ordered push consumer reads the stream from a little before `since`, and the replay goes on
//! until JetStream has nothing pending and it has reached the held live sample. The live frames
//! then flow again, those not newer than the last replayed sample dropped.

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, push};
use axum::extract::ws::{Message, WebSocket};
use chrono::{DateTime, Utc};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};

use flick_shared::subjects::StreamKind;
use flick_shared::wire::{MetricSample, ServerId, decode_on};

use super::protocol::wrap;
use super::queue::ClientQueue;
use crate::state::AppState;

/// A replay asked for by a subscription.
#[derive(Debug)]
pub struct Replay {
    pub server: ServerId,
    pub since: DateTime<Utc>,
    /// Samples closer together than this are thinned, as live ones are.
    pub interval: Duration,
}

/// What a replay sent: how many samples, and the newest sample it covered.
#[derive(Debug, Default)]
pub struct Replayed {
    pub samples: u64,
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read the metrics stream: {0}")]
    Stream(String),
    /// The socket failed or timed out: the connection ends.
    #[error("the client's socket failed")]
    Socket,
}

/// Samples are stamped by their collector, stored when they arrive: reading the stream from a
/// little earlier finds a sample taken just after `since` but stored later.
const EARLIER: Duration = Duration::from_secs(10);
/// The longest wait for the stream's next message while it says more are pending, or for the
/// held live sample to be stored.
const QUIET: Duration = Duration::from_secs(2);
/// Frames written between flushes.
const FLUSH_EVERY: u64 = 64;

pub type Sink = SplitSink<WebSocket, Message>;

/// Sends `replay` to `sink`. On `Stream` errors nothing (or part) was sent and the live frames
/// should be released all the same.
pub async fn send(
    state: &AppState,
    queue: &ClientQueue,
    replay: &Replay,
    sink: &mut Sink,
    send_timeout: Duration,
) -> Result<Replayed, ReplayError> {
    let subjects = state.hub.subjects();
    let stream = state
        .js
        .get_stream_no_info(subjects.stream_name(StreamKind::Metrics))
        .await
        .map_err(|err| ReplayError::Stream(err.to_string()))?;
    let start = replay.since - chrono::Duration::from_std(EARLIER).unwrap_or_default();
    let consumer = stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: state.hub.nats().new_inbox(),
            filter_subject: subjects.metrics(&replay.server),
            deliver_policy: DeliverPolicy::ByStartTime { start_time: start },
            description: Some("gateway: a live subscription's since replay".into()),
            ..Default::default()
        })
        .await
        .map_err(|err| ReplayError::Stream(err.to_string()))?;
    let mut done = Replayed::default();
    if consumer.cached_info().num_pending == 0 && queue.held_since(&replay.server).is_none() {
        return Ok(done);
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|err| ReplayError::Stream(err.to_string()))?;
    let mut last_sent: Option<DateTime<Utc>> = None;
    let mut unflushed = 0;
    loop {
        let message = match tokio::time::timeout(QUIET, messages.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(err))) => return Err(ReplayError::Stream(err.to_string())),
            // Quiet: whatever the stream held has been read.
            Ok(None) | Err(_) => break,
        };
        let pending = message.info().map(|info| info.pending).unwrap_or(0);
        if let Ok(sample) =
            decode_on::<MetricSample>(subjects, &message.subject, &message.payload, Utc::now())
            && sample.timestamp > replay.since
            && done.until.is_none_or(|until| sample.timestamp > until)
        {
            done.until = Some(sample.timestamp);
            let thinned = last_sent.is_some_and(|sent| {
                (sample.timestamp - sent)
                    .to_std()
                    .is_ok_and(|gap| gap < replay.interval)
            });
            if !thinned && let Ok(payload) = std::str::from_utf8(&message.payload) {
                let frame = Message::Text(wrap("resource_metrics", payload));
                write(sink.feed(frame), send_timeout).await?;
                last_sent = Some(sample.timestamp);
                done.samples += 1;
                unflushed += 1;
                if unflushed >= FLUSH_EVERY {
                    write(sink.flush(), send_timeout).await?;
                    unflushed = 0;
                }
            }
        }
        let caught_up = queue
            .held_since(&replay.server)
            .is_none_or(|held| done.until.is_some_and(|until| until >= held));
        if pending == 0 && caught_up {
            break;
        }
    }
    write(sink.flush(), send_timeout).await?;
    Ok(done)
}

async fn write(
    step: impl Future<Output = Result<(), axum::Error>>,
    send_timeout: Duration,
) -> Result<(), ReplayError> {
    match tokio::time::timeout(send_timeout, step).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(ReplayError::Socket),
    }
}
