//! Container alerts: one per container (keyed by its name), decided from the container lists
//! that ride on samples.
//!
//! - `container_stopped` (critical): a container seen `running` is now `exited` or `dead`.
//!   Resolves when it runs again, or when it is removed. "Seen running" is itself state: a
//!   running container has a `pending` phase under this metric (the arming), persisted with
//!   every other phase, so a new leader replaying the samples after the last commit knows which
//!   containers it must page for, and a container that was already stopped when the collector
//!   first listed it (an old one-off job) never pages.
//! - `container_restarting` (warning): the engine reports it `restarting`, or its restart count
//!   rose by [`LOOP_RESTARTS`] within [`LOOP_WINDOW`]. Resolves once it is not restarting and
//!   its count has not moved for a whole window (hysteresis: a loop passes through `running`
//!   between its crashes), or when it is removed. The recent counts are memory only: after a
//!   failover a loop is recognised again within a window, never fired twice (its firing phase
//!   is persisted) and never resolved before a whole window was watched.
//! - `container_unhealthy` (warning): its health check says `unhealthy`; resolves on any other
//!   verdict, or when it is removed.
//!
//! A sample without a list (no refresh since the previous one, no engine socket) changes
//! nothing: silence never resolves an alert.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::wire::{AlertEvent, AlertSeverity, AlertState, ContainerUsage, ServerId, WIRE_VERSION};

use super::super::rules::Metric;
use super::super::threshold::Phase;
use super::{Evaluator, Key};

/// Restarts within [`LOOP_WINDOW`] that make a restart loop.
pub const LOOP_RESTARTS: u64 = 3;
/// The window over which restarts are counted.
pub const LOOP_WINDOW: Duration = Duration::minutes(5);

/// Restart counts seen recently, per server and container.
#[derive(Debug, Default)]
pub struct Memory {
    restarts: HashMap<(ServerId, String), RestartHistory>,
}

impl Memory {
    pub fn forget(&mut self, server: &ServerId) {
        self.restarts.retain(|(s, _), _| s != server);
    }
}

/// A container's restart counts over the last window, plus the newest one from before it (the
/// baseline the window's restarts are counted from).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RestartHistory {
    seen: VecDeque<(DateTime<Utc>, u64)>,
}

impl RestartHistory {
    /// Records the count at `at`; a count that went down is a new container under the same
    /// name, whose history starts over.
    pub fn record(&mut self, at: DateTime<Utc>, restarts: u64) {
        if self.seen.back().is_some_and(|&(_, last)| last > restarts) {
            self.seen.clear();
        }
        self.seen.push_back((at, restarts));
        let start = at - LOOP_WINDOW;
        while self.seen.len() > 1 && self.seen.get(1).is_some_and(|&(t, _)| t <= start) {
            self.seen.pop_front();
        }
    }

    /// Restarts since the baseline.
    pub fn in_window(&self) -> u64 {
        match (self.seen.front(), self.seen.back()) {
            (Some(&(_, first)), Some(&(_, last))) => last - first,
            _ => 0,
        }
    }

    /// Whether the history reaches back a whole window before `at`.
    pub fn covers_window(&self, at: DateTime<Utc>) -> bool {
        self.seen
            .front()
            .is_some_and(|&(t, _)| t <= at - LOOP_WINDOW)
    }
}

/// What one container alert should be now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Firing (or fires now), with the value the event carries.
    Fire(Option<f64>),
    /// Not firing (resolves if it was).
    Clear,
    /// Leave it as it is (in between: neither fires nor resolves).
    Hold,
}

/// `container_restarting` for a container whose restart history is `history`.
pub fn restarting_verdict(
    container: &ContainerUsage,
    history: &RestartHistory,
    at: DateTime<Utc>,
) -> Verdict {
    let restarts = history.in_window();
    if container.state == "restarting" || restarts >= LOOP_RESTARTS {
        Verdict::Fire(Some(restarts as f64))
    } else if restarts == 0 && history.covers_window(at) {
        Verdict::Clear
    } else {
        Verdict::Hold
    }
}

/// `container_unhealthy` for a container.
pub fn unhealthy_verdict(container: &ContainerUsage) -> Verdict {
    if container.is_unhealthy() {
        Verdict::Fire(None)
    } else {
        Verdict::Clear
    }
}

/// Severity of each container alert.
pub fn severity(metric: Metric) -> AlertSeverity {
    match metric {
        Metric::ContainerStopped => AlertSeverity::Critical,
        _ => AlertSeverity::Warning,
    }
}

fn key(server: &ServerId, metric: Metric, name: &str) -> Key {
    (server.clone(), metric, severity(metric), name.to_owned())
}

/// "exited 137", "dead".
fn how_stopped(container: &ContainerUsage) -> String {
    match container.exit_code {
        Some(code) => format!("{} {code}", container.state),
        None => container.state.clone(),
    }
}

