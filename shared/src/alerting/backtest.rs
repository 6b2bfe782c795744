//! What a rule would have fired over past samples: the alerter's own [`Evaluator`], fed stored
//! samples in timestamp order instead of the live stream. It is the same code, not a second
//! implementation, so a preview matches what the alerter does with the same samples (the
//! alerter evaluates by the samples' own timestamps, never by the clock).
//!
//! Only the previewed metric has a rule; `offline` is not replayed (it depends on when samples
//! did *not* arrive, which stored samples cannot tell apart from retention or deletion).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::wire::{AlertEvent, AlertSeverity, AlertState, MetricSample};

use super::evaluate::Evaluator;
use super::rules::{Metric, Rule, RuleSet};

/// One alert the rule would have fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub alert_id: Uuid,
    pub severity: AlertSeverity,
    pub fired_at: DateTime<Utc>,
    /// `None`: still firing at the last sample.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The highest value from firing to resolution.
    pub peak: f64,
    pub threshold: f64,
}

/// What a replay found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// In the order they fired.
    pub alerts: Vec<Alert>,
    /// Every transition, as the alerter would have published it.
    pub transitions: Vec<AlertEvent>,
    pub samples: u64,
}

/// A replay of one metric's rule; feed it samples with [`Backtest::observe`] in timestamp
/// order, then [`Backtest::finish`].
#[derive(Debug)]
pub struct Backtest {
    metric: Metric,
    rules: RuleSet,
    evaluator: Evaluator,
    report: Report,
    /// Firing alerts: their index in `report.alerts`.
    open: HashMap<Uuid, usize>,
    events: Vec<AlertEvent>,
}

impl Backtest {
    /// A replay of `rule` for `metric`, from a state where nothing is pending or firing.
    pub fn new(metric: Metric, rule: Rule) -> Self {
        Self {
            metric,
            rules: RuleSet::new(HashMap::from([(metric, rule)])),
            evaluator: Evaluator::default(),
            report: Report::default(),
            open: HashMap::new(),
            events: Vec::new(),
        }
    }

    pub fn observe(&mut self, sample: &MetricSample) {
        self.report.samples += 1;
        self.evaluator
            .observe(sample, &self.rules, &mut self.events);
        for event in self.events.drain(..) {
            match event.state {
                AlertState::Firing => {
                    self.open.insert(event.alert_id, self.report.alerts.len());
                    self.report.alerts.push(Alert {
                        alert_id: event.alert_id,
                        severity: event.severity,
                        fired_at: event.at,
                        resolved_at: None,
                        peak: event.value.unwrap_or(f64::NAN),
                        threshold: event.threshold.unwrap_or(f64::NAN),
                    });
                }
                AlertState::Resolved => {
                    if let Some(alert) = self
                        .open
                        .remove(&event.alert_id)
                        .and_then(|i| self.report.alerts.get_mut(i))
                    {
                        alert.resolved_at = Some(event.at);
                    }
                }
            }
            self.report.transitions.push(event);
        }
        if let Some(value) = self.metric.value(sample) {
            for &i in self.open.values() {
                if let Some(alert) = self.report.alerts.get_mut(i) {
                    alert.peak = alert.peak.max(value);
                }
            }
        }
    }

    /// Samples observed so far.
    pub fn samples(&self) -> u64 {
        self.report.samples
    }

    pub fn finish(self) -> Report {
        self.report
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::wire::ServerId;

    fn at(second: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + second, 0)
            .single()
            .expect("valid")
    }

    fn replay(metric: Metric, rule: Rule, values: &[f64]) -> Report {
        let server = ServerId::parse("web-1").expect("id");
        let mut backtest = Backtest::new(metric, rule);
        for (second, value) in values.iter().enumerate() {
            let second = i64::try_from(second).expect("small");
            let mut sample = MetricSample::minimal(server.clone(), at(second), 10.0, 10.0, 10.0, 0);
            match metric {
                Metric::Cpu => sample.cpu_usage = *value,
                Metric::Memory => sample.memory_usage = *value,
                _ => sample.disk_usage = *value,
            }
            backtest.observe(&sample);
        }
        backtest.finish()
    }

    #[test]
    fn a_hot_minute_gives_a_warning_and_a_critical_with_their_times_and_peaks() {
        let mut values = vec![50.0; 60];
        values.extend([95.0; 15]);
        values.push(97.0);
        values.extend([95.0; 14]);
        values.extend([50.0; 60]);
        let report = replay(Metric::Memory, Rule::percent(80.0, 90.0, 10, 5.0), &values);
        assert_eq!(report.samples, 150);
        let summary: Vec<_> = report
            .alerts
            .iter()
            .map(|a| (a.severity, a.fired_at, a.resolved_at, a.peak, a.threshold))
            .collect();
        assert_eq!(
            summary,
            [
                (AlertSeverity::Warning, at(70), Some(at(90)), 97.0, 80.0),
                (AlertSeverity::Critical, at(70), Some(at(90)), 97.0, 90.0),
            ]
        );
        assert_eq!(report.transitions.len(), 4);
        assert!(report.transitions.iter().all(|e| e.metric == "memory"));
    }

    #[test]
    fn an_alert_firing_at_the_end_has_no_resolution_and_other_metrics_are_ignored() {
        let mut values = vec![50.0; 5];
        values.extend([85.0; 20]);
        let report = replay(Metric::Disk, Rule::percent(80.0, 90.0, 0, 5.0), &values);
        assert_eq!(report.alerts.len(), 1);
        assert_eq!(report.alerts[0].fired_at, at(5));
        assert_eq!(report.alerts[0].resolved_at, None);
        let disabled = Rule {
            enabled: false,
            ..Rule::percent(80.0, 90.0, 0, 5.0)
        };
        assert_eq!(replay(Metric::Disk, disabled, &values).alerts, []);
    }
}
