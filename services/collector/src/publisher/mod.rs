//! Delivers messages to JetStream with pipelined acknowledgements and a local buffer.
//!
//! Up to `max_in_flight` publishes wait for their acks at once, so replaying an hour of buffered
//! samples takes seconds, not an hour of round trips. Nothing leaves the [`Outbox`] before
//! JetStream acknowledges it; a failed publish pauses sending, backs off, then resends from the
//! oldest unacknowledged message (the `Nats-Msg-Id` makes any message stored twice a duplicate
//! that JetStream drops).

mod outbox;

use std::pin::Pin;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::{
    self, context::PublishError, message::PublishMessage, publish::PublishAck,
};
use futures::stream::FuturesOrdered;
use futures::{Future, StreamExt};
use tokio::time::Instant;

use flick_shared::backoff::Backoff;

pub use outbox::{Outbox, Outgoing};

type AckFuture = Pin<Box<dyn Future<Output = (u64, Result<PublishAck, PublishError>)> + Send>>;

/// How often dropped samples are reported while an outage lasts.
const DROP_REPORT_EVERY: Duration = Duration::from_secs(60);

pub struct Publisher {
    js: jetstream::Context,
    outbox: Outbox,
    in_flight: FuturesOrdered<AckFuture>,
    max_in_flight: usize,
    backoff: Backoff,
    /// Set by a failure: no new sends until the in-flight acks settle and this instant passes.
    paused: bool,
    retry_at: Option<Instant>,
    outage: Option<Outage>,
    delivered: u64,
    dropped: u64,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("buffered", &self.outbox.len())
            .field("in_flight", &self.in_flight.len())
            .field("paused", &self.paused)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Outage {
    since: Instant,
    dropped: u64,
    last_report: Instant,
}

impl Publisher {
    pub fn new(js: jetstream::Context, buffer_capacity: usize, max_in_flight: usize) -> Self {
        Self {
            js,
            outbox: Outbox::new(buffer_capacity),
            in_flight: FuturesOrdered::new(),
            max_in_flight: max_in_flight.max(1),
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
            paused: false,
            retry_at: None,
            outage: None,
            delivered: 0,
            dropped: 0,
        }
    }

    /// Buffers a message; it is sent by the next [`Publisher::pump`].
    pub fn enqueue(&mut self, message: Outgoing) {
        self.outbox.push(message);
        let dropped = self.outbox.take_dropped();
        self.dropped += dropped;
        if dropped > 0 {
            let now = Instant::now();
            let buffered = self.outbox.len();
            let outage = self.outage();
            outage.dropped += dropped;
            if outage.dropped == dropped || now - outage.last_report >= DROP_REPORT_EVERY {
                outage.last_report = now;
                tracing::warn!(
                    dropped_total = outage.dropped,
                    buffered,
                    "Buffer full while NATS is unreachable: dropping the oldest samples"
                );
            }
        }
    }

    /// Messages not yet acknowledged (buffered or in flight).
    pub fn pending(&self) -> usize {
        self.outbox.len()
    }

    /// Messages dropped for room (oldest first) since start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Messages acknowledged by JetStream since start.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Sends buffered messages while the in-flight window has room and nothing is failing.
    pub async fn pump(&mut self) {
        if self.paused {
            return;
        }
        if self.js.client().connection_state() != State::Connected {
            if self.outbox.has_unsent() {
                self.outage();
            }
            return;
        }
        while self.in_flight.len() < self.max_in_flight {
            let Some((seq, message)) = self.outbox.next_to_send() else {
                return;
            };
            let publish = PublishMessage::build()
                .payload(message.payload)
                .message_id(&message.message_id);
            match self.js.send_publish(message.subject, publish).await {
                Ok(ack) => self
                    .in_flight
                    .push_back(Box::pin(async move { (seq, ack.await) })),
                Err(err) => {
                    self.fail(&err);
                    return;
                }
            }
        }
    }

    /// Waits for the next thing that changes what can be sent: an acknowledgement, the end of
    /// a backoff, or (while disconnected) a short poll. Cancel-safe, for use in `select!`.
    pub async fn progress(&mut self) {
        if !self.in_flight.is_empty() {
            if let Some((seq, result)) = self.in_flight.next().await {
                match result {
                    Ok(_) => self.acknowledged(seq),
                    Err(err) => self.fail(&err),
                }
            }
            if self.paused && self.in_flight.is_empty() && self.retry_at.is_none() {
                self.retry_at = Some(Instant::now() + self.backoff.next_delay());
            }
            return;
        }
        if let Some(at) = self.retry_at {
            tokio::time::sleep_until(at).await;
            self.retry_at = None;
            self.paused = false;
            self.outbox.rewind();
            return;
        }
        if self.paused {
            // Failed on send with nothing in flight: schedule the retry.
            self.retry_at = Some(Instant::now() + self.backoff.next_delay());
            return;
        }
        if self.outbox.has_unsent() {
            // Disconnected: look again shortly (the client reconnects by itself).
            tokio::time::sleep(Duration::from_millis(100)).await;
            return;
        }
        futures::future::pending::<()>().await;
    }

    fn acknowledged(&mut self, seq: u64) {
        self.outbox.ack(seq);
        self.delivered += 1;
        self.backoff.reset();
        if let Some(outage) = self.outage.take() {
            tracing::info!(
                outage_secs = outage.since.elapsed().as_secs(),
                dropped = outage.dropped,
                still_buffered = self.outbox.len(),
                "Publishing resumed; replaying buffered samples oldest first"
            );
        }
    }

    fn fail(&mut self, err: &PublishError) {
        if !self.paused {
            tracing::warn!(
                error = %err,
                buffered = self.outbox.len(),
                "Publish to JetStream failed; buffering and retrying"
            );
        }
        self.paused = true;
        self.outage();
    }

    /// The outage in progress, begun now if none was.
    fn outage(&mut self) -> &mut Outage {
        self.outage.get_or_insert_with(|| {
            let now = Instant::now();
            Outage {
                since: now,
                dropped: 0,
                last_report: now,
            }
        })
    }

    /// Keeps sending until everything is acknowledged or `within` has passed; returns what is
    /// left undelivered.
    pub async fn flush(&mut self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        while !self.outbox.is_empty() && Instant::now() < deadline {
            self.pump().await;
            let _ = tokio::time::timeout_at(deadline, self.progress()).await;
        }
        self.outbox.len()
    }
}