impl Evaluator {
    /// Advances the container alerts of `server` with its newest container list.
    pub(super) fn observe_containers(
        &mut self,
        server: &ServerId,
        list: &[ContainerUsage],
        at: DateTime<Utc>,
        events: &mut Vec<AlertEvent>,
    ) {
        let host = self.host(server);
        let listed: HashSet<&str> = list.iter().map(|c| c.name.as_str()).collect();
        // Removed containers: whatever fires for them resolves, the rest is forgotten.
        let gone: Vec<Key> = self
            .phases
            .keys()
            .filter(|(s, m, _, name)| {
                s == server && m.is_container() && !listed.contains(name.as_str())
            })
            .cloned()
            .collect();
        for key in gone {
            if let Some(phase @ Phase::Firing { .. }) = self.set(&key, None) {
                let message = format!("container {} was removed from {host}", key.3);
                events.push(self.container_event(
                    &key,
                    &phase,
                    AlertState::Resolved,
                    None,
                    message,
                    at,
                ));
            }
        }
        self.containers
            .restarts
            .retain(|(s, name), _| s != server || listed.contains(name.as_str()));

        for container in list {
            let name = container.name.as_str();
            // container_stopped: armed while running, fires when an armed container stops.
            let stopped = key(server, Metric::ContainerStopped, name);
            match self.phases.get(&stopped).cloned() {
                None if container.is_running() => {
                    self.set(&stopped, Some(Phase::Pending { since: at }));
                }
                Some(Phase::Pending { .. }) if container.is_stopped() => {
                    let phase = Phase::Firing {
                        alert_id: Uuid::new_v4(),
                        started_at: at,
                        value: container.exit_code.unwrap_or(0) as f64,
                        threshold: 0.0,
                    };
                    let message = format!(
                        "container {name} stopped ({}) on {host}",
                        how_stopped(container)
                    );
                    events.push(self.container_event(
                        &stopped,
                        &phase,
                        AlertState::Firing,
                        container.exit_code.map(|c| c as f64),
                        message,
                        at,
                    ));
                    self.set(&stopped, Some(phase));
                }
                Some(phase @ Phase::Firing { .. }) if container.is_running() => {
                    let message = format!("container {name} is running again on {host}");
                    events.push(self.container_event(
                        &stopped,
                        &phase,
                        AlertState::Resolved,
                        None,
                        message,
                        at,
                    ));
                    self.set(&stopped, Some(Phase::Pending { since: at }));
                }
                _ => {}
            }

            let history = self
                .containers
                .restarts
                .entry((server.clone(), name.to_owned()))
                .or_default();
            history.record(at, container.restarts);
            let restarting = restarting_verdict(container, history, at);
            self.apply(
                key(server, Metric::ContainerRestarting, name),
                restarting,
                |value| match value {
                    Some(n) if n >= LOOP_RESTARTS as f64 => format!(
                        "container {name} is restarting in a loop ({n:.0} restarts in {} min) on {host}",
                        LOOP_WINDOW.num_minutes()
                    ),
                    _ => format!("container {name} is restarting on {host}"),
                },
                || format!(
                    "container {name} stopped restarting on {host} (no restart for {} min)",
                    LOOP_WINDOW.num_minutes()
                ),
                at,
                events,
            );
            self.apply(
                key(server, Metric::ContainerUnhealthy, name),
                unhealthy_verdict(container),
                |_| format!("container {name} is unhealthy on {host}"),
                || format!("container {name} is healthy again on {host}"),
                at,
                events,
            );
        }
    }

    /// Fires or resolves one container alert after its verdict.
    fn apply(
        &mut self,
        key: Key,
        verdict: Verdict,
        firing: impl FnOnce(Option<f64>) -> String,
        resolved: impl FnOnce() -> String,
        at: DateTime<Utc>,
        events: &mut Vec<AlertEvent>,
    ) {
        let current = self.phases.get(&key).cloned();
        match (verdict, current) {
            (Verdict::Fire(value), None | Some(Phase::Pending { .. })) => {
                let threshold = if key.1 == Metric::ContainerRestarting {
                    LOOP_RESTARTS as f64
                } else {
                    0.0
                };
                let phase = Phase::Firing {
                    alert_id: Uuid::new_v4(),
                    started_at: at,
                    value: value.unwrap_or(0.0),
                    threshold,
                };
                events.push(self.container_event(
                    &key,
                    &phase,
                    AlertState::Firing,
                    value,
                    firing(value),
                    at,
                ));
                self.set(&key, Some(phase));
            }
            (Verdict::Clear, Some(phase @ Phase::Firing { .. })) => {
                events.push(self.container_event(
                    &key,
                    &phase,
                    AlertState::Resolved,
                    None,
                    resolved(),
                    at,
                ));
                self.set(&key, None);
            }
            _ => {}
        }
    }

    /// The event of a container alert's transition.
    pub(super) fn container_event(
        &self,
        key: &Key,
        phase: &Phase,
        state: AlertState,
        value: Option<f64>,
        message: String,
        at: DateTime<Utc>,
    ) -> AlertEvent {
        let (server, metric, severity, container) = key;
        let (alert_id, started_at, threshold) = match phase {
            Phase::Firing {
                alert_id,
                started_at,
                threshold,
                ..
            } => (*alert_id, *started_at, *threshold),
            // Not reached: events are made for firing phases only.
            Phase::Pending { since } => (Uuid::nil(), *since, 0.0),
        };
        AlertEvent {
            v: WIRE_VERSION,
            id: Uuid::new_v4(),
            alert_id,
            server_id: server.clone(),
            metric: metric.as_str().to_owned(),
            severity: *severity,
            state,
            value,
            threshold: (*metric == Metric::ContainerRestarting).then_some(threshold),
            started_at,
            at,
            message: Some(message),
            top_processes: Vec::new(),
            container: Some(container.clone()),
        }
    }
}

#[cfg(test)]
mod tests;
