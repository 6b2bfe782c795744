//! One stream into one table: a durable pull consumer, batching, a transaction per batch, and
//! acknowledgements only after the commit.
//!
//! The intake task pulls messages, decodes each with its [`Sink`], forwards refused ones to the
//! dead-letter subject (and acknowledges them: they must not block anything), and hands batches
//! to `persister.writers` writer tasks (each its own transaction, so PostgreSQL works on several
//! cores). While every writer waits for the database, the intake stops pulling, so memory stays
//! bounded by the batch size, the number of writers and `max_ack_pending`.
//! The writer retries a failed batch with capped, jittered backoff and acknowledges its messages
//! only once the transaction that holds them has committed; a crash before that leaves them
//! unacknowledged, JetStream redelivers them, and the sink's `ON CONFLICT DO NOTHING` makes the
//! second write a no-op.

mod consumer;
mod progress;
mod writer;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::{Client, Subject};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use tokio::time::Instant;

use flick_shared::Subjects;
use flick_shared::backoff::Backoff;
use flick_shared::batch::{Batcher, until};
use flick_shared::deadletter::{DeadLetters, RateLimitedLog};
use flick_shared::shutdown::CancellationToken;
use flick_shared::subjects::StreamKind;

use crate::config::PersisterSettings;
use progress::{Held, InProgress};

/// Why a message cannot be stored: a short stable kind and the details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: &'static str,
    pub detail: String,
}

impl From<flick_shared::wire::WireError> for Refusal {
    fn from(err: flick_shared::wire::WireError) -> Self {
        Self {
            kind: err.kind(),
            detail: err.to_string(),
        }
    }
}

