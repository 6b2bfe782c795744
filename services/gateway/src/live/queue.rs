//! A client's outgoing queue, bounded whatever the client does.
//!
//! Answers and alerts wait in order (at most `max_queued`; beyond that the client is too far
//! behind and is disconnected). Metrics keep one slot per watched server holding the newest
//! frame: a newer sample replaces an unsent older one, and a server watched with an interval is
//! sent at most once per interval (its newest value).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use flick_shared::wire::ServerId;

#[derive(Debug)]
struct Slot {
    frame: Option<Utf8Bytes>,
    interval: Duration,
    next_allowed: Instant,
}

/// Which servers' alerts a client receives besides those it watches.
#[derive(Debug, Clone, Default)]
pub enum AlertScope {
    #[default]
    None,
    /// Admins: every server.
    All,
    /// The servers the user could see when subscribing.
    Servers(HashSet<ServerId>),
}

#[derive(Debug, Default)]
struct State {
    control: VecDeque<Utf8Bytes>,
    slots: HashMap<ServerId, Slot>,
    alerts: AlertScope,
    overflowed: bool,
    replaced: u64,
    /// The account, the session or a watched server changed: re-check before sending more.
    recheck: bool,
}

#[derive(Debug)]
pub struct ClientQueue {
    state: Mutex<State>,
    notify: Notify,
    max_queued: usize,
    /// The authenticated user (a connection never changes its user).
    user: std::sync::OnceLock<uuid::Uuid>,
}

