//! The built-in default rules: what the alerter applies where neither its `[alerter]` section
//! nor `alert_rules` says otherwise, and what the gateway shows until an alerter has recorded
//! the defaults actually in force (`alert_defaults`).

use std::collections::HashMap;

use super::rules::{Metric, Rule, RuleSet};

/// CPU warning / critical, percent.
pub const CPU: (f64, f64) = (80.0, 90.0);
/// Memory warning / critical, percent.
pub const MEMORY: (f64, f64) = (80.0, 90.0);
/// Disk (fullest filesystem) warning / critical, percent.
pub const DISK: (f64, f64) = (85.0, 95.0);
/// Temperature (hottest sensor) warning / critical, °C. The rule is off unless enabled
/// (`alerter.temperature_enabled`, or per server): sensors and their safe ranges differ too
/// much between machines for one default to page.
pub const TEMPERATURE: (f64, f64) = (80.0, 90.0);
/// How long a threshold must be exceeded before its alert fires.
pub const FOR_SECS: u32 = 10;
/// How far below its threshold a value must fall to resolve.
pub const MARGIN: f64 = 5.0;
/// No sample for this long fires `offline`.
pub const OFFLINE_TIMEOUT_SECS: u32 = 30;

/// The figures of an `[alerter]` section that make the default rules, in one place so the
/// alerter's configuration and the built-in defaults cannot map them differently.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    pub cpu: (f64, f64),
    pub memory: (f64, f64),
    pub disk: (f64, f64),
    pub temperature: (f64, f64),
    pub temperature_enabled: bool,
    pub for_secs: u32,
    pub margin: f64,
    pub offline_timeout_secs: u32,
}

impl Default for Figures {
    fn default() -> Self {
        Self {
            cpu: CPU,
            memory: MEMORY,
            disk: DISK,
            temperature: TEMPERATURE,
            temperature_enabled: false,
            for_secs: FOR_SECS,
            margin: MARGIN,
            offline_timeout_secs: OFFLINE_TIMEOUT_SECS,
        }
    }
}

impl Figures {
    /// One rule per metric, every one enabled but temperature's (unless asked for).
    pub fn rules(&self) -> RuleSet {
        let percent = |(warning, critical): (f64, f64)| {
            Rule::percent(warning, critical, self.for_secs, self.margin)
        };
        RuleSet::new(HashMap::from([
            (Metric::Cpu, percent(self.cpu)),
            (Metric::Memory, percent(self.memory)),
            (Metric::Disk, percent(self.disk)),
            (
                Metric::Temperature,
                Rule {
                    enabled: self.temperature_enabled,
                    ..percent(self.temperature)
                },
            ),
            (Metric::Offline, Rule::offline(self.offline_timeout_secs)),
        ]))
    }
}

/// The built-in default rules.
pub fn built_in() -> RuleSet {
    Figures::default().rules()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_rules_are_the_constants() {
        let rules = built_in();
        let cpu = rules.default_rule(Metric::Cpu);
        assert_eq!((cpu.warning, cpu.critical), (Some(CPU.0), Some(CPU.1)));
        assert_eq!(cpu.for_secs(), i64::from(FOR_SECS));
        assert_eq!(rules.default_rule(Metric::Disk).critical, Some(DISK.1));
        let offline = rules.default_rule(Metric::Offline);
        assert_eq!(offline.for_secs(), i64::from(OFFLINE_TIMEOUT_SECS));
        assert_eq!((offline.warning, offline.critical), (None, None));
        for metric in Metric::ALL {
            assert_eq!(
                rules.default_rule(metric).enabled,
                metric != Metric::Temperature,
                "{metric:?}"
            );
            assert_eq!(
                super::super::validate::check(metric, &rules.default_rule(metric)),
                Ok(())
            );
        }
    }
}
