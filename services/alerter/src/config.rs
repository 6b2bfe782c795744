//! The alerter's configuration: `[nats]`, `[streams]`, `[database]`, `[log]`, `[encryption]`,
//! `[alerter]`, `[notify]`.

use std::collections::HashMap;

use serde::Deserialize;

use flick_shared::config::{
    ConfigError, DatabaseSettings, EncryptionSettings, LogSettings, NatsSettings, OpsSettings,
    StreamSettings, Validate, check,
};

use flick_shared::alert_defaults as defaults;

use crate::rules::{Metric, Rule, RuleSet};

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

    /// The rules that apply where `alert_rules` has no row.
    pub fn default_rules(&self) -> RuleSet {
        let hold = chrono::Duration::seconds(i64::from(self.for_secs));
        let rule = |warning, critical| Rule {
            warning: Some(warning),
            critical: Some(critical),
            hold,
            margin: self.margin,
            enabled: true,
        };
        RuleSet::new(HashMap::from([
            (Metric::Cpu, rule(self.cpu_warning, self.cpu_critical)),
            (
                Metric::Memory,
                rule(self.memory_warning, self.memory_critical),
            ),
            (Metric::Disk, rule(self.disk_warning, self.disk_critical)),
            (
                Metric::Offline,
                Rule {
                    warning: None,
                    critical: None,
                    hold: chrono::Duration::seconds(i64::from(self.offline_timeout_secs)),
                    margin: 0.0,
                    enabled: true,
                },
            ),
        ]))
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
        for (metric, warning, critical) in [
            ("cpu", a.cpu_warning, a.cpu_critical),
            ("memory", a.memory_warning, a.memory_critical),
            ("disk", a.disk_warning, a.disk_critical),
        ] {
            for (name, value) in [("warning", warning), ("critical", critical)] {
                check(
                    &format!("alerter.{metric}_{name}"),
                    (0.0..=100.0).contains(&value),
                    || format!("{value} is not a percentage"),
                )?;
            }
            check(
                &format!("alerter.{metric}_warning"),
                warning <= critical,
                || format!("{warning} is above alerter.{metric}_critical ({critical})"),
            )?;
        }
        check("alerter.margin", (0.0..=50.0).contains(&a.margin), || {
            format!("{} is not in 0..=50", a.margin)
        })?;
        check(
            "alerter.offline_timeout_secs",
            a.offline_timeout_secs >= 2,
            || "must be at least 2".into(),
        )?;
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
