//! What is watched and at which thresholds: defaults from the alerter's configuration (recorded
//! in `alert_defaults` for the gateway to show), per-server overrides from the `alert_rules`
//! table (edited through the gateway).

use std::collections::HashMap;

use chrono::Duration;

use crate::wire::{AlertSeverity, MetricSample};

use super::threshold::Threshold;

/// A watched figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    Cpu,
    Memory,
    Disk,
    /// The hottest sensor, °C: an optional rule (off by default), for hosts with sensors; a
    /// sample without sensors leaves it as it is.
    Temperature,
    /// No sample for longer than the rule's `for` duration.
    Offline,
    /// A container seen running is stopped (`exited`, `dead`): critical, one per container.
    ContainerStopped,
    /// A container restarting in a loop: in state `restarting`, or restarted
    /// [`super::evaluate::containers::LOOP_RESTARTS`] times within
    /// [`super::evaluate::containers::LOOP_WINDOW`]: warning.
    ContainerRestarting,
    /// A container whose health check says `unhealthy`: warning.
    ContainerUnhealthy,
}

impl Metric {
    /// The metrics read from each sample.
    pub const SAMPLED: [Metric; 4] = [
        Metric::Cpu,
        Metric::Memory,
        Metric::Disk,
        Metric::Temperature,
    ];
    /// Every metric with a rule. Container alerts have none: they fire on what the engine
    /// reports (a state, a health verdict), not on a threshold, whenever the collector reports
    /// containers.
    pub const ALL: [Metric; 5] = [
        Metric::Cpu,
        Metric::Memory,
        Metric::Disk,
        Metric::Temperature,
        Metric::Offline,
    ];
    /// The alerts about one container, keyed by its name.
    pub const CONTAINER: [Metric; 3] = [
        Metric::ContainerStopped,
        Metric::ContainerRestarting,
        Metric::ContainerUnhealthy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cpu => "cpu",
            Metric::Memory => "memory",
            Metric::Disk => "disk",
            Metric::Temperature => "temperature",
            Metric::Offline => "offline",
            Metric::ContainerStopped => "container_stopped",
            Metric::ContainerRestarting => "container_restarting",
            Metric::ContainerUnhealthy => "container_unhealthy",
        }
    }

    /// Whether this is one of the [`Metric::CONTAINER`] alerts.
    pub fn is_container(self) -> bool {
        Metric::CONTAINER.contains(&self)
    }

    pub fn parse(name: &str) -> Option<Metric> {
        match name {
            "cpu" => Some(Metric::Cpu),
            "memory" => Some(Metric::Memory),
            "disk" => Some(Metric::Disk),
            "temperature" => Some(Metric::Temperature),
            "offline" => Some(Metric::Offline),
            "container_stopped" => Some(Metric::ContainerStopped),
            "container_restarting" => Some(Metric::ContainerRestarting),
            "container_unhealthy" => Some(Metric::ContainerUnhealthy),
            _ => None,
        }
    }

    /// For messages: "CPU usage".
    pub fn label(self) -> &'static str {
        match self {
            Metric::Cpu => "CPU usage",
            Metric::Memory => "Memory usage",
            Metric::Disk => "Disk usage",
            Metric::Temperature => "Temperature",
            Metric::Offline => "Offline",
            Metric::ContainerStopped => "Container stopped",
            Metric::ContainerRestarting => "Container restarting",
            Metric::ContainerUnhealthy => "Container unhealthy",
        }
    }

    /// The unit of its values and thresholds, as messages write it after a number.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::Temperature => " °C",
            _ => " %",
        }
    }

    /// This metric's value in a sample (percent; °C for temperature).
    pub fn value(self, sample: &MetricSample) -> Option<f64> {
        match self {
            Metric::Cpu => Some(sample.cpu_usage),
            Metric::Memory => Some(sample.memory_usage),
            Metric::Disk => Some(sample.disk_usage),
            Metric::Temperature => crate::wire::hottest_celsius(&sample.temperatures),
            Metric::Offline
            | Metric::ContainerStopped
            | Metric::ContainerRestarting
            | Metric::ContainerUnhealthy => None,
        }
    }
}

