//! One threshold of one metric of one server: the pure state machine behind every alert.
//!
//! ```text
//!             value >= threshold                 held for `for`
//!   (ok) ───────────────────────────▶ pending ───────────────────▶ firing ──┐
//!     ▲   ◀─────────────────────────    │                                    │
//!     │        value < threshold        │                                    │
//!     └─────────────────────────────────┴──── value < threshold - margin ◀───┘
//! ```
//! A value that touches the threshold and drops back (79, 81, 79, …) never fires, because the
//! condition must hold for `for`; a value hovering just under the threshold after firing does not
//! resolve, because resolution needs the margin below it. Time is the samples' own time, so
//! replaying the same samples gives the same result.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Where a threshold stands when it is not "ok" (ok is the absence of a phase).
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// The condition holds since `since`, not yet for long enough.
    Pending { since: DateTime<Utc> },
    /// The alert is firing.
    Firing {
        alert_id: Uuid,
        started_at: DateTime<Utc>,
        /// The value that made it fire.
        value: f64,
        threshold: f64,
    },
}

/// A threshold as a rule sets it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub value: f64,
    /// How long the condition must hold before firing (`for`).
    pub hold: chrono::Duration,
    /// How far below the threshold the value must fall to resolve.
    pub margin: f64,
}

/// What one observation did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Unchanged,
    /// The phase changed without an event (pending started or was cancelled).
    Moved(Option<Phase>),
    Fired(Phase),
    /// Resolved: the firing phase that ended.
    Resolved(Phase),
}

/// Observes `value` at `at` against `threshold`, from `current`.
pub fn observe(
    current: Option<&Phase>,
    value: f64,
    at: DateTime<Utc>,
    threshold: &Threshold,
) -> Outcome {
    let above = value >= threshold.value;
    match current {
        None if above && threshold.hold <= chrono::Duration::zero() => {
            Outcome::Fired(firing(value, at, threshold))
        }
        None if above => Outcome::Moved(Some(Phase::Pending { since: at })),
        None => Outcome::Unchanged,
        Some(Phase::Pending { since }) if above && at - *since >= threshold.hold => {
            Outcome::Fired(firing(value, at, threshold))
        }
        Some(Phase::Pending { .. }) if above => Outcome::Unchanged,
        Some(Phase::Pending { .. }) => Outcome::Moved(None),
        Some(firing @ Phase::Firing { .. }) if value < threshold.value - threshold.margin => {
            Outcome::Resolved(firing.clone())
        }
        Some(Phase::Firing { .. }) => Outcome::Unchanged,
    }
}

fn firing(value: f64, at: DateTime<Utc>, threshold: &Threshold) -> Phase {
    Phase::Firing {
        alert_id: Uuid::new_v4(),
        started_at: at,
        value,
        threshold: threshold.value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const T: Threshold = Threshold {
        value: 80.0,
        hold: chrono::Duration::seconds(10),
        margin: 5.0,
    };

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0)
            .single()
            .expect("valid")
    }

    /// Feeds one value a second from `t = 0` and returns the seconds at which it fired and
    /// resolved.
    fn run(values: &[f64], threshold: &Threshold) -> (Vec<i64>, Vec<i64>) {
        let mut phase: Option<Phase> = None;
        let (mut fired, mut resolved) = (Vec::new(), Vec::new());
        for (second, value) in values.iter().enumerate() {
            let second = second as i64;
            match observe(phase.as_ref(), *value, at(second), threshold) {
                Outcome::Unchanged => {}
                Outcome::Moved(next) => phase = next,
                Outcome::Fired(next) => {
                    fired.push(second);
                    phase = Some(next);
                }
                Outcome::Resolved(_) => {
                    resolved.push(second);
                    phase = None;
                }
            }
        }
        (fired, resolved)
    }

    #[test]
    fn fires_once_after_the_hold_and_resolves_once_below_the_margin() {
        let mut values = vec![50.0; 5];
        values.extend([95.0; 20]);
        values.extend([50.0; 5]);
        let (fired, resolved) = run(&values, &T);
        assert_eq!(fired, vec![15], "10 s after the first value above");
        assert_eq!(resolved, vec![25]);
    }

    #[test]
    fn a_value_oscillating_across_the_threshold_never_fires() {
        let values: Vec<f64> = (0..120)
            .map(|s| if s % 2 == 0 { 79.0 } else { 81.0 })
            .collect();
        assert_eq!(run(&values, &T), (vec![], vec![]));
        let mut held = values;
        held.extend([81.0; 11]);
        assert_eq!(
            run(&held, &T).0,
            vec![129],
            "81 from t=119 held past `for` fires once, at 129"
        );
    }

    #[test]
    fn hovering_just_under_the_threshold_does_not_resolve() {
        let mut values = vec![90.0; 12];
        values.extend([79.0, 76.0, 78.0, 77.0]);
        assert_eq!(
            run(&values, &T),
            (vec![10], vec![]),
            "76..79 is within the 5-point margin"
        );
        values.push(74.9);
        assert_eq!(run(&values, &T).1, vec![16]);
    }

    #[test]
    fn a_zero_hold_fires_on_the_first_value_above() {
        let instant = Threshold {
            hold: chrono::Duration::zero(),
            ..T
        };
        assert_eq!(run(&[10.0, 85.0, 85.0, 10.0], &instant), (vec![1], vec![3]));
    }

    #[test]
    fn firing_remembers_what_fired_it() {
        match observe(Some(&Phase::Pending { since: at(0) }), 93.5, at(10), &T) {
            Outcome::Fired(Phase::Firing {
                value,
                threshold,
                started_at,
                ..
            }) => {
                assert_eq!((value, threshold, started_at), (93.5, 80.0, at(10)));
            }
            other => panic!("expected to fire, got {other:?}"),
        }
    }
}
