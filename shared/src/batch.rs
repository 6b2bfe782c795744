//! "N items or T milliseconds, whichever comes first": the batching rule of every loop that
//! turns a stream of messages into transactions (the persister's intake, the alerter's term).
//!
//! The batcher is pure: it is told the time, so its rules are unit-tested without a runtime,
//! and the caller's `select!` waits on [`Batcher::due`] beside its message stream. Written once
//! so the two loops cannot drift apart on the edge cases (the deadline starts with the first
//! item, a full batch resets it, a drain at shutdown takes whatever is left).

use std::time::Duration;

use tokio::time::Instant;

/// Collects items into batches of at most `max`, each due `linger` after its first item.
#[derive(Debug)]
pub struct Batcher<T> {
    items: Vec<T>,
    max: usize,
    linger: Duration,
    due_at: Option<Instant>,
}

impl<T> Batcher<T> {
    /// `max` is at least one item.
    pub fn new(max: usize, linger: Duration) -> Self {
        let max = max.max(1);
        Self {
            items: Vec::with_capacity(max),
            max,
            linger,
            due_at: None,
        }
    }

    /// Adds one item; returns the batch when this item filled it.
    pub fn push(&mut self, item: T, now: Instant) -> Option<Vec<T>> {
        if self.items.is_empty() {
            self.due_at = Some(now + self.linger);
        }
        self.items.push(item);
        (self.items.len() >= self.max).then(|| self.take())
    }

    /// Whatever is in hand, due or not (a shutdown drains it); empty when nothing is.
    pub fn take(&mut self) -> Vec<T> {
        self.due_at = None;
        std::mem::replace(&mut self.items, Vec::with_capacity(self.max))
    }

    /// When the batch in hand is due; `None` while it is empty.
    pub fn due_at(&self) -> Option<Instant> {
        self.due_at
    }

    /// Sleeps until the batch in hand is due; never returns while it is empty, so it can sit in
    /// a `select!` arm without a guard.
    pub async fn due(&self) {
        until(self.due_at).await
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Sleeps until `at`; forever when it is `None`. The optional deadline of a `select!` arm.
pub async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINGER: Duration = Duration::from_millis(500);

    #[test]
    fn a_full_batch_is_returned_by_the_push_that_fills_it() {
        let now = Instant::now();
        let mut batcher = Batcher::new(3, LINGER);
        assert_eq!(batcher.push(1, now), None);
        assert_eq!(batcher.push(2, now), None);
        assert_eq!(batcher.push(3, now), Some(vec![1, 2, 3]));
        assert!(batcher.is_empty());
        assert_eq!(batcher.due_at(), None, "an empty batcher has no deadline");
        assert_eq!(batcher.push(4, now), None);
        assert_eq!(batcher.len(), 1);
    }

    #[test]
    fn the_deadline_starts_with_the_first_item_and_not_the_later_ones() {
        let start = Instant::now();
        let mut batcher = Batcher::new(10, LINGER);
        assert_eq!(batcher.due_at(), None);
        batcher.push("a", start);
        batcher.push("b", start + Duration::from_millis(400));
        assert_eq!(batcher.due_at(), Some(start + LINGER));
        assert_eq!(batcher.take(), vec!["a", "b"]);
        assert_eq!(batcher.due_at(), None);
        // The next batch gets its own full linger.
        let later = start + Duration::from_secs(2);
        batcher.push("c", later);
        assert_eq!(batcher.due_at(), Some(later + LINGER));
    }

    #[test]
    fn a_full_batch_resets_the_deadline() {
        let start = Instant::now();
        let mut batcher = Batcher::new(2, LINGER);
        batcher.push(1, start);
        assert!(batcher.push(2, start).is_some());
        assert_eq!(batcher.due_at(), None, "nothing in hand, nothing due");
        batcher.push(3, start + LINGER * 2);
        assert_eq!(batcher.due_at(), Some(start + LINGER * 3));
    }

    #[test]
    fn shutdown_drains_what_is_in_hand_due_or_not() {
        let now = Instant::now();
        let mut batcher = Batcher::new(10, LINGER);
        assert!(batcher.take().is_empty(), "draining nothing gives nothing");
        batcher.push(1, now);
        batcher.push(2, now);
        assert_eq!(batcher.len(), 2);
        assert_eq!(batcher.take(), vec![1, 2]);
        assert!(batcher.is_empty());
        assert_eq!(batcher.due_at(), None);
    }

    #[test]
    fn a_batch_of_zero_is_a_batch_of_one() {
        let mut batcher = Batcher::new(0, LINGER);
        assert_eq!(batcher.push('x', Instant::now()), Some(vec!['x']));
    }

    #[tokio::test(start_paused = true)]
    async fn due_waits_for_the_deadline_and_forever_while_empty() {
        let mut batcher = Batcher::new(10, LINGER);
        let waited = tokio::time::timeout(Duration::from_secs(3600), batcher.due()).await;
        assert!(waited.is_err(), "an empty batcher is never due");
        let start = Instant::now();
        batcher.push(1, start);
        batcher.due().await;
        assert_eq!(Instant::now() - start, LINGER);
        assert_eq!(batcher.take(), vec![1]);
    }
}
