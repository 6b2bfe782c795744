//! One outage, a few log lines: a WARN when a dependency (NATS, PostgreSQL) stops answering, a
//! reminder now and then while it stays away, one INFO when it is back.
//!
//! A retry loop that logs every failed attempt turns an 11-second NATS restart into a hundred
//! ERROR lines, which buries whatever else happened and pages whoever alerts on ERROR. Every
//! attempt is still visible at DEBUG.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a lasting outage is mentioned again.
pub const REMIND_EVERY: Duration = Duration::from_secs(30);

/// What a call logged (for the tests; callers ignore it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Said {
    /// The outage began: one WARN.
    Began,
    /// Still failing, and `REMIND_EVERY` has passed since the last line: one WARN.
    Reminder,
    /// Another failed attempt within the same outage: DEBUG only.
    Quiet,
    /// Back after an outage: one INFO.
    Ended,
    /// Healthy, and it was already: nothing.
    Nothing,
}

#[derive(Debug)]
struct State {
    /// When the outage began, and the failed attempts since.
    down: Option<(Instant, u64)>,
    last_line: Instant,
}

/// The log of one dependency's outages (`what`: "NATS", "PostgreSQL").
#[derive(Debug)]
pub struct Outage {
    what: &'static str,
    remind_every: Duration,
    state: Mutex<State>,
}

impl Outage {
    pub fn new(what: &'static str) -> Self {
        Self::with_reminder(what, REMIND_EVERY)
    }

    pub fn with_reminder(what: &'static str, remind_every: Duration) -> Self {
        Self {
            what,
            remind_every,
            state: Mutex::new(State {
                down: None,
                last_line: Instant::now(),
            }),
        }
    }

    /// Whether an outage is going on.
    pub fn is_down(&self) -> bool {
        self.lock().down.is_some()
    }

    /// An attempt failed with `error`.
    pub fn failed(&self, error: &dyn std::fmt::Display) -> Said {
        self.failed_at(Instant::now(), error)
    }

    /// It answers again.
    pub fn recovered(&self) -> Said {
        self.recovered_at(Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent: keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn failed_at(&self, now: Instant, error: &dyn std::fmt::Display) -> Said {
        let what = self.what;
        let mut state = self.lock();
        match &mut state.down {
            None => {
                state.down = Some((now, 1));
                state.last_line = now;
                tracing::warn!(error = %error, "{what} unavailable; retrying (one line every {}s while it lasts)", self.remind_every.as_secs());
                Said::Began
            }
            Some((since, attempts)) => {
                *attempts += 1;
                let (since, attempts) = (*since, *attempts);
                if now.duration_since(state.last_line) >= self.remind_every {
                    state.last_line = now;
                    tracing::warn!(
                        error = %error,
                        attempts,
                        "{what} still unavailable after {}s",
                        now.duration_since(since).as_secs()
                    );
                    Said::Reminder
                } else {
                    tracing::debug!(error = %error, attempts, "{what} still unavailable");
                    Said::Quiet
                }
            }
        }
    }

    pub fn recovered_at(&self, now: Instant) -> Said {
        let what = self.what;
        let mut state = self.lock();
        match state.down.take() {
            Some((since, attempts)) => {
                state.last_line = now;
                tracing::info!(
                    attempts,
                    "{what} available again after {:.1}s",
                    now.duration_since(since).as_secs_f64()
                );
                Said::Ended
            }
            None => Said::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_a_warning_a_reminder_every_interval_and_one_info() {
        let outage = Outage::with_reminder("NATS", Duration::from_secs(30));
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_millis(secs * 100);
        assert_eq!(
            outage.recovered_at(t0),
            Said::Nothing,
            "healthy: nothing to say"
        );
        assert_eq!(outage.failed_at(at(0), &"refused"), Said::Began);
        assert!(outage.is_down());
        // 11 s of attempts every 100 ms: no more lines.
        for tenth in 1..110 {
            assert_eq!(outage.failed_at(at(tenth), &"refused"), Said::Quiet);
        }
        assert_eq!(outage.recovered_at(at(110)), Said::Ended);
        assert!(!outage.is_down());

        // A long one: a reminder every 30 s, not more.
        let said: Vec<Said> = (200..=900)
            .map(|tenth| outage.failed_at(at(tenth), &"refused"))
            .filter(|said| *said != Said::Quiet)
            .collect();
        assert_eq!(said, [Said::Began, Said::Reminder, Said::Reminder]);
        assert_eq!(outage.recovered_at(at(901)), Said::Ended);
        assert_eq!(outage.recovered_at(at(902)), Said::Nothing);
    }
}