/// How one stream's messages become rows.
pub trait Sink: Send + Sync + 'static {
    type Row: Send + Sync + 'static;
    /// The stream read.
    const KIND: StreamKind;
    /// Label in logs and metrics: `metrics`, `alerts`, `logs`.
    const NAME: &'static str;

    /// Decodes and checks one message.
    fn decode(
        &self,
        subject: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Self::Row, Refusal>;

    /// Writes `rows` inside the caller's transaction; returns the rows actually inserted
    /// (duplicates are skipped, not errors).
    fn write(
        &self,
        conn: &mut PgConnection,
        rows: &[Self::Row],
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;

    /// Bookkeeping after a batch committed, in its own short transaction so that concurrent
    /// writers do not queue behind each other's row locks. A failure is logged, not retried:
    /// the next batch does it again.
    fn after_commit(
        &self,
        _pool: &PgPool,
        _rows: &[Self::Row],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        async { Ok(()) }
    }
}

/// What every pipeline of one persister shares.
#[derive(Debug, Clone)]
pub struct Context {
    pub client: Client,
    pub js: jetstream::Context,
    pub pool: PgPool,
    pub subjects: Subjects,
    pub settings: PersisterSettings,
    pub deadletters: Arc<DeadLetters>,
}

/// A batch on its way to the database; its messages are kept alive until it is committed.
#[derive(Debug)]
pub struct Batch<R> {
    pub rows: Vec<R>,
    pub held: Held,
}

/// Runs one stream's pipeline until `shutdown`; then writes and acknowledges the batch in hand.
pub async fn run<S: Sink>(
    ctx: Context,
    sink: Arc<S>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let consumer = consumer::ensure(&ctx, S::KIND).await?;
    let writers = ctx.settings.writers;
    let (to_writer, from_intake) = mpsc::channel::<Batch<S::Row>>(writers);
    let from_intake = Arc::new(tokio::sync::Mutex::new(from_intake));
    // Writers stop when the intake is gone and the channel is empty, not at `shutdown`: the
    // batches in hand are committed and acknowledged first.
    let mut writer_tasks = tokio::task::JoinSet::new();
    for _ in 0..writers {
        writer_tasks.spawn(writer::run(
            ctx.clone(),
            sink.clone(),
            from_intake.clone(),
            shutdown.clone(),
        ));
    }
    // What keeps held messages alive and reports the backlog stops after the last writer.
    let background = CancellationToken::new();
    let held = Arc::new(InProgress::default());
    let mut background_tasks = tokio::task::JoinSet::new();
    background_tasks.spawn(held.clone().keep_alive(
        ctx.client.clone(),
        S::NAME,
        progress::keep_alive_every(ctx.settings.ack_wait_secs),
        background.clone(),
    ));
    background_tasks.spawn(consumer::report_lag(
        consumer.clone(),
        S::NAME,
        background.clone(),
    ));
    intake(&ctx, &*sink, &consumer, &held, to_writer, &shutdown).await;
    let mut failed = None;
    while let Some(done) = writer_tasks.join_next().await {
        if let Err(err) = done {
            failed = Some(anyhow::anyhow!("a {} writer task failed: {err}", S::NAME));
        }
    }
    background.cancel();
    while background_tasks.join_next().await.is_some() {}
    failed.map_or(Ok(()), Err)
}

async fn intake<S: Sink>(
    ctx: &Context,
    sink: &S,
    consumer: &jetstream::consumer::PullConsumer,
    held: &Arc<InProgress>,
    to_writer: mpsc::Sender<Batch<S::Row>>,
    shutdown: &CancellationToken,
) {
    let batch_size = ctx.settings.batch_size;
    let mut batcher = Batcher::new(
        batch_size,
        Duration::from_millis(ctx.settings.flush_interval_ms),
    );
    let mut reopen = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let errors = RateLimitedLog::new(Duration::from_secs(30));
    let patience = progress::keep_alive_every(ctx.settings.ack_wait_secs);

    'reopen: while !shutdown.is_cancelled() {
        let mut messages = match consumer::messages(consumer, batch_size).await {
            Ok(messages) => messages,
            Err(err) => {
                if errors.allow("open").is_some() {
                    tracing::warn!(stream = S::NAME, error = %err, "Cannot pull from JetStream; retrying");
                }
                tokio::select! {
                    () = shutdown.cancelled() => break 'reopen,
                    () = tokio::time::sleep(reopen.next_delay()) => continue 'reopen,
                }
            }
        };
        loop {
            let full = tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    drain(ctx, sink, &mut messages, &mut batcher).await;
                    break 'reopen;
                }
                () = batcher.due() => batcher.take(),
                next = messages.next() => match next {
                    Some(Ok(message)) => {
                        reopen.reset();
                        match accept(ctx, sink, message).await {
                            Some(item) => match batcher.push(item, Instant::now()) {
                                Some(full) => full,
                                None => continue,
                            },
                            None => continue,
                        }
                    }
                    Some(Err(err)) => {
                        use jetstream::consumer::pull::MessagesErrorKind as Kind;
                        let terminal = matches!(err.kind(), Kind::ConsumerDeleted | Kind::PushBasedConsumer | Kind::RequestLimitExceeded);
                        if errors.allow("pull").is_some() {
                            tracing::warn!(stream = S::NAME, error = %err, "Pulling from JetStream failed");
                        }
                        if terminal {
                            continue 'reopen;
                        }
                        continue;
                    }
                    None => continue 'reopen,
                },
            };
            if full.is_empty() {
                continue;
            }
            let batch = batch(held, full);
            // Every writer busy for a while means the database is slow or away: stop pulling
            // altogether. What the pull buffer holds (never decoded, never held) is then
            // redelivered once, after `ack_wait`, instead of piling up as repeated deliveries
            // that would be written twice.
            let batch = match hand_over(&to_writer, batch, shutdown, Some(patience)).await {
                Ok(()) => continue,
                Err(HandOver::Busy(batch)) => {
                    drop(messages);
                    tracing::debug!(stream = S::NAME, "Every writer busy: pulling paused");
                    match hand_over(&to_writer, batch, shutdown, None).await {
                        Ok(()) => continue 'reopen,
                        Err(HandOver::Busy(batch) | HandOver::Stopped(batch)) => batch,
                    }
                }
                Err(HandOver::Stopped(batch)) => batch,
            };
            hand_over_at_shutdown(ctx, &to_writer, batch, S::NAME).await;
            return;
        }
    }

    // Shutdown: the batch in hand goes to a writer, which commits and acknowledges it.
    let rest = batcher.take();
    if !rest.is_empty() {
        hand_over_at_shutdown(ctx, &to_writer, batch(held, rest), S::NAME).await;
    }
}

