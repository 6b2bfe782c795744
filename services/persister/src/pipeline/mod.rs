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
use flick_shared::deadletter::{DeadLetters, RateLimitedLog};
use flick_shared::shutdown::CancellationToken;
use flick_shared::subjects::StreamKind;

use crate::config::PersisterSettings;

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

/// The refusal for a payload whose server id differs from its subject's.
pub fn check_subject(
    subjects: &Subjects,
    kind: StreamKind,
    subject: &str,
    server_id: &str,
) -> Result<(), Refusal> {
    match subjects.server_id_in(kind, subject) {
        Some(id) if id == server_id => Ok(()),
        _ => Err(Refusal {
            kind: "subject_mismatch",
            detail: format!("serverId {server_id:?} does not match subject {subject:?}"),
        }),
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

/// A batch on its way to the database, with the acknowledgement subjects of its messages.
#[derive(Debug)]
pub struct Batch<R> {
    pub rows: Vec<R>,
    pub acks: Vec<Subject>,
}

impl<R> Batch<R> {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            rows: Vec::with_capacity(capacity),
            acks: Vec::with_capacity(capacity),
        }
    }

    fn len(&self) -> usize {
        self.rows.len()
    }
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
    let writer_tasks: Vec<_> = (0..writers)
        .map(|_| {
            tokio::spawn(writer::run(
                ctx.clone(),
                sink.clone(),
                from_intake.clone(),
                shutdown.clone(),
            ))
        })
        .collect();
    let lag = tokio::spawn(consumer::report_lag(
        consumer.clone(),
        S::NAME,
        shutdown.clone(),
    ));
    intake(&ctx, &*sink, &consumer, to_writer, &shutdown).await;
    let mut failed = None;
    for task in writer_tasks {
        if let Err(err) = task.await {
            failed = Some(anyhow::anyhow!("a {} writer task failed: {err}", S::NAME));
        }
    }
    lag.abort();
    failed.map_or(Ok(()), Err)
}

async fn intake<S: Sink>(
    ctx: &Context,
    sink: &S,
    consumer: &jetstream::consumer::PullConsumer,
    to_writer: mpsc::Sender<Batch<S::Row>>,
    shutdown: &CancellationToken,
) {
    let batch_size = ctx.settings.batch_size;
    let flush_every = Duration::from_millis(ctx.settings.flush_interval_ms);
    let mut batch = Batch::with_capacity(batch_size);
    let mut flush_at: Option<Instant> = None;
    let mut reopen = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let errors = RateLimitedLog::new(Duration::from_secs(30));

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
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    drain(ctx, sink, &mut messages, &mut batch).await;
                    break 'reopen;
                }
                () = sleep_until(flush_at), if flush_at.is_some() => {
                    flush_at = None;
                    if !hand_over(&to_writer, &mut batch, batch_size, shutdown).await {
                        break 'reopen;
                    }
                }
                next = messages.next() => match next {
                    Some(Ok(message)) => {
                        reopen.reset();
                        if accept(ctx, sink, message, &mut batch).await && flush_at.is_none() {
                            flush_at = Some(Instant::now() + flush_every);
                        }
                        if batch.len() >= batch_size {
                            flush_at = None;
                            if !hand_over(&to_writer, &mut batch, batch_size, shutdown).await {
                                break 'reopen;
                            }
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
                    }
                    None => continue 'reopen,
                },
            }
        }
    }

    // Shutdown: the batch in hand goes to the writer, which commits and acknowledges it.
    if batch.len() > 0 {
        let timeout = Duration::from_millis(ctx.settings.shutdown_timeout_ms);
        if tokio::time::timeout(timeout, to_writer.send(batch))
            .await
            .is_err()
        {
            tracing::warn!(
                stream = S::NAME,
                "Writer busy at shutdown; the last batch will be redelivered"
            );
        }
    }
}

/// At shutdown, takes in what JetStream has already delivered to this process (the pull
/// stream's buffer) so that it is committed now rather than redelivered after `ack_wait`. Stops
/// at the first 100 ms without a message, or after 2 s.
async fn drain<S: Sink>(
    ctx: &Context,
    sink: &S,
    messages: &mut jetstream::consumer::pull::Stream,
    batch: &mut Batch<S::Row>,
) {
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        match tokio::time::timeout(Duration::from_millis(100), messages.next()).await {
            Ok(Some(Ok(message))) => {
                accept(ctx, sink, message, batch).await;
            }
            _ => return,
        }
    }
}

/// Decodes one message into the batch, or dead-letters and acknowledges it. `true` when a row
/// was added.
async fn accept<S: Sink>(
    ctx: &Context,
    sink: &S,
    message: jetstream::Message,
    batch: &mut Batch<S::Row>,
) -> bool {
    let message = message.message;
    let Some(reply) = message.reply else {
        return false;
    };
    match sink.decode(&message.subject, &message.payload, Utc::now()) {
        Ok(row) => {
            batch.rows.push(row);
            batch.acks.push(reply);
            true
        }
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
            false
        }
    }
}

/// Sends the batch to the writer (waiting while it is busy: backpressure). `false` when
/// shutdown came first; the batch is then kept for the final hand-over.
async fn hand_over<R>(
    to_writer: &mpsc::Sender<Batch<R>>,
    batch: &mut Batch<R>,
    batch_size: usize,
    shutdown: &CancellationToken,
) -> bool {
    if batch.len() == 0 {
        return true;
    }
    let permit = tokio::select! {
        permit = to_writer.reserve() => permit,
        () = shutdown.cancelled() => return false,
    };
    match permit {
        Ok(permit) => {
            permit.send(std::mem::replace(batch, Batch::with_capacity(batch_size)));
            true
        }
        Err(_) => false,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => futures::future::pending().await,
    }
}
