//! The alerter's default rules, recorded in `alert_defaults` so that the gateway shows the
//! defaults in force rather than ones read from its own environment.
//!
//! Which replica's defaults are recorded, when replicas are configured differently: every
//! replica records its own at start only where none are recorded yet (so the dashboard is
//! right even while every replica stands by), and each leader records its own at the start of
//! every leadership term, overwriting. So once a leader runs, the table holds the defaults the
//! evaluating replica applies; `recorded_by` names it. The `[alerter]` section is read only at
//! start, so these two moments are every time the configuration is loaded or comes into force.

use sqlx::PgPool;

use crate::rules::{Metric, RuleSet};

/// Whether recorded defaults are replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Only where none are recorded (a replica starting).
    IfAbsent,
    /// Always (a leader starting its term).
    Overwrite,
}

/// Records the default rule of every metric of `rules` as `replica`'s; returns the rows written.
#[tracing::instrument(skip_all, fields(replica = %replica, mode = ?mode))]
pub async fn record(
    pool: &PgPool,
    rules: &RuleSet,
    replica: &str,
    mode: Record,
) -> Result<u64, sqlx::Error> {
    let rules: Vec<_> = Metric::ALL
        .iter()
        .map(|metric| (metric.as_str(), rules.default_rule(*metric)))
        .collect();
    let written = sqlx::query(
        "INSERT INTO alert_defaults (metric, warning, critical, for_secs, margin, enabled, recorded_by, updated_at)
         SELECT u.*, $7, now()
         FROM UNNEST($1::text[], $2::float8[], $3::float8[], $4::int4[], $5::float8[], $6::bool[])
             AS u(metric, warning, critical, for_secs, margin, enabled)
         ON CONFLICT (metric) DO UPDATE SET warning = EXCLUDED.warning, critical = EXCLUDED.critical,
             for_secs = EXCLUDED.for_secs, margin = EXCLUDED.margin, enabled = EXCLUDED.enabled,
             recorded_by = EXCLUDED.recorded_by, updated_at = now()
         WHERE $8",
    )
    .bind(rules.iter().map(|(m, _)| *m).collect::<Vec<_>>())
    .bind(rules.iter().map(|(_, r)| r.warning).collect::<Vec<_>>())
    .bind(rules.iter().map(|(_, r)| r.critical).collect::<Vec<_>>())
    .bind(
        rules
            .iter()
            .map(|(_, r)| i32::try_from(r.for_secs()).unwrap_or(i32::MAX))
            .collect::<Vec<_>>(),
    )
    .bind(rules.iter().map(|(_, r)| r.margin).collect::<Vec<_>>())
    .bind(rules.iter().map(|(_, r)| r.enabled).collect::<Vec<_>>())
    .bind(replica)
    .bind(mode == Record::Overwrite)
    .execute(pool)
    .await?
    .rows_affected();
    tracing::debug!(written, "Recorded the default alert rules");
    Ok(written)
}

/// [`record`], with a failure logged: the dashboard then shows older (or built-in) defaults,
/// which is no reason to stop evaluating alerts.
pub async fn record_or_warn(pool: &PgPool, rules: &RuleSet, replica: &str, mode: Record) {
    if let Err(err) = record(pool, rules, replica, mode).await {
        tracing::warn!(error = %err, ?mode, "Cannot record the default alert rules for the dashboard");
    }
}
