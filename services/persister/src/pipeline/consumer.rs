//! The durable pull consumer each pipeline reads through, shared by every persister replica.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};

use flick_shared::shutdown::CancellationToken;
use flick_shared::subjects::{PERSISTER_CONSUMER, StreamKind};

use super::Context;

/// Creates the `persister` consumer on the stream of `kind`, or brings its settings up to date.
pub async fn ensure(ctx: &Context, kind: StreamKind) -> anyhow::Result<PullConsumer> {
    let stream_name = ctx.subjects.stream_name(kind);
    let stream = ctx
        .js
        .get_stream(&stream_name)
        .await
        .map_err(|err| anyhow::anyhow!("stream {stream_name} is not available: {err}"))?;
    let config = pull::Config {
        durable_name: Some(PERSISTER_CONSUMER.to_owned()),
        description: Some("FLick persister: stores every message in PostgreSQL".to_owned()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(ctx.settings.ack_wait_secs),
        max_ack_pending: ctx.settings.max_ack_pending,
        // Never give up on a message: the database may be away for a long time.
        max_deliver: -1,
        ..Default::default()
    };
    stream.create_consumer(config).await.map_err(|err| {
        anyhow::anyhow!("cannot create consumer {PERSISTER_CONSUMER} on {stream_name}: {err}")
    })
}

/// A continuous pull of up to `batch` messages at a time, with heartbeats so a dead connection
/// is noticed.
pub async fn messages(
    consumer: &PullConsumer,
    batch: usize,
) -> Result<pull::Stream, async_nats::jetstream::consumer::StreamError> {
    consumer
        .stream()
        .max_messages_per_batch(batch.clamp(1, 1_000))
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
}

/// Publishes the consumer's backlog (`flick_persister_consumer_pending`) every 10 s.
pub async fn report_lag(
    mut consumer: PullConsumer,
    stream: &'static str,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {
                if let Ok(info) = consumer.info().await {
                    metrics::gauge!("flick_persister_consumer_pending", "stream" => stream)
                        .set(info.num_pending as f64);
                    metrics::gauge!("flick_persister_consumer_ack_pending", "stream" => stream)
                        .set(info.num_ack_pending as f64);
                }
            }
        }
    }
}