impl ClientQueue {
    pub fn new(max_queued: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            max_queued,
            user: std::sync::OnceLock::new(),
        }
    }

    pub fn set_user(&self, user: uuid::Uuid) {
        let _ = self.user.set(user);
    }

    pub fn user(&self) -> Option<uuid::Uuid> {
        self.user.get().copied()
    }

    /// Asks the connection to re-check its access before it sends anything more.
    pub fn request_recheck(&self) {
        self.lock().recheck = true;
        self.notify.notify_one();
    }

    /// Whether a re-check was asked for (and forgets the request).
    pub fn take_recheck(&self) -> bool {
        std::mem::take(&mut self.lock().recheck)
    }

    /// Whether anything this client receives depends on `server`.
    pub fn concerns(&self, server: &ServerId) -> bool {
        let state = self.lock();
        state.slots.contains_key(server)
            || match &state.alerts {
                AlertScope::None | AlertScope::All => false,
                AlertScope::Servers(servers) => servers.contains(server),
            }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An answer or an alert: never dropped; too many waiting marks the client as too slow.
    pub fn push_control(&self, frame: Utf8Bytes) {
        let mut state = self.lock();
        if state.control.len() >= self.max_queued {
            state.overflowed = true;
        } else {
            state.control.push_back(frame);
        }
        drop(state);
        self.notify.notify_one();
    }

    /// A sample of a watched server: replaces the unsent one, if any.
    pub fn push_metric(&self, server: &ServerId, frame: Utf8Bytes) {
        let mut state = self.lock();
        let Some(slot) = state.slots.get_mut(server) else {
            return;
        };
        let replaced = slot.frame.replace(frame).is_some();
        if replaced {
            state.replaced += 1;
            metrics::counter!("flick_gateway_ws_samples_skipped_total").increment(1);
        }
        drop(state);
        self.notify.notify_one();
    }

    /// An alert for `server`, if this client watches it or subscribed to the alerts of its servers.
    pub fn push_alert(&self, server: &ServerId, frame: Utf8Bytes) {
        let wanted = {
            let state = self.lock();
            state.slots.contains_key(server)
                || match &state.alerts {
                    AlertScope::None => false,
                    AlertScope::All => true,
                    AlertScope::Servers(servers) => servers.contains(server),
                }
        };
        if wanted {
            self.push_control(frame);
        }
    }

    pub fn watch(&self, server: &ServerId, interval: Duration) {
        self.lock().slots.insert(
            server.clone(),
            Slot {
                frame: None,
                interval,
                next_allowed: Instant::now(),
            },
        );
    }

    /// `false` when the server was not watched.
    pub fn unwatch(&self, server: &ServerId) -> bool {
        self.lock().slots.remove(server).is_some()
    }

    pub fn watched(&self) -> Vec<ServerId> {
        self.lock().slots.keys().cloned().collect()
    }

    pub fn watching(&self, server: &ServerId) -> bool {
        self.lock().slots.contains_key(server)
    }

    pub fn watch_count(&self) -> usize {
        self.lock().slots.len()
    }

    pub fn set_alerts(&self, scope: AlertScope) {
        self.lock().alerts = scope;
    }

    /// Replaces the servers whose alerts a non-admin receives, if alerts are on.
    pub fn narrow_alerts(&self, visible: &HashSet<ServerId>) {
        if let AlertScope::Servers(servers) = &mut self.lock().alerts {
            servers.clone_from(visible);
        }
    }

    pub fn alerts_limited(&self) -> bool {
        matches!(self.lock().alerts, AlertScope::Servers(_))
    }

    pub fn overflowed(&self) -> bool {
        self.lock().overflowed
    }

    /// Frames to send now (answers and alerts first), and when the next held-back metric may go.
    pub fn ready(&self, now: Instant) -> (Vec<Utf8Bytes>, Option<Instant>) {
        let mut state = self.lock();
        let mut frames: Vec<Utf8Bytes> = state.control.drain(..).collect();
        let mut next = None;
        for slot in state.slots.values_mut() {
            if slot.frame.is_none() {
                continue;
            }
            if slot.next_allowed <= now {
                frames.extend(slot.frame.take());
                slot.next_allowed = now + slot.interval;
            } else {
                next = Some(next.map_or(slot.next_allowed, |n: Instant| n.min(slot.next_allowed)));
            }
        }
        (frames, next)
    }

    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ServerId {
        ServerId::parse(s).expect("valid")
    }

    #[test]
    fn a_slow_client_gets_the_newest_sample_per_server_and_every_alert() {
        let queue = ClientQueue::new(10);
        queue.watch(&id("a"), Duration::ZERO);
        queue.watch(&id("b"), Duration::ZERO);
        for n in 0..100 {
            queue.push_metric(&id("a"), format!("a{n}").into());
        }
        queue.push_metric(&id("b"), "b0".into());
        queue.push_metric(&id("c"), "not watched".into());
        queue.push_alert(&id("a"), "alert-a".into());
        queue.push_alert(&id("z"), "alert-z".into());
        let (frames, next) = queue.ready(Instant::now());
        let mut texts: Vec<&str> = frames.iter().map(Utf8Bytes::as_str).collect();
        assert_eq!(texts.remove(0), "alert-a", "alerts first");
        texts.sort();
        assert_eq!(texts, ["a99", "b0"]);
        assert_eq!(next, None);
    }

    #[test]
    fn an_interval_sends_the_newest_value_at_most_once_per_interval() {
        let queue = ClientQueue::new(10);
        queue.watch(&id("a"), Duration::from_secs(5));
        let start = Instant::now();
        queue.push_metric(&id("a"), "1".into());
        assert_eq!(queue.ready(start).0.len(), 1);
        queue.push_metric(&id("a"), "2".into());
        queue.push_metric(&id("a"), "3".into());
        let (frames, next) = queue.ready(start + Duration::from_secs(1));
        assert!(frames.is_empty());
        assert_eq!(next, Some(start + Duration::from_secs(5)));
        let (frames, _) = queue.ready(start + Duration::from_secs(5));
        assert_eq!(
            frames.iter().map(Utf8Bytes::as_str).collect::<Vec<_>>(),
            ["3"]
        );
    }

    #[test]
    fn too_many_waiting_answers_mark_the_client_too_slow() {
        let queue = ClientQueue::new(3);
        queue.set_alerts(AlertScope::All);
        for _ in 0..4 {
            queue.push_alert(&id("a"), "x".into());
        }
        assert!(queue.overflowed());
    }
}
