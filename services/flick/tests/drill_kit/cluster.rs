//! Watching a NATS cluster drill: how long the metrics stream took no message, and how long
//! each service was not ready, around the death of a node.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;

use super::{Endpoints, is_ready};

/// One JetStream API answer at most this long: a stream without a leader does not answer, and
/// the watch must go on polling rather than wait for the client's own timeout.
const POLL_ANSWER: Duration = Duration::from_secs(1);

/// Polls the metrics stream's last sequence every 100 ms: while it does not move, JetStream is
/// taking no message from any producer (a 1,000-server load publishes one every millisecond).
pub struct StreamProgress {
    seen: Arc<Mutex<Vec<(Instant, u64)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StreamProgress {
    pub fn start(js: &jetstream::Context, stream: String) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let js = js.clone();
            let seen = seen.clone();
            async move {
                loop {
                    let last = tokio::time::timeout(POLL_ANSWER, async {
                        let mut handle = js.get_stream(&stream).await.ok()?;
                        handle
                            .info()
                            .await
                            .ok()
                            .map(|info| info.state.last_sequence)
                    })
                    .await;
                    if let Ok(Some(last_sequence)) = last {
                        lock(&seen).push((Instant::now(), last_sequence));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Self { seen, task }
    }

    /// The longest time between `from` and `to` during which the last sequence did not move
    /// (counted from `from` until the first move after it).
    pub fn longest_stall(&self, from: Instant, to: Instant) -> Duration {
        let seen = lock(&self.seen);
        let mut last = seen
            .iter()
            .take_while(|(at, _)| *at <= from)
            .last()
            .map_or(0, |(_, sequence)| *sequence);
        let mut moved = from;
        let mut longest = Duration::ZERO;
        for &(at, sequence) in seen.iter().filter(|(at, _)| *at > from && *at <= to) {
            if sequence > last {
                longest = longest.max(at - moved);
                moved = at;
                last = sequence;
            }
        }
        longest.max(to.saturating_duration_since(moved))
    }
}

impl Drop for StreamProgress {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// When a poll was answered, and whether each service was ready.
type Poll = (Instant, [bool; 3]);

/// How often [`ReadinessWatch`] asks: a service that reconnects to another node faster than this
/// is never seen not ready.
pub const READINESS_POLL: Duration = Duration::from_millis(100);

/// Polls every service's `/readyz` every [`READINESS_POLL`], side by side.
pub struct ReadinessWatch {
    services: [&'static str; 3],
    seen: Arc<Mutex<Vec<Poll>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadinessWatch {
    pub fn start(endpoints: &Endpoints) -> Self {
        let all = endpoints.all();
        let services = all.map(|(service, _)| service);
        let bases = all.map(|(_, base)| base.to_owned());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                loop {
                    let (a, b, c) = tokio::join!(
                        is_ready(&bases[0]),
                        is_ready(&bases[1]),
                        is_ready(&bases[2])
                    );
                    lock(&seen).push((Instant::now(), [a, b, c]));
                    tokio::time::sleep(READINESS_POLL).await;
                }
            }
        });
        Self {
            services,
            seen,
            task,
        }
    }

    /// For each service, how long after `from` it answered 200 again after the last time it
    /// did not, before `to`; `None` when it was ready at every poll (the node it was connected
    /// to was not the one that died, or it moved before a poll saw it).
    pub fn ready_again_after(
        &self,
        from: Instant,
        to: Instant,
    ) -> Vec<(&'static str, Option<Duration>)> {
        let seen = lock(&self.seen);
        let window: Vec<&Poll> = seen
            .iter()
            .filter(|(at, _)| *at > from && *at <= to)
            .collect();
        self.services
            .iter()
            .enumerate()
            .map(|(i, service)| {
                let last_down = window.iter().rposition(|(_, ready)| !ready[i]);
                let again = last_down
                    .map(|down| window.get(down + 1).map_or(to - from, |(at, _)| *at - from));
                (*service, again)
            })
            .collect()
    }

    /// Whether every service answered 200 at the last poll.
    pub fn all_ready_now(&self) -> bool {
        lock(&self.seen)
            .last()
            .is_some_and(|(_, ready)| ready.iter().all(|r| *r))
    }
}

impl Drop for ReadinessWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `persister ready at every poll, alerter 1.2 s, gateway ready at every poll`.
pub fn ready_figures(times: &[(&str, Option<Duration>)]) -> String {
    times
        .iter()
        .map(|(service, time)| match time {
            Some(time) => format!("{service} {}", super::secs(*time)),
            None => format!("{service} ready at every poll"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
