//! Per-second rates from monotonically increasing counters (bytes read, bytes received).
//!
//! Rates are computed over the real time between two readings, not an assumed interval: a tick
//! that fires late must not inflate a rate, and a counter that goes backwards (an interface
//! re-created, a device re-attached) restarts from zero instead of producing a huge number.

use std::collections::HashMap;
use std::time::Duration;

/// Counter value `current` after `previous`, over `elapsed`, as a whole number per second.
pub fn per_second(previous: u64, current: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 || current < previous {
        return 0;
    }
    ((current - previous) as f64 / secs).round() as u64
}

/// Remembers the last reading of named counter pairs (rx/tx, read/write) to turn new readings
/// into rates. Names not seen in a reading are forgotten, so the map tracks what exists.
#[derive(Debug, Default)]
pub struct CounterRates {
    last: HashMap<String, (u64, u64)>,
}

impl CounterRates {
    /// Rates for every `(name, first, second)` reading; a name seen for the first time has no
    /// rate yet and is reported as 0.
    pub fn update<'a>(
        &mut self,
        readings: impl IntoIterator<Item = (&'a str, u64, u64)>,
        elapsed: Duration,
    ) -> Vec<(String, u64, u64)> {
        let mut next = HashMap::with_capacity(self.last.len());
        let mut rates = Vec::with_capacity(self.last.len());
        for (name, first, second) in readings {
            let (rate_first, rate_second) = match self.last.get(name) {
                Some(&(p1, p2)) => (
                    per_second(p1, first, elapsed),
                    per_second(p2, second, elapsed),
                ),
                None => (0, 0),
            };
            rates.push((name.to_owned(), rate_first, rate_second));
            next.insert(name.to_owned(), (first, second));
        }
        self.last = next;
        rates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_real_elapsed_time() {
        assert_eq!(per_second(1_000, 3_000, Duration::from_secs(2)), 1_000);
        assert_eq!(per_second(1_000, 3_000, Duration::from_millis(500)), 4_000);
        assert_eq!(per_second(0, 1, Duration::from_secs(1)), 1);
    }

    #[test]
    fn a_counter_reset_or_no_time_gives_zero_not_garbage() {
        assert_eq!(per_second(5_000, 10, Duration::from_secs(1)), 0);
        assert_eq!(per_second(10, 20, Duration::ZERO), 0);
    }

    #[test]
    fn tracks_names_as_they_come_and_go() {
        let mut rates = CounterRates::default();
        let second = Duration::from_secs(1);
        assert_eq!(
            rates.update([("eth0", 100, 10)], second),
            vec![("eth0".into(), 0, 0)]
        );
        assert_eq!(
            rates.update([("eth0", 300, 20), ("wlan0", 5, 5)], second),
            vec![("eth0".into(), 200, 10), ("wlan0".into(), 0, 0)]
        );
        // eth0 vanished and came back with a reset counter: no spike.
        rates.update([("wlan0", 6, 6)], second);
        assert_eq!(
            rates.update([("eth0", 50, 5)], second),
            vec![("eth0".into(), 0, 0)]
        );
    }
}
