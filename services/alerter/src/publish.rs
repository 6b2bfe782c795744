//! Publishes committed transitions to JetStream, in order (the notifier reads them from
//! `notification_queue`, see [`crate::notify::dispatch`]).
//!
//! A transition reaches this task only after the transaction that recorded it (in
//! `alert_outbox`) committed. It is published with its id as `Nats-Msg-Id`; once JetStream
//! acknowledges it, the outbox row is deleted. A new leader first publishes whatever the
//! previous one left in the outbox: a transition published twice that way is dropped by
//! JetStream's duplicate window.

use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use tokio::sync::mpsc;

use flick_shared::backoff::Backoff;
use flick_shared::shutdown::CancellationToken;

use crate::Context;
use crate::store::Outgoing;

pub async fn run(
    ctx: Context,
    mut committed: mpsc::UnboundedReceiver<Vec<Outgoing>>,
    term: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let leftovers = loop {
        match ctx.store.unpublished().await {
            Ok(rows) => break rows,
            Err(err) => {
                tracing::warn!(error = %err, "Cannot read the alert outbox; retrying");
                tokio::select! {
                    () = term.cancelled() => return,
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        }
    };
    if !leftovers.is_empty() {
        tracing::info!(
            count = leftovers.len(),
            "Publishing transitions left in the outbox"
        );
        publish_in_order(&ctx, leftovers, &term).await;
    }
    loop {
        tokio::select! {
            () = term.cancelled() => return,
            batch = committed.recv() => match batch {
                Some(batch) => publish_in_order(&ctx, batch, &term).await,
                None => return,
            },
        }
    }
}

/// Publishes every transition, retrying from the first failure (in order) until all are in
/// JetStream or the term ends; then deletes them from the outbox and notifies.
async fn publish_in_order(ctx: &Context, mut batch: Vec<Outgoing>, term: &CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
    while !batch.is_empty() {
        let mut acks = Vec::with_capacity(batch.len());
        for outgoing in &batch {
            let message = PublishMessage::build()
                .payload(outgoing.payload.clone().into())
                .message_id(outgoing.id.to_string());
            acks.push(ctx.js.send_publish(outgoing.subject.clone(), message).await);
        }
        let mut delivered = 0;
        for ack in acks {
            let stored = match ack {
                Ok(ack) => ack.await.is_ok(),
                Err(_) => false,
            };
            if !stored {
                break;
            }
            delivered += 1;
        }
        let done: Vec<Outgoing> = batch.drain(..delivered).collect();
        finish(ctx, &done).await;
        if !batch.is_empty() {
            tracing::warn!(
                waiting = batch.len(),
                "Cannot publish alert transitions; retrying"
            );
            tokio::select! {
                () = term.cancelled() => return,
                () = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
    }
}

async fn finish(ctx: &Context, done: &[Outgoing]) {
    if done.is_empty() {
        return;
    }
    let ids: Vec<_> = done.iter().map(|o| o.id).collect();
    if let Err(err) = ctx.store.published(&ids).await {
        // Left in the outbox: the next leader re-publishes them and JetStream drops the repeats.
        tracing::warn!(error = %err, "Cannot clear published transitions from the outbox");
    }
    for event in done.iter().filter_map(|o| o.event.as_ref()) {
        metrics::counter!(
            "flick_alerter_transitions_total",
            "metric" => event.metric.clone(),
            "severity" => if event.severity == flick_shared::wire::AlertSeverity::Critical { "critical" } else { "warning" },
            "state" => if event.state == flick_shared::wire::AlertState::Firing { "firing" } else { "resolved" },
        )
        .increment(1);
    }
}
