//! A client's outgoing queue, bounded whatever the client does.
//!
//! Answers and alerts wait in order (at most `max_queued`; beyond that the client is too far
//! behind and is disconnected). Metrics keep one slot per watched server holding the newest
//! frame: a newer sample replaces an unsent older one, and a server watched with an interval is
//! sent at most once per interval (its newest value). A server being replayed (`since`) holds
//! its live frames until the replay ends, and then sends only those newer than the last replayed
//! sample. A fleet subscription keeps the newest headline of every visible server and sends them
//! together, at most once per its interval.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;

use flick_shared::wire::ServerId;

#[derive(Debug)]
struct Slot {
    /// The newest unsent frame and its sample's time.
    frame: Option<(Utf8Bytes, DateTime<Utc>)>,
    interval: Duration,
    next_allowed: Instant,
    /// A replay is being sent: live frames wait.
    holding: bool,
    /// The last replayed sample: live frames up to it are duplicates.
    floor: Option<DateTime<Utc>>,
}

/// A fleet subscription: the servers it may see and their newest unsent headlines.
#[derive(Debug)]
struct Fleet {
    interval: Duration,
    next_allowed: Instant,
    visible: HashSet<ServerId>,
    pending: HashMap<ServerId, Utf8Bytes>,
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
    fleet: Option<Fleet>,
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
        // A fleet subscriber may gain any server (enrolled, or given to its user).
        state.fleet.is_some()
            || state.slots.contains_key(server)
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