/// One message decoded into the batch: its row and its acknowledgement subject.
type Item<R> = (R, Subject);

/// At shutdown, takes in what JetStream has already delivered to this process (the pull
/// stream's buffer) so that it is committed now rather than redelivered after `ack_wait`. Stops
/// at the first 100 ms without a message, or after 2 s.
async fn drain<S: Sink>(
    ctx: &Context,
    sink: &S,
    messages: &mut jetstream::consumer::pull::Stream,
    batcher: &mut Batcher<Item<S::Row>>,
) {
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        match tokio::time::timeout(Duration::from_millis(100), messages.next()).await {
            Ok(Some(Ok(message))) => {
                if let Some(item) = accept(ctx, sink, message).await {
                    // Beyond one batch, the rest is redelivered: shutdown stays bounded.
                    if batcher.push(item, Instant::now()).is_some() {
                        return;
                    }
                }
            }
            _ => return,
        }
    }
}

/// Decodes one message, or dead-letters and acknowledges it (`None`).
async fn accept<S: Sink>(
    ctx: &Context,
    sink: &S,
    message: jetstream::Message,
) -> Option<Item<S::Row>> {
    if message.info().is_ok_and(|info| info.delivered > 1) {
        metrics::counter!("flick_persister_redeliveries_total", "stream" => S::NAME).increment(1);
    }
    let message = message.message;
    let reply = message.reply?;
    match sink.decode(&message.subject, &message.payload, Utc::now()) {
        Ok(row) => Some((row, reply)),
        Err(refusal) => {
            ctx.deadletters
                .forward(
                    &message.subject,
                    message.payload,
                    refusal.kind,
                    &refusal.detail,
                )
                .await;
            writer::ack(&ctx.client, reply).await;
            None
        }
    }
}

fn batch<R>(held: &Arc<InProgress>, items: Vec<Item<R>>) -> Batch<R> {
    let (rows, replies) = items.into_iter().unzip();
    Batch {
        rows,
        held: held.hold(replies),
    }
}

/// Why a batch is still in hand.
enum HandOver<R> {
    /// Every writer stayed busy for the whole patience.
    Busy(Batch<R>),
    /// Shutdown came first, or the writers are gone.
    Stopped(Batch<R>),
}

/// Sends a batch to a writer, waiting while every writer is busy (backpressure: the intake
/// pulls nothing meanwhile, and the batch is kept alive), at most `patience` when given.
async fn hand_over<R>(
    to_writer: &mpsc::Sender<Batch<R>>,
    batch: Batch<R>,
    shutdown: &CancellationToken,
    patience: Option<Duration>,
) -> Result<(), HandOver<R>> {
    let permit = tokio::select! {
        permit = to_writer.reserve() => permit,
        () = shutdown.cancelled() => return Err(HandOver::Stopped(batch)),
        () = until(patience.map(|p| Instant::now() + p)) => return Err(HandOver::Busy(batch)),
    };
    match permit {
        Ok(permit) => {
            permit.send(batch);
            Ok(())
        }
        Err(_) => Err(HandOver::Stopped(batch)),
    }
}

/// The last batch, given `persister.shutdown_timeout_ms` to reach a writer; otherwise it is
/// left to JetStream's redelivery.
async fn hand_over_at_shutdown<R>(
    ctx: &Context,
    to_writer: &mpsc::Sender<Batch<R>>,
    batch: Batch<R>,
    stream: &'static str,
) {
    let timeout = Duration::from_millis(ctx.settings.shutdown_timeout_ms);
    if tokio::time::timeout(timeout, to_writer.send(batch))
        .await
        .is_err()
    {
        tracing::warn!(
            stream,
            "Writer busy at shutdown; the last batch will be redelivered"
        );
    }
}
