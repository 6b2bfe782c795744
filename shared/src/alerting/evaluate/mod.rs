//! Every server's alert state, advanced by samples and by silence, producing one `AlertEvent`
//! per transition. Pure: no clock, no I/O; the caller passes the time and persists what changed.
//!
//! Container alerts ([`containers`]) are decided here too, from the container lists that ride
//! on samples, so they share the persisted phases and the exactly-once commits.
//!
//! The alerter runs it live over the metrics stream; the gateway's backtest
//! ([`super::backtest`]) runs the very same code over stored samples, so a preview cannot
//! disagree with what the alerter would have done.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::wire::{AlertEvent, AlertSeverity, AlertState, MetricSample, ServerId, WIRE_VERSION};

use super::rules::{Metric, RuleSet};
use super::threshold::{Outcome, Phase, observe};

/// One alert's identity: a server, a metric, a severity and a container. Warning and critical
/// are separate alerts, so a value climbing to 95 % fires "warning" then "critical", and falling
/// back resolves "critical" then "warning". The container's name is empty for the alerts of the
/// host itself; a container alert is one per container ([`containers`]).
pub type Key = (ServerId, Metric, AlertSeverity, String);

/// The key of one of the host's own alerts (no container).
pub fn host_key(server: &ServerId, metric: Metric, severity: AlertSeverity) -> Key {
    (server.clone(), metric, severity, String::new())
}

pub mod containers;

#[derive(Debug, Default)]
pub struct Evaluator {
    phases: HashMap<Key, Phase>,
    /// Keys whose phase changed since the last [`Evaluator::take_changes`].
    changed: HashSet<Key>,
    hostnames: HashMap<ServerId, String>,
    /// What container alerts remember beyond their phases (recent restart counts).
    containers: containers::Memory,
}

impl Evaluator {
    /// Resumes from persisted phases.
    pub fn resume(phases: HashMap<Key, Phase>) -> Self {
        Self {
            phases,
            ..Self::default()
        }
    }

    /// Evaluates one sample; transitions are appended to `events` (firings from warning up,
    /// resolutions from critical down).
    pub fn observe(
        &mut self,
        sample: &MetricSample,
        rules: &RuleSet,
        events: &mut Vec<AlertEvent>,
    ) {
        let server = &sample.server_id;
        if let Some(host) = &sample.hostname
            && self.hostnames.get(server) != Some(host)
        {
            self.hostnames.insert(server.clone(), host.clone());
        }
        for metric in Metric::SAMPLED {
            let rule = rules.rule(server.as_str(), metric);
            let Some(value) = metric.value(sample) else {
                continue;
            };
            let mut fired = Vec::new();
            let mut resolved = Vec::new();
            for severity in [AlertSeverity::Warning, AlertSeverity::Critical] {
                let key = host_key(server, metric, severity);
                let Some(threshold) = rule.threshold(severity) else {
                    // Disabled or removed: a firing alert ends, a pending one is forgotten.
                    if let Some(phase @ Phase::Firing { .. }) = self.set(&key, None) {
                        resolved.push(self.event(
                            &key,
                            &phase,
                            AlertState::Resolved,
                            Some(value),
                            sample.timestamp,
                        ));
                    }
                    continue;
                };
                match observe(self.phases.get(&key), value, sample.timestamp, &threshold) {
                    Outcome::Unchanged => {}
                    Outcome::Moved(next) => {
                        self.set(&key, next);
                    }
                    Outcome::Fired(phase) => {
                        fired.push(self.event(
                            &key,
                            &phase,
                            AlertState::Firing,
                            Some(value),
                            sample.timestamp,
                        ));
                        self.set(&key, Some(phase));
                    }
                    Outcome::Resolved(phase) => {
                        resolved.push(self.event(
                            &key,
                            &phase,
                            AlertState::Resolved,
                            Some(value),
                            sample.timestamp,
                        ));
                        self.set(&key, None);
                    }
                }
            }
            events.extend(fired);
            events.extend(resolved.into_iter().rev());
        }
        if let Some(list) = &sample.containers {
            self.observe_containers(server, list, sample.timestamp, events);
        }
    }

    /// A server that was silent reports again: its offline alert resolves.
    pub fn heard_from(
        &mut self,
        server: &ServerId,
        at: DateTime<Utc>,
        events: &mut Vec<AlertEvent>,
    ) {
        let key = host_key(server, Metric::Offline, AlertSeverity::Critical);
        if let Some(phase @ Phase::Firing { .. }) = self.phases.get(&key).cloned() {
            events.push(self.event(&key, &phase, AlertState::Resolved, None, at));
            self.set(&key, None);
        }
    }

