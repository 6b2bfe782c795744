//! Who has gone quiet: the last time each server was heard from, on this process's monotonic
//! clock, and which servers announced a planned stop.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use flick_shared::wire::ServerId;

#[derive(Debug, Default)]
pub struct OfflineWatch {
    heard: HashMap<ServerId, Instant>,
    stopping: HashSet<ServerId>,
}

impl OfflineWatch {
    /// `server` sent a sample now.
    pub fn heard(&mut self, server: &ServerId, now: Instant) {
        match self.heard.get_mut(server) {
            Some(at) => *at = now,
            None => {
                self.heard.insert(server.clone(), now);
            }
        }
        self.stopping.remove(server);
    }

    /// `server`'s collector announced a planned stop.
    pub fn stopping(&mut self, server: &ServerId) {
        if self.heard.contains_key(server) {
            self.stopping.insert(server.clone());
        }
    }

    pub fn forget(&mut self, server: &ServerId) {
        self.heard.remove(server);
        self.stopping.remove(server);
    }

    /// Servers silent for longer than their timeout (`timeout_for`, or `after_stop` once they
    /// announced a stop), with how long they have been silent.
    pub fn silent(
        &self,
        now: Instant,
        timeout_for: impl Fn(&ServerId) -> Option<Duration>,
        after_stop: Duration,
    ) -> Vec<(ServerId, Duration)> {
        self.heard
            .iter()
            .filter_map(|(server, at)| {
                let silence = now.saturating_duration_since(*at);
                let timeout = timeout_for(server)?;
                let timeout = if self.stopping.contains(server) {
                    after_stop.max(timeout)
                } else {
                    timeout
                };
                (silence >= timeout).then(|| (server.clone(), silence))
            })
            .collect()
    }

    pub fn servers(&self) -> impl Iterator<Item = &ServerId> {
        self.heard.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_counts_from_the_last_sample_and_a_planned_stop_waits_longer() {
        let start = Instant::now();
        let (a, b) = (
            ServerId::parse("a").expect("valid"),
            ServerId::parse("b").expect("valid"),
        );
        let mut watch = OfflineWatch::default();
        watch.heard(&a, start);
        watch.heard(&b, start);
        watch.stopping(&b);
        let timeout = |_: &ServerId| Some(Duration::from_secs(30));
        let after_stop = Duration::from_secs(600);
        assert!(
            watch
                .silent(start + Duration::from_secs(29), timeout, after_stop)
                .is_empty()
        );
        let silent = watch.silent(start + Duration::from_secs(31), timeout, after_stop);
        assert_eq!(
            silent.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>(),
            vec![a.clone()]
        );
        assert_eq!(
            watch
                .silent(start + Duration::from_secs(601), timeout, after_stop)
                .len(),
            2
        );
        watch.heard(&b, start + Duration::from_secs(602));
        assert_eq!(
            watch
                .silent(start + Duration::from_secs(640), timeout, after_stop)
                .len(),
            2,
            "a new sample clears the stop"
        );
        assert!(
            watch
                .silent(start + Duration::from_secs(640), |_| None, after_stop)
                .is_empty(),
            "offline rule disabled"
        );
    }
}
