//! The alerter's configuration: `[nats]`, `[streams]`, `[database]`, `[log]`, `[encryption]`,
//! `[alerter]`, `[notify]`.

use serde::Deserialize;

use flick_shared::config::{
    ConfigError, DatabaseSettings, EncryptionSettings, LogSettings, NatsSettings, OpsSettings,
    StreamSettings, Validate, check,
};

use flick_shared::alerting::defaults::{self, Figures};
use flick_shared::alerting::validate::{self, Field};

use crate::rules::{Metric, RuleSet};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub nats: NatsSettings,
    pub streams: StreamSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub encryption: EncryptionSettings,
    pub alerter: AlerterSettings,
    pub notify: flick_shared::outbound::NotifySettings,
}

/// `[alerter]`: the default rules and how the alerter runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlerterSettings {
    pub cpu_warning: f64,
    pub cpu_critical: f64,
    pub memory_warning: f64,
    pub memory_critical: f64,
    pub disk_warning: f64,
    pub disk_critical: f64,
    /// The hottest sensor, °C; the rule is off unless `temperature_enabled`.
    pub temperature_warning: f64,
    pub temperature_critical: f64,
    pub temperature_enabled: bool,
    /// How long a threshold must be exceeded before its alert fires (`for`).
    pub for_secs: u32,
    /// How far below its threshold a value must fall for the alert to resolve (hysteresis).
    pub margin: f64,
    /// No sample for this long fires `offline`.
    pub offline_timeout_secs: u32,
    /// After a collector announced a planned stop, how long before `offline` fires.
    pub offline_after_stop_secs: u32,
    /// How often rules, the server list and notification channels are re-read.
    pub reload_interval_ms: u64,
    /// How often a standby tries to take the lease.
    pub lease_poll_ms: u64,
    /// Messages evaluated and committed together, at most …
    pub batch_size: usize,
    /// … gathered for at most this long (it bounds the added alert latency).
    pub batch_wait_ms: u64,
    /// Notifications: one attempt's time limit …
    pub notify_timeout_ms: u64,
    /// … and how long to keep retrying a failing channel before giving up.
    pub notify_give_up_secs: u64,
    /// Transitions are gathered this long after the first before one notice per channel goes
    /// out (50 servers going offline together: one message); 0 sends at once.
    pub notify_group_secs: u64,
    /// An acknowledged incident stays acknowledged while it flaps, until it has stayed
    /// resolved this long.
    pub ack_clear_secs: u64,
    /// `host:port` of `/healthz`, `/readyz`, `/metrics`; empty turns it off.
    pub ops_listen: String,
}

impl Default for AlerterSettings {
    fn default() -> Self {
        Self {
            cpu_warning: defaults::CPU.0,
            cpu_critical: defaults::CPU.1,
            memory_warning: defaults::MEMORY.0,
            memory_critical: defaults::MEMORY.1,
            disk_warning: defaults::DISK.0,
            disk_critical: defaults::DISK.1,
            temperature_warning: defaults::TEMPERATURE.0,
            temperature_critical: defaults::TEMPERATURE.1,
            temperature_enabled: false,
            for_secs: defaults::FOR_SECS,
            margin: defaults::MARGIN,
            offline_timeout_secs: defaults::OFFLINE_TIMEOUT_SECS,
            offline_after_stop_secs: 600,
            reload_interval_ms: 2_000,
            lease_poll_ms: 1_000,
            batch_size: 1_000,
            batch_wait_ms: 10,
            notify_timeout_ms: 5_000,
            notify_give_up_secs: 300,
            notify_group_secs: 30,
            ack_clear_secs: 600,
            ops_listen: "127.0.0.1:9102".to_owned(),
        }
    }
}

impl AlerterSettings {
    pub fn ops(&self) -> OpsSettings {
        OpsSettings::on(&self.ops_listen)
    }

    /// The figures of this section that make the default rules.
    pub fn figures(&self) -> Figures {
        Figures {
            cpu: (self.cpu_warning, self.cpu_critical),
            memory: (self.memory_warning, self.memory_critical),
            disk: (self.disk_warning, self.disk_critical),
            temperature: (self.temperature_warning, self.temperature_critical),
            temperature_enabled: self.temperature_enabled,
            for_secs: self.for_secs,
            margin: self.margin,
            offline_timeout_secs: self.offline_timeout_secs,
        }
    }

    /// The rules that apply where `alert_rules` has no row.
    pub fn default_rules(&self) -> RuleSet {
        self.figures().rules()
    }
}

impl AlerterSettings {
    /// The same checks as every rule set through the gateway: a default the dashboard would
    /// refuse is refused here too, naming the setting.
    fn validate_default_rules(&self) -> Result<(), ConfigError> {
        let rules = self.default_rules();
        for metric in Metric::ALL {
            validate::check(metric, &rules.default_rule(metric))
                .map_err(|err| ConfigError::new(setting(metric, err.field), err.message))?;
        }
        Ok(())
    }
}

/// The setting of `[alerter]` a refused part of a default rule comes from.
fn setting(metric: Metric, field: Field) -> String {
    match (metric, field) {
        (Metric::Offline, _) => "alerter.offline_timeout_secs".to_owned(),
        (_, Field::ForSecs) => "alerter.for_secs".to_owned(),
        (_, Field::Margin) => "alerter.margin".to_owned(),
        (_, Field::Warning) => format!("alerter.{}_warning", metric.as_str()),
        (_, Field::Critical) => format!("alerter.{}_critical", metric.as_str()),
    }
}

impl flick_shared::service::ServiceConfig for Config {
    fn log(&self) -> &LogSettings {
        &self.log
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), ConfigError> {
        self.nats.validate()?;
        self.streams.validate()?;
        self.database.validate()?;
        self.log.validate()?;
        self.encryption.validate()?;
        self.notify.validate()?;
        let a = &self.alerter;
        a.validate_default_rules()?;
        check(
            "alerter.batch_size",
            (1..=50_000).contains(&a.batch_size),
            || format!("{} is not in 1..=50000", a.batch_size),
        )?;
        check(
            "alerter.lease_poll_ms",
            (50..=10_000).contains(&a.lease_poll_ms),
            || format!("{} is not in 50..=10000", a.lease_poll_ms),
        )?;
        a.ops().validate("alerter.ops_listen")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_rule_the_gateway_would_refuse_is_refused_naming_its_setting() {
        assert!(AlerterSettings::default().validate_default_rules().is_ok());
        let cases = [
            (
                AlerterSettings {
                    disk_warning: 99.0,
                    ..Default::default()
                },
                "alerter.disk_warning",
            ),
            (
                AlerterSettings {
                    memory_critical: 101.0,
                    ..Default::default()
                },
                "alerter.memory_critical",
            ),
            (
                AlerterSettings {
                    margin: 60.0,
                    ..Default::default()
                },
                "alerter.margin",
            ),
            (
                AlerterSettings {
                    for_secs: 90_000,
                    ..Default::default()
                },
                "alerter.for_secs",
            ),
            (
                AlerterSettings {
                    offline_timeout_secs: 1,
                    ..Default::default()
                },
                "alerter.offline_timeout_secs",
            ),
        ];
        for (settings, setting) in cases {
            let err = settings.validate_default_rules().expect_err(setting);
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid configuration: {setting}: ")),
                "{setting}: {err}"
            );
        }
    }
}
