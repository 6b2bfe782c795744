//! Messages this process holds, kept from redelivery while they legitimately wait.
//!
//! The consumer's `ack_wait` is short (`persister.ack_wait_secs`, 10 s) so that what a dead
//! replica held is redelivered to the others within seconds. A live replica's batch can wait
//! longer than that for good reasons: a slow commit, a database outage, every writer busy. For
//! those, the keeper sends JetStream an in-progress acknowledgement (`+WPI`, async-nats's
//! `AckKind::Progress`), which restarts the message's `ack_wait`, so a healthy replica's
//! messages are never handed to another one. Only batches held longer than one keep-alive
//! period are touched: a normal batch commits well before that and costs NATS nothing extra.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::{Client, Subject};
use tokio::time::Instant;

use flick_shared::shutdown::CancellationToken;

/// How often held messages are kept alive: four times per `ack_wait`. A message may wait one
/// period in the pull buffer (the intake's patience with busy writers, the same period), up to
/// the flush interval in the batch being filled, and up to two periods once held before its
/// first in-progress acknowledgement: still inside `ack_wait`.
pub fn keep_alive_every(ack_wait_secs: u64) -> Duration {
    Duration::from_millis(ack_wait_secs.saturating_mul(1_000) / 4).max(Duration::from_millis(100))
}

/// The batches handed from the intake to the writers and not yet acknowledged.
#[derive(Debug, Default)]
pub struct InProgress {
    held: Mutex<HashMap<u64, Entry>>,
    next: AtomicU64,
}

#[derive(Debug)]
struct Entry {
    since: Instant,
    replies: Vec<Subject>,
}

/// One batch's acknowledgement subjects while it is held; dropping it forgets them (the batch
/// was given up and JetStream redelivers it), [`Held::release`] hands them over for the ack.
#[derive(Debug)]
pub struct Held {
    id: u64,
    owner: Arc<InProgress>,
}

impl InProgress {
    /// Registers a batch's acknowledgement subjects as held from now.
    pub fn hold(self: &Arc<Self>, replies: Vec<Subject>) -> Held {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            id,
            Entry {
                since: Instant::now(),
                replies,
            },
        );
        Held {
            id,
            owner: self.clone(),
        }
    }

    /// Messages held at the moment.
    pub fn messages(&self) -> usize {
        self.lock().values().map(|entry| entry.replies.len()).sum()
    }

    /// Every `every`, tells JetStream that the messages held for at least `every` are still
    /// being worked on. Runs until `shutdown`.
    pub async fn keep_alive(
        self: Arc<Self>,
        client: Client,
        stream: &'static str,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            metrics::gauge!("flick_persister_held_messages", "stream" => stream)
                .set(self.messages() as f64);
            let Some(before) = Instant::now().checked_sub(every) else {
                continue;
            };
            let waiting = self.waiting_since(before);
            if waiting.is_empty() {
                continue;
            }
            let count = waiting.len() as u64;
            for reply in waiting {
                super::writer::reply_with(&client, reply, AckKind::Progress).await;
            }
            metrics::counter!("flick_persister_progress_acks_total", "stream" => stream)
                .increment(count);
            tracing::debug!(
                stream,
                messages = count,
                "Held batches kept from redelivery"
            );
        }
    }

    /// The acknowledgement subjects of the batches held since `before` or earlier.
    fn waiting_since(&self, before: Instant) -> Vec<Subject> {
        self.lock()
            .values()
            .filter(|entry| entry.since <= before)
            .flat_map(|entry| entry.replies.iter().cloned())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Held {
    /// The acknowledgement subjects, no longer kept alive: the batch is committed.
    pub fn release(self) -> Vec<Subject> {
        self.owner
            .lock()
            .remove(&self.id)
            .map(|entry| entry.replies)
            .unwrap_or_default()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.owner.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replies(n: usize) -> Vec<Subject> {
        (0..n)
            .map(|i| Subject::from(format!("$JS.ACK.s.c.1.{i}.{i}.0.0")))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn only_batches_held_for_a_whole_period_are_kept_alive() {
        let held = Arc::new(InProgress::default());
        let old = held.hold(replies(3));
        tokio::time::advance(Duration::from_secs(4)).await;
        let _young = held.hold(replies(2));
        assert_eq!(held.messages(), 5);
        let waiting = held.waiting_since(Instant::now() - Duration::from_secs(3));
        assert_eq!(waiting.len(), 3, "the young batch is not touched");
        assert_eq!(old.release().len(), 3);
        assert_eq!(held.messages(), 2);
    }

    #[test]
    fn a_dropped_batch_is_forgotten() {
        let held = Arc::new(InProgress::default());
        let batch = held.hold(replies(4));
        assert_eq!(held.messages(), 4);
        drop(batch);
        assert_eq!(held.messages(), 0);
    }
}