    /// A sample of a watched server taken at `at`: replaces the unsent one, if any.
    pub fn push_metric(&self, server: &ServerId, frame: Utf8Bytes, at: DateTime<Utc>) {
        let mut state = self.lock();
        let Some(slot) = state.slots.get_mut(server) else {
            return;
        };
        let replaced = slot.frame.replace((frame, at)).is_some();
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

    /// Watches `server`; `holding` when a replay will be sent first (see [`Self::replayed`]).
    pub fn watch(&self, server: &ServerId, interval: Duration, holding: bool) {
        self.lock().slots.insert(
            server.clone(),
            Slot {
                frame: None,
                interval,
                next_allowed: Instant::now(),
                holding,
                floor: None,
            },
        );
    }

    /// The time of the held live frame of `server`, if any: a replay goes on until it has sent
    /// that far, so that nothing between the two is missing.
    pub fn held_since(&self, server: &ServerId) -> Option<DateTime<Utc>> {
        self.lock()
            .slots
            .get(server)
            .and_then(|slot| slot.frame.as_ref().map(|(_, at)| *at))
    }

    /// The replay of `server` has been sent up to `until`: live frames flow again, those not
    /// newer than `until` dropped.
    pub fn replayed(&self, server: &ServerId, until: Option<DateTime<Utc>>) {
        let mut state = self.lock();
        if let Some(slot) = state.slots.get_mut(server) {
            slot.holding = false;
            slot.floor = until;
        }
        drop(state);
        self.notify.notify_one();
    }

    /// Starts (or changes) the fleet subscription: headlines of `visible` servers, at most once
    /// per `interval`.
    pub fn watch_fleet(&self, interval: Duration, visible: HashSet<ServerId>) {
        let mut state = self.lock();
        let pending = state
            .fleet
            .take()
            .map(|fleet| fleet.pending)
            .unwrap_or_default();
        state.fleet = Some(Fleet {
            interval,
            next_allowed: Instant::now(),
            pending: pending
                .into_iter()
                .filter(|(server, _)| visible.contains(server))
                .collect(),
            visible,
        });
    }

    /// `false` when there was no fleet subscription.
    pub fn unwatch_fleet(&self) -> bool {
        self.lock().fleet.take().is_some()
    }

    pub fn watches_fleet(&self) -> bool {
        self.lock().fleet.is_some()
    }

    /// Replaces the servers a fleet subscription may see.
    pub fn set_fleet_visible(&self, visible: HashSet<ServerId>) {
        if let Some(fleet) = &mut self.lock().fleet {
            fleet.pending.retain(|server, _| visible.contains(server));
            fleet.visible = visible;
        }
    }

    /// A server's headline for the fleet subscription, if it may see that server (`true`).
    pub fn push_fleet(&self, server: &ServerId, headline: Utf8Bytes) -> bool {
        let mut state = self.lock();
        let Some(fleet) = &mut state.fleet else {
            return false;
        };
        if !fleet.visible.contains(server) {
            return false;
        }
        fleet.pending.insert(server.clone(), headline);
        drop(state);
        self.notify.notify_one();
        true
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

    /// Whether this client receives every server's alerts (it subscribed as an admin).
    pub fn alerts_all(&self) -> bool {
        matches!(self.lock().alerts, AlertScope::All)
    }

    pub fn overflowed(&self) -> bool {
        self.lock().overflowed
    }

    /// Moves the frames to send now into `frames` (answers and alerts first), and says when the
    /// next held-back one may go. `frames` is the connection's own, reused between wake-ups.
    pub fn ready(&self, now: Instant, frames: &mut Vec<Utf8Bytes>) -> Option<Instant> {
        let mut state = self.lock();
        let state = &mut *state;
        frames.extend(state.control.drain(..));
        let mut next: Option<Instant> = None;
        let mut later = |at: Instant| next = Some(next.map_or(at, |n| n.min(at)));
        for slot in state.slots.values_mut() {
            if slot.holding {
                continue;
            }
            let Some((_, at)) = &slot.frame else {
                continue;
            };
            if slot.floor.is_some_and(|floor| *at <= floor) {
                slot.frame = None;
            } else if slot.next_allowed <= now {
                frames.extend(slot.frame.take().map(|(frame, _)| frame));
                slot.next_allowed = now + slot.interval;
            } else {
                later(slot.next_allowed);
            }
        }
        if let Some(fleet) = &mut state.fleet
            && !fleet.pending.is_empty()
        {
            if fleet.next_allowed <= now {
                frames.push(super::protocol::fleet_metrics(fleet.pending.values()));
                fleet.pending.clear();
                fleet.next_allowed = now + fleet.interval;
            } else {
                later(fleet.next_allowed);
            }
        }
        next
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

    fn ready(queue: &ClientQueue, now: Instant) -> (Vec<Utf8Bytes>, Option<Instant>) {
        let mut frames = Vec::new();
        let next = queue.ready(now, &mut frames);
        (frames, next)
    }

    fn texts(frames: &[Utf8Bytes]) -> Vec<&str> {
        frames.iter().map(Utf8Bytes::as_str).collect()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("a time")
    }

    #[test]
    fn a_slow_client_gets_the_newest_sample_per_server_and_every_alert() {
        let queue = ClientQueue::new(10);
        queue.watch(&id("a"), Duration::ZERO, false);
        queue.watch(&id("b"), Duration::ZERO, false);
        for n in 0..100 {
            queue.push_metric(&id("a"), format!("a{n}").into(), at(0));
        }
        queue.push_metric(&id("b"), "b0".into(), at(0));
        queue.push_metric(&id("c"), "not watched".into(), at(0));
        queue.push_alert(&id("a"), "alert-a".into());
        queue.push_alert(&id("z"), "alert-z".into());
        let (frames, next) = ready(&queue, Instant::now());
        let mut texts: Vec<&str> = frames.iter().map(Utf8Bytes::as_str).collect();
        assert_eq!(texts.remove(0), "alert-a", "alerts first");
        texts.sort();
        assert_eq!(texts, ["a99", "b0"]);
        assert_eq!(next, None);
    }

    #[test]
    fn an_interval_sends_the_newest_value_at_most_once_per_interval() {
        let queue = ClientQueue::new(10);
        queue.watch(&id("a"), Duration::from_secs(5), false);
        let start = Instant::now();
        queue.push_metric(&id("a"), "1".into(), at(0));
        assert_eq!(ready(&queue, start).0.len(), 1);
        queue.push_metric(&id("a"), "2".into(), at(0));
        queue.push_metric(&id("a"), "3".into(), at(0));
        let (frames, next) = ready(&queue, start + Duration::from_secs(1));
        assert!(frames.is_empty());
        assert_eq!(next, Some(start + Duration::from_secs(5)));
        let (frames, _) = ready(&queue, start + Duration::from_secs(5));
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

    #[test]
    fn a_replayed_server_holds_live_frames_then_drops_those_already_replayed() {
        let queue = ClientQueue::new(10);
        queue.watch(&id("a"), Duration::ZERO, true);
        queue.push_metric(&id("a"), "live 5".into(), at(5));
        assert!(
            ready(&queue, Instant::now()).0.is_empty(),
            "held during the replay"
        );
        assert_eq!(queue.held_since(&id("a")), Some(at(5)));
        // The replay reached the held sample: it is not sent twice.
        queue.replayed(&id("a"), Some(at(5)));
        assert!(ready(&queue, Instant::now()).0.is_empty());
        queue.push_metric(&id("a"), "live 6".into(), at(6));
        assert_eq!(texts(&ready(&queue, Instant::now()).0), ["live 6"]);
        // A replay that ended before the held sample: it follows.
        queue.watch(&id("b"), Duration::ZERO, true);
        queue.push_metric(&id("b"), "live 9".into(), at(9));
        queue.replayed(&id("b"), Some(at(8)));
        assert_eq!(texts(&ready(&queue, Instant::now()).0), ["live 9"]);
    }

    #[test]
    fn the_fleet_gets_the_newest_headline_of_each_visible_server_once_per_interval() {
        let queue = ClientQueue::new(10);
        queue.watch_fleet(Duration::from_secs(1), HashSet::from([id("a"), id("b")]));
        let start = Instant::now();
        queue.push_fleet(&id("a"), "11".into());
        queue.push_fleet(&id("a"), "12".into());
        queue.push_fleet(&id("b"), "21".into());
        queue.push_fleet(&id("z"), "99".into());
        let (frames, _) = ready(&queue, start);
        let frame: serde_json::Value = serde_json::from_str(frames[0].as_str()).expect("json");
        let mut samples: Vec<String> = frame["data"]["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .map(ToString::to_string)
            .collect();
        samples.sort();
        assert_eq!(samples, ["12", "21"], "{frame}");
        queue.push_fleet(&id("b"), "22".into());
        let (frames, next) = ready(&queue, start + Duration::from_millis(500));
        assert!(frames.is_empty());
        assert_eq!(next, Some(start + Duration::from_secs(1)));
        // Given away meanwhile: its pending headline goes with it.
        queue.set_fleet_visible(HashSet::from([id("a")]));
        assert!(ready(&queue, start + Duration::from_secs(1)).0.is_empty());
        assert!(
            queue.concerns(&id("new")),
            "a fleet subscriber may gain any server"
        );
        assert!(queue.unwatch_fleet());
        assert!(!queue.concerns(&id("new")));
    }
}
