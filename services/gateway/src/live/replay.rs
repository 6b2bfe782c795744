//! `since` on a subscription: the stored samples of a server after a time, read from the
//! metrics stream, sent before the live ones with nothing missing and nothing twice.
//!
//! The live subscription starts first and holds its frames (see `ClientQueue::watch`); then an
//! ordered push consumer reads the stream from a little before `since`, and the replay goes on
//! until JetStream has nothing pending and it has reached the held live sample. The live frames
//! then flow again, those not newer than the last replayed sample dropped.
//!
//! A replay holds its connection's task, so it is bounded: at most [`MAX_SAMPLES`] samples and
//! [`MAX_WALL`] of time, [`MAX_CONCURRENT`] at once in a gateway. A replay cut short (by a bound,
//! a stream that stops answering, or an error) says so (`complete: false`) and names the last
//! sample it covered, so the client can fetch the rest from the history API.

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, push};
use axum::extract::ws::{Message, WebSocket};
use chrono::{DateTime, Utc};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};

use flick_shared::subjects::StreamKind;
use flick_shared::wire::{MAX_FUTURE_SKEW, MetricSample, ServerId, decode_on};

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

/// What a replay sent: how many samples, the newest sample it covered (sent, or thinned by the
/// interval), and whether it reached the live samples.
#[derive(Debug, Default)]
pub struct Replayed {
    pub samples: u64,
    pub until: Option<DateTime<Utc>>,
    pub complete: bool,
    /// Why it stopped short, when it did.
    pub cut: Option<String>,
}

/// The socket failed or timed out: the connection ends.
#[derive(Debug)]
pub struct SocketFailed;

/// Samples are stamped by their collector and stored when they arrive: a collector whose clock
/// is ahead (by up to the 5 minutes the wire accepts) stores a sample taken after `since` before
/// `since`. Reading the stream from that much earlier finds it.
const EARLIER: chrono::Duration = MAX_FUTURE_SKEW;
/// Samples one replay sends at most (a day at 1 Hz).
pub const MAX_SAMPLES: u64 = 86_400;
/// How long one replay may hold its connection.
pub const MAX_WALL: Duration = Duration::from_secs(20);
/// Replays running at once in one gateway; beyond, a subscription starts live without one.
pub const MAX_CONCURRENT: usize = 64;

static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_CONCURRENT);
/// The longest wait for the stream's next message while more are due (pending, or the held live
/// sample not reached yet).
const QUIET: Duration = Duration::from_secs(2);
/// Frames written between flushes.
const FLUSH_EVERY: u64 = 64;

pub type Sink = SplitSink<WebSocket, Message>;

/// Sends `replay` to `sink`, bounded (see the module's documentation). Only a failed socket is
/// an error; a replay that could not read the stream, or all of it, says so in [`Replayed`].
pub async fn send(
    state: &AppState,
    queue: &ClientQueue,
    replay: &Replay,
    sink: &mut Sink,
    send_timeout: Duration,
) -> Result<Replayed, SocketFailed> {
    let mut done = Replayed::default();
    let Ok(_permit) = RUNNING.try_acquire() else {
        done.cut = Some("too many replays at once in this gateway; retry".into());
        return Ok(done);
    };
    let wall = tokio::time::Instant::now() + MAX_WALL;
    match read(state, queue, replay, sink, send_timeout, wall, &mut done).await {
        Ok(Read::Caught) => done.complete = true,
        Ok(Read::Cut(why)) => done.cut = Some(why),
        Err(Failure::Stream(err)) => {
            done.cut = Some(format!("cannot read the metrics stream: {err}"))
        }
        Err(Failure::Socket) => return Err(SocketFailed),
    }
    write(sink.flush(), send_timeout).await?;
    Ok(done)
}

enum Read {
    Caught,
    Cut(String),
}

enum Failure {
    Stream(String),
    Socket,
}

impl From<SocketFailed> for Failure {
    fn from(_: SocketFailed) -> Self {
        Failure::Socket
    }
}

async fn read(
    state: &AppState,
    queue: &ClientQueue,
    replay: &Replay,
    sink: &mut Sink,
    send_timeout: Duration,
    wall: tokio::time::Instant,
    done: &mut Replayed,
) -> Result<Read, Failure> {
    let subjects = state.hub.subjects();
    let stream = state
        .js
        .get_stream_no_info(subjects.stream_name(StreamKind::Metrics))
        .await
        .map_err(|err| Failure::Stream(err.to_string()))?;
    let consumer = stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: state.hub.nats().new_inbox(),
            filter_subject: subjects.metrics(&replay.server),
            deliver_policy: DeliverPolicy::ByStartTime {
                start_time: replay.since - EARLIER,
            },
            description: Some("gateway: a live subscription's since replay".into()),
            ..Default::default()
        })
        .await
        .map_err(|err| Failure::Stream(err.to_string()))?;
    if consumer.cached_info().num_pending == 0 && queue.held_since(&replay.server).is_none() {
        return Ok(Read::Caught);
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|err| Failure::Stream(err.to_string()))?;
    let mut last_sent: Option<DateTime<Utc>> = None;
    let mut unflushed = 0;
    loop {
        if done.samples >= MAX_SAMPLES {
            return Ok(Read::Cut(format!(
                "at most {MAX_SAMPLES} samples per replay"
            )));
        }
        let quiet = (tokio::time::Instant::now() + QUIET).min(wall);
        let message = match tokio::time::timeout_at(quiet, messages.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(err))) => return Err(Failure::Stream(err.to_string())),
            Ok(None) => return Err(Failure::Stream("the consumer ended".into())),
            Err(_) if quiet >= wall => {
                return Ok(Read::Cut(format!(
                    "a replay may take {} s at most",
                    MAX_WALL.as_secs()
                )));
            }
            // Quiet while more was due: the stream stopped answering (or the consumer could not
            // be re-created after a reconnection).
            Err(_) => return Ok(Read::Cut("the metrics stream stopped answering".into())),
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
            return Ok(Read::Caught);
        }
    }
}

async fn write(
    step: impl Future<Output = Result<(), axum::Error>>,
    send_timeout: Duration,
) -> Result<(), SocketFailed> {
    match tokio::time::timeout(send_timeout, step).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(SocketFailed),
    }
}
