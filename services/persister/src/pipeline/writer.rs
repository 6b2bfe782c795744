//! Writes batches in one transaction each and acknowledges them after the commit.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::{Client, Subject};
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;
use tracing::Instrument;

use flick_shared::backoff::Backoff;
use flick_shared::deadletter::RateLimitedLog;
use flick_shared::shutdown::CancellationToken;

use super::{Batch, Context, Sink};

/// Acknowledges one JetStream message. A lost acknowledgement only causes a redelivery, which
/// the sink absorbs, so a failure here is logged at debug level.
pub async fn ack(client: &Client, reply: Subject) {
    reply_with(client, reply, AckKind::Ack).await;
}

/// Sends `kind` (an acknowledgement, an in-progress one) to a message's reply subject without
/// waiting for the server's confirmation: a lost one costs a redelivery at most.
pub async fn reply_with(client: &Client, reply: Subject, kind: AckKind) {
    if let Err(err) = client.publish(reply, kind.into()).await {
        tracing::debug!(error = %err, ?kind, "Cannot send an acknowledgement");
    }
}

pub async fn run<S: Sink>(
    ctx: Context,
    sink: Arc<S>,
    batches: Arc<Mutex<mpsc::Receiver<Batch<S::Row>>>>,
    shutdown: CancellationToken,
) {
    let errors = RateLimitedLog::new(Duration::from_secs(30));
    loop {
        // Hold the lock only to take one batch: the other writers take the next ones.
        let Some(batch) = batches.lock().await.recv().await else {
            return;
        };
        let span = tracing::info_span!("batch", stream = S::NAME, messages = batch.rows.len());
        write_until_committed(&ctx, &*sink, batch, &shutdown, &errors)
            .instrument(span)
            .await;
    }
}

async fn write_until_committed<S: Sink>(
    ctx: &Context,
    sink: &S,
    batch: Batch<S::Row>,
    shutdown: &CancellationToken,
    errors: &RateLimitedLog,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
    let mut give_up_at: Option<Instant> = None;
    loop {
        let started = Instant::now();
        match write(ctx, sink, &batch.rows).await {
            Ok(inserted) => {
                let messages = batch.rows.len() as u64;
                metrics::histogram!("flick_persister_batch_seconds", "stream" => S::NAME)
                    .record(started.elapsed().as_secs_f64());
                metrics::counter!("flick_persister_batches_total", "stream" => S::NAME)
                    .increment(1);
                metrics::counter!("flick_persister_rows_written_total", "stream" => S::NAME)
                    .increment(inserted);
                metrics::counter!("flick_persister_duplicates_total", "stream" => S::NAME)
                    .increment(messages.saturating_sub(inserted));
                for reply in batch.held.release() {
                    ack(&ctx.client, reply).await;
                }
                if let Err(err) = sink.after_commit(&ctx.pool, &batch.rows).await
                    && errors.allow("after_commit").is_some()
                {
                    tracing::warn!(error = %err, "Bookkeeping after a batch failed; the next batch retries");
                }
                tracing::debug!(
                    inserted,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "Batch committed"
                );
                if backoff.attempts() > 0 {
                    tracing::info!(retries = backoff.attempts(), "Database writes resumed");
                }
                return;
            }
            Err(err) => {
                metrics::counter!("flick_persister_retries_total", "stream" => S::NAME)
                    .increment(1);
                if let Some(suppressed) = errors.allow("write") {
                    tracing::warn!(error = %err, suppressed_since_last_log = suppressed,
                        "Cannot write a batch; nothing acknowledged, retrying");
                }
                if shutdown.is_cancelled() {
                    let deadline = *give_up_at.get_or_insert_with(|| {
                        Instant::now() + Duration::from_millis(ctx.settings.shutdown_timeout_ms)
                    });
                    if Instant::now() >= deadline {
                        tracing::warn!(
                            "Shutting down with an unwritten batch; JetStream will redeliver it"
                        );
                        return;
                    }
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

async fn write<S: Sink>(ctx: &Context, sink: &S, rows: &[S::Row]) -> Result<u64, sqlx::Error> {
    let mut tx = ctx.pool.begin().await?;
    let inserted = sink.write(&mut tx, rows).await?;
    tx.commit().await?;
    Ok(inserted)
}
