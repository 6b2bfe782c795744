//! The persister's configuration: `[nats]`, `[streams]`, `[database]`, `[log]`, `[persister]`,
//! `[retention]`.

use serde::Deserialize;

use flick_shared::config::{
    ConfigError, DatabaseSettings, LogSettings, NatsSettings, OpsSettings, StreamSettings,
    Validate, check,
};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub nats: NatsSettings,
    pub streams: StreamSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub persister: PersisterSettings,
    pub retention: RetentionSettings,
}

/// `[persister]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersisterSettings {
    /// A batch is written when it holds this many messages …
    pub batch_size: usize,
    /// … or when its oldest message has waited this long (the storage interval).
    pub flush_interval_ms: u64,
    /// Messages delivered but not yet acknowledged, across all replicas (bounds memory while
    /// the database is away).
    pub max_ack_pending: i64,
    /// How long JetStream waits for an acknowledgement before redelivering. Short, so what a
    /// dead replica held reaches the others within seconds; the messages a live replica holds
    /// are kept alive with in-progress acknowledgements however long their batch waits.
    pub ack_wait_secs: u64,
    /// Batches written at once, each in its own transaction and database connection.
    pub writers: usize,
    /// On shutdown, how long to keep trying to commit the batch in hand.
    pub shutdown_timeout_ms: u64,
    /// `host:port` of `/healthz`, `/readyz` and `/metrics`; empty turns it off.
    pub ops_listen: String,
}

impl Default for PersisterSettings {
    fn default() -> Self {
        Self {
            batch_size: 5_000,
            flush_interval_ms: 1_000,
            max_ack_pending: 50_000,
            ack_wait_secs: 10,
            writers: 2,
            shutdown_timeout_ms: 10_000,
            ops_listen: "127.0.0.1:9101".to_owned(),
        }
    }
}

impl PersisterSettings {
    pub fn ops(&self) -> OpsSettings {
        OpsSettings::on(&self.ops_listen)
    }
}

/// `[retention]`: how long stored data is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Raw samples.
    pub metrics_days: u32,
    /// TimescaleDB only: raw chunks older than this are compressed.
    pub compress_after_days: u32,
    /// TimescaleDB only: the one-minute and one-hour aggregates.
    pub minute_aggregates_days: u32,
    pub hour_aggregates_days: u32,
    pub logs_days: u32,
    /// Resolved alerts and alert transitions (firing alerts are kept until they resolve).
    pub alerts_days: u32,
    /// Top-process lists (one per host every few seconds: large). The processes attached to
    /// an alert live as long as the alert.
    pub processes_days: u32,
    /// How often expired rows are removed.
    pub sweep_interval_secs: u64,
    /// Rows removed per statement on plain PostgreSQL (small batches keep locks short), and
    /// per statement when a deleted server's data is purged.
    pub delete_batch: i64,
    /// How often the data of deleted servers is looked for and removed.
    pub purge_interval_secs: u64,
    /// How long after a deletion purge passes go on (a late message, such as the resolution
    /// of the server's alerts, may still be stored meanwhile).
    pub purge_settle_secs: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            metrics_days: 30,
            compress_after_days: 2,
            minute_aggregates_days: 90,
            hour_aggregates_days: 730,
            logs_days: 30,
            alerts_days: 365,
            processes_days: 7,
            sweep_interval_secs: 300,
            delete_batch: 10_000,
            purge_interval_secs: 5,
            purge_settle_secs: 120,
        }
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
        let p = &self.persister;
        check(
            "persister.batch_size",
            (1..=100_000).contains(&p.batch_size),
            || format!("{} is not in 1..=100000", p.batch_size),
        )?;
        check(
            "persister.flush_interval_ms",
            (10..=600_000).contains(&p.flush_interval_ms),
            || format!("{} is not in 10..=600000", p.flush_interval_ms),
        )?;
        check("persister.writers", (1..=16).contains(&p.writers), || {
            format!("{} is not in 1..=16", p.writers)
        })?;
        check(
            "persister.max_ack_pending",
            p.max_ack_pending >= (p.batch_size * (p.writers + 2)) as i64,
            || "must be at least persister.batch_size x (persister.writers + 2)".into(),
        )?;
        check(
            "persister.ack_wait_secs",
            p.ack_wait_secs >= 2 && p.ack_wait_secs * 1_000 > p.flush_interval_ms,
            || "must be at least 2 and longer than persister.flush_interval_ms".into(),
        )?;
        p.ops().validate("persister.ops_listen")?;
        let r = &self.retention;
        for (name, days) in [
            ("retention.metrics_days", r.metrics_days),
            ("retention.logs_days", r.logs_days),
            ("retention.alerts_days", r.alerts_days),
            ("retention.processes_days", r.processes_days),
            ("retention.minute_aggregates_days", r.minute_aggregates_days),
            ("retention.hour_aggregates_days", r.hour_aggregates_days),
        ] {
            check(name, days >= 1, || "must be at least 1".into())?;
        }
        check(
            "retention.compress_after_days",
            r.compress_after_days < r.metrics_days,
            || "must be less than retention.metrics_days".into(),
        )?;
        check(
            "retention.sweep_interval_secs",
            r.sweep_interval_secs >= 1,
            || "must be >= 1".into(),
        )?;
        check(
            "retention.purge_interval_secs",
            r.purge_interval_secs >= 1,
            || "must be >= 1".into(),
        )?;
        check("retention.delete_batch", r.delete_batch >= 100, || {
            "must be >= 100".into()
        })
    }
}
