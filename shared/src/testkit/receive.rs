//! "Receive the next message within N seconds" and "wait until" helpers that fail loudly.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use async_nats::{Message, Subscriber};
use futures::StreamExt;
use serde::de::DeserializeOwned;

/// The next message on `sub`, or a panic naming the wait.
pub async fn next_message(sub: &mut Subscriber, within: Duration) -> Message {
    match tokio::time::timeout(within, sub.next()).await {
        Ok(Some(message)) => message,
        Ok(None) => panic!("subscription closed while waiting for a message"),
        Err(_) => panic!("no message within {within:?}"),
    }
}

/// The next message on `sub`, decoded as `T`.
pub async fn next_json<T: DeserializeOwned>(sub: &mut Subscriber, within: Duration) -> T {
    let message = next_message(sub, within).await;
    serde_json::from_slice(&message.payload).unwrap_or_else(|err| {
        panic!(
            "message on {} is not the expected JSON ({err}): {}",
            message.subject,
            String::from_utf8_lossy(&message.payload)
        )
    })
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `within` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every message currently in `stream`, in stream order, read with an ephemeral consumer.
pub async fn read_stream(js: &jetstream::Context, stream: &str) -> Vec<jetstream::Message> {
    let stream = js
        .get_stream(stream)
        .await
        .unwrap_or_else(|err| panic!("stream {stream} not found: {err}"));
    let expected = stream.cached_info().state.messages as usize;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .expect("create an ephemeral consumer");
    let mut out = Vec::with_capacity(expected);
    while out.len() < expected {
        let mut batch = consumer
            .fetch()
            .max_messages(1_000)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .expect("fetch from the stream");
        let before = out.len();
        while let Some(message) = batch.next().await {
            out.push(message.expect("read a stream message"));
        }
        assert!(
            out.len() > before,
            "stream stopped delivering at {} of {expected}",
            out.len()
        );
    }
    out
}

/// Publishes samples through JetStream on their subjects, with their `Nats-Msg-Id` when
/// `with_ids` (without, JetStream cannot drop repeats, as after the duplicate window); acks
/// are awaited a thousand at a time.
pub async fn publish_samples(
    js: &jetstream::Context,
    subjects: &crate::Subjects,
    samples: &[crate::wire::MetricSample],
    with_ids: bool,
) {
    for chunk in samples.chunks(1_000) {
        let mut acks = Vec::with_capacity(chunk.len());
        for sample in chunk {
            let payload = serde_json::to_vec(sample).expect("serialise a sample");
            let mut publish = jetstream::message::PublishMessage::build().payload(payload.into());
            if with_ids {
                publish = publish.message_id(sample.message_id());
            }
            acks.push(
                js.send_publish(subjects.metrics(&sample.server_id), publish)
                    .await
                    .expect("publish a sample"),
            );
        }
        for ack in acks {
            ack.await.expect("JetStream acknowledges a sample");
        }
    }
}

/// Returns once the server has registered every subscription `client` made before the call:
/// a request it answers is a full round trip, which `Client::flush` (it only empties the
/// write buffer) is not, so a message published elsewhere right after cannot be missed.
pub async fn registered(client: &async_nats::Client) {
    client
        .request("$JS.API.INFO", bytes::Bytes::new())
        .await
        .expect("a round trip to the NATS server");
}