/// One metric's rule. For `offline`, `hold` is the silence that fires it and the thresholds are
/// unused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub hold: Duration,
    pub margin: f64,
    pub enabled: bool,
}

impl Rule {
    /// What a metric without any rule gets: nothing fires.
    pub const DISABLED: Rule = Rule {
        warning: None,
        critical: None,
        hold: Duration::zero(),
        margin: 0.0,
        enabled: false,
    };

    /// An enabled rule of a percentage metric.
    pub fn percent(warning: f64, critical: f64, for_secs: u32, margin: f64) -> Rule {
        Rule {
            warning: Some(warning),
            critical: Some(critical),
            hold: Duration::seconds(i64::from(for_secs)),
            margin,
            enabled: true,
        }
    }

    /// The enabled `offline` rule: `timeout_secs` of silence fires it.
    pub fn offline(timeout_secs: u32) -> Rule {
        Rule {
            warning: None,
            critical: None,
            hold: Duration::seconds(i64::from(timeout_secs)),
            margin: 0.0,
            enabled: true,
        }
    }

    /// The `for` duration in whole seconds, as `alert_rules.for_secs` stores it.
    pub fn for_secs(&self) -> i64 {
        self.hold.num_seconds()
    }

    pub fn threshold(&self, severity: AlertSeverity) -> Option<Threshold> {
        if !self.enabled {
            return None;
        }
        let value = match severity {
            AlertSeverity::Warning => self.warning?,
            AlertSeverity::Critical => self.critical?,
        };
        Some(Threshold {
            value,
            hold: self.hold,
            margin: self.margin,
        })
    }
}

/// The rules in force: a default per metric, and per-server overrides that replace it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    defaults: HashMap<Metric, Rule>,
    overrides: HashMap<(String, Metric), Rule>,
}

impl RuleSet {
    pub fn new(defaults: HashMap<Metric, Rule>) -> Self {
        Self {
            defaults,
            overrides: HashMap::new(),
        }
    }

    pub fn with_overrides(mut self, overrides: HashMap<(String, Metric), Rule>) -> Self {
        self.overrides = overrides;
        self
    }

    pub fn overrides(&self) -> &HashMap<(String, Metric), Rule> {
        &self.overrides
    }

    /// The rule for `metric` on `server`; a metric with no default is disabled.
    pub fn rule(&self, server: &str, metric: Metric) -> Rule {
        self.overrides
            .get(&(server.to_owned(), metric))
            .copied()
            .unwrap_or_else(|| self.default_rule(metric))
    }

    /// The rule for `metric` where no server overrides it; disabled if there is none.
    pub fn default_rule(&self, metric: Metric) -> Rule {
        self.defaults
            .get(&metric)
            .copied()
            .unwrap_or(Rule::DISABLED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(warning: f64, critical: f64) -> Rule {
        Rule::percent(warning, critical, 10, 5.0)
    }

    #[test]
    fn an_override_replaces_the_default_for_its_server_only() {
        let set = RuleSet::new(HashMap::from([(Metric::Cpu, rule(80.0, 90.0))])).with_overrides(
            HashMap::from([(("db-1".to_owned(), Metric::Cpu), rule(95.0, 99.0))]),
        );
        assert_eq!(set.rule("web-1", Metric::Cpu).warning, Some(80.0));
        assert_eq!(set.rule("db-1", Metric::Cpu).critical, Some(99.0));
        assert!(
            !set.rule("web-1", Metric::Disk).enabled,
            "no default: disabled"
        );
    }

    #[test]
    fn a_disabled_rule_has_no_thresholds() {
        let disabled = Rule {
            enabled: false,
            ..rule(80.0, 90.0)
        };
        assert_eq!(disabled.threshold(AlertSeverity::Warning), None);
        assert_eq!(
            rule(80.0, 90.0)
                .threshold(AlertSeverity::Critical)
                .map(|t| t.value),
            Some(90.0)
        );
    }
}