    /// A server silent for longer than its offline timeout (`silent_for` seconds): the offline
    /// alert fires, once.
    pub fn silent(
        &mut self,
        server: &ServerId,
        silent_for: i64,
        at: DateTime<Utc>,
        events: &mut Vec<AlertEvent>,
    ) {
        let key = host_key(server, Metric::Offline, AlertSeverity::Critical);
        if self.phases.contains_key(&key) {
            return;
        }
        let phase = Phase::Firing {
            alert_id: Uuid::new_v4(),
            started_at: at,
            value: silent_for as f64,
            threshold: silent_for as f64,
        };
        events.push(self.event(&key, &phase, AlertState::Firing, None, at));
        self.set(&key, Some(phase));
    }

    /// A server removed from the fleet: whatever fires for it resolves, the rest is forgotten.
    pub fn forget(&mut self, server: &ServerId, at: DateTime<Utc>, events: &mut Vec<AlertEvent>) {
        let keys: Vec<Key> = self
            .phases
            .keys()
            .filter(|(s, _, _, _)| s == server)
            .cloned()
            .collect();
        for key in keys {
            if let Some(phase @ Phase::Firing { .. }) = self.set(&key, None) {
                let event = if key.1.is_container() {
                    self.container_event(
                        &key,
                        &phase,
                        AlertState::Resolved,
                        None,
                        format!("{} alert closed: server removed", key.1.label()),
                        at,
                    )
                } else {
                    self.event(&key, &phase, AlertState::Resolved, None, at)
                };
                events.push(event);
            }
        }
        self.hostnames.remove(server);
        self.containers.forget(server);
    }

    /// The servers with any state (pending or firing).
    pub fn servers(&self) -> HashSet<ServerId> {
        self.phases
            .keys()
            .map(|(server, _, _, _)| server.clone())
            .collect()
    }

    pub fn firing(&self) -> usize {
        self.phases
            .values()
            .filter(|p| matches!(p, Phase::Firing { .. }))
            .count()
    }

    pub fn phase(&self, key: &Key) -> Option<&Phase> {
        self.phases.get(key)
    }

    /// What changed since the last call (`None`: back to ok), for persisting.
    pub fn take_changes(&mut self) -> Vec<(Key, Option<Phase>)> {
        self.changed
            .drain()
            .map(|key| {
                let phase = self.phases.get(&key).cloned();
                (key, phase)
            })
            .collect()
    }

    pub fn has_changes(&self) -> bool {
        !self.changed.is_empty()
    }

    /// Sets a phase (`None`: ok), noting the key as changed only if something changed.
    fn set(&mut self, key: &Key, phase: Option<Phase>) -> Option<Phase> {
        let old = match phase {
            Some(phase) => self.phases.insert(key.clone(), phase),
            None => self.phases.remove(key),
        };
        if old.is_some() || self.phases.contains_key(key) {
            self.changed.insert(key.clone());
        }
        old
    }

    fn event(
        &self,
        key: &Key,
        phase: &Phase,
        state: AlertState,
        value: Option<f64>,
        at: DateTime<Utc>,
    ) -> AlertEvent {
        let (server, metric, severity, _) = key;
        let Phase::Firing {
            alert_id,
            started_at,
            value: fired_at,
            threshold,
        } = phase
        else {
            unreachable!("events are only made for firing phases");
        };
        let host = self
            .hostnames
            .get(server)
            .map_or(server.as_str(), String::as_str);
        let severity_name = match severity {
            AlertSeverity::Warning => "warning",
            AlertSeverity::Critical => "critical",
        };
        let message = match (metric, state) {
            (Metric::Offline, AlertState::Firing) => {
                format!("No sample from {host} for {fired_at:.0} s")
            }
            (Metric::Offline, AlertState::Resolved) => format!("{host} is reporting again"),
            (_, AlertState::Firing) => format!(
                "{} {:.1}{unit} on {host} is above the {severity_name} threshold {threshold}{unit}",
                metric.label(),
                value.unwrap_or(*fired_at),
                unit = metric.unit()
            ),
            (_, AlertState::Resolved) => match value {
                Some(value) => format!(
                    "{} back to {value:.1}{unit} on {host} (below the {severity_name} threshold {threshold}{unit})",
                    metric.label(),
                    unit = metric.unit()
                ),
                None => format!(
                    "{} {severity_name} alert on {host} closed: rule disabled or server removed",
                    metric.label()
                ),
            },
        };
        AlertEvent {
            v: WIRE_VERSION,
            id: Uuid::new_v4(),
            alert_id: *alert_id,
            server_id: server.clone(),
            metric: metric.as_str().to_owned(),
            severity: *severity,
            state,
            value: if *metric == Metric::Offline {
                None
            } else {
                value
            },
            threshold: Some(*threshold),
            started_at: *started_at,
            at,
            message: Some(message),
            top_processes: Vec::new(),
            container: None,
        }
    }

    /// The host's name for messages (its id until a sample named it).
    fn host(&self, server: &ServerId) -> String {
        self.hostnames
            .get(server)
            .map_or_else(|| server.as_str().to_owned(), Clone::clone)
    }
}

#[cfg(test)]
mod tests;
