//! The collector's bounded local buffer: every sample stays here until JetStream has
//! acknowledged it, so a NATS outage shorter than the buffer loses nothing.
//!
//! Entries carry a sequence number. Sending walks forward through the buffer; an
//! acknowledgement marks one entry done; a failure rewinds sending to the oldest entry not yet
//! acknowledged, and the stream's duplicate window absorbs whatever was stored but not
//! acknowledged. When the buffer is full the oldest entry is dropped and counted.

use std::collections::VecDeque;

use bytes::Bytes;

/// One message ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub subject: String,
    pub message_id: String,
    pub payload: Bytes,
}

#[derive(Debug)]
struct Entry {
    message: Outgoing,
    acked: bool,
}

#[derive(Debug)]
pub struct Outbox {
    entries: VecDeque<Entry>,
    /// Sequence number of `entries[0]`.
    base: u64,
    /// Sequence number of the next entry to send.
    cursor: u64,
    capacity: usize,
    dropped_unreported: u64,
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::with_capacity(capacity.min(4_096)),
            base: 0,
            cursor: 0,
            capacity: capacity.max(1),
            dropped_unreported: 0,
        }
    }

    /// Adds a message, dropping the oldest one when full.
    pub fn push(&mut self, message: Outgoing) {
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
            self.base += 1;
            self.cursor = self.cursor.max(self.base);
            self.dropped_unreported += 1;
        }
        self.entries.push_back(Entry {
            message,
            acked: false,
        });
    }

    /// The next message to send with its sequence number, skipping acknowledged ones.
    pub fn next_to_send(&mut self) -> Option<(u64, Outgoing)> {
        loop {
            let index = usize::try_from(self.cursor - self.base).ok()?;
            let entry = self.entries.get(index)?;
            let seq = self.cursor;
            self.cursor += 1;
            if !entry.acked {
                return Some((seq, entry.message.clone()));
            }
        }
    }

    /// Marks `seq` as stored by JetStream and releases every acknowledged entry at the front.
    /// An entry already dropped for room is ignored.
    pub fn ack(&mut self, seq: u64) {
        if let Some(entry) = seq
            .checked_sub(self.base)
            .and_then(|index| usize::try_from(index).ok())
            .and_then(|index| self.entries.get_mut(index))
        {
            entry.acked = true;
        }
        while self.entries.front().is_some_and(|entry| entry.acked) {
            self.entries.pop_front();
            self.base += 1;
        }
        self.cursor = self.cursor.max(self.base);
    }

    /// After a failure: send again from the oldest unacknowledged entry, in order.
    pub fn rewind(&mut self) {
        self.cursor = self.base;
    }

    /// Entries not yet acknowledged.
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|entry| !entry.acked).count()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries waiting to be sent (not in flight, not acknowledged).
    pub fn has_unsent(&self) -> bool {
        usize::try_from(self.cursor - self.base)
            .map(|index| self.entries.iter().skip(index).any(|entry| !entry.acked))
            .unwrap_or(false)
    }

    /// How many entries were dropped for room since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped_unreported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(n: u32) -> Outgoing {
        Outgoing {
            subject: "s".into(),
            message_id: n.to_string(),
            payload: Bytes::from(n.to_string()),
        }
    }

    fn id(next: Option<(u64, Outgoing)>) -> Option<String> {
        next.map(|(_, m)| m.message_id)
    }

    #[test]
    fn sends_in_order_and_forgets_what_was_acked() {
        let mut outbox = Outbox::new(10);
        for n in 0..3 {
            outbox.push(message(n));
        }
        let (first, _) = outbox.next_to_send().expect("first");
        let (second, _) = outbox.next_to_send().expect("second");
        assert_eq!((first, second), (0, 1));
        outbox.ack(first);
        assert_eq!(outbox.len(), 2);
        assert!(outbox.has_unsent());
        assert_eq!(id(outbox.next_to_send()), Some("2".into()));
        assert!(!outbox.has_unsent());
        assert_eq!(outbox.next_to_send(), None);
        outbox.ack(1);
        outbox.ack(2);
        assert!(outbox.is_empty());
    }

    #[test]
    fn a_failure_resends_everything_unacked_in_order_but_not_what_was_acked() {
        let mut outbox = Outbox::new(10);
        for n in 0..4 {
            outbox.push(message(n));
        }
        for _ in 0..4 {
            outbox.next_to_send();
        }
        outbox.ack(0);
        outbox.ack(2); // stored out of order; 1 and 3 failed
        outbox.rewind();
        assert_eq!(id(outbox.next_to_send()), Some("1".into()));
        assert_eq!(id(outbox.next_to_send()), Some("3".into()));
        assert_eq!(outbox.next_to_send(), None);
    }

    #[test]
    fn full_buffer_drops_the_oldest_and_counts_it() {
        let mut outbox = Outbox::new(3);
        for n in 0..5 {
            outbox.push(message(n));
        }
        assert_eq!(outbox.take_dropped(), 2);
        assert_eq!(outbox.take_dropped(), 0);
        assert_eq!(id(outbox.next_to_send()), Some("2".into()));
        // An ack for an entry that was dropped meanwhile is harmless.
        outbox.ack(0);
        assert_eq!(outbox.len(), 3);
    }
}
