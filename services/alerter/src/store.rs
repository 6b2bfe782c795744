//! Everything the alerter keeps in PostgreSQL: rules, alert state, the outbox of transitions,
//! its progress in the metrics stream with the leader's fencing epoch, and notification
//! channels.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use flick_shared::wire::{AlertEvent, AlertSeverity, ServerId};

use crate::evaluate::Key;
use crate::evaluate::threshold::Phase;
use crate::rules::{Metric, Rule, RuleSet};

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Another replica became leader: this one must stop.
    #[error("another alerter replica took the lease (epoch {0} is no longer current)")]
    Fenced(i64),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A transition waiting to be published: its subject and exact JSON.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: Uuid,
    pub subject: String,
    pub payload: String,
    pub event: Option<AlertEvent>,
}

fn severity_str(severity: AlertSeverity) -> &'static str {
    match severity {
        AlertSeverity::Warning => "warning",
        AlertSeverity::Critical => "critical",
    }
}

fn severity_parse(text: &str) -> Option<AlertSeverity> {
    match text {
        "warning" => Some(AlertSeverity::Warning),
        "critical" => Some(AlertSeverity::Critical),
        _ => None,
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    /// The metrics stream whose progress this is (one row per installation prefix).
    stream: String,
}

/// One `alert_rules` row: server, metric, warning, critical, for_secs, margin, enabled.
type RuleRow = (
    String,
    String,
    Option<f32>,
    Option<f32>,
    i32,
    Option<f32>,
    bool,
);

/// One `alert_state` row.
type StateRow = (
    String,
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    Option<Uuid>,
    Option<f64>,
    Option<f64>,
);

impl Store {
    pub fn new(pool: PgPool, stream: String) -> Self {
        Self { pool, stream }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Starts a leadership term: bumps the fencing epoch and returns it with the stream sequence
    /// up to which everything is committed.
    /// `None` as the sequence: no leader ever ran for this stream.
    pub async fn begin_term(&self, leader: &str) -> Result<(i64, Option<u64>), sqlx::Error> {
        let (epoch, sequence): (i64, Option<i64>) = sqlx::query_as(
            "INSERT INTO alerter_progress (stream, epoch, leader) VALUES ($1, 1, $2)
             ON CONFLICT (stream) DO UPDATE
                SET epoch = alerter_progress.epoch + 1, leader = EXCLUDED.leader, updated_at = now()
             RETURNING epoch, sequence",
        )
        .bind(&self.stream)
        .bind(leader)
        .fetch_one(&self.pool)
        .await?;
        Ok((epoch, sequence.map(|s| u64::try_from(s).unwrap_or(0))))
    }

    /// Every pending or firing threshold.
    pub async fn load_phases(&self) -> Result<HashMap<Key, Phase>, sqlx::Error> {
        let rows: Vec<StateRow> = sqlx::query_as(
            "SELECT server_id, metric, severity, container, phase, since, alert_id, value, threshold
             FROM alert_state",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut phases = HashMap::with_capacity(rows.len());
        for (server, metric, severity, container, phase, since, alert_id, value, threshold) in rows
        {
            let (Ok(server), Some(metric), Some(severity)) = (
                ServerId::parse(server),
                Metric::parse(&metric),
                severity_parse(&severity),
            ) else {
                continue;
            };
            let phase = match (phase.as_str(), alert_id) {
                ("firing", Some(alert_id)) => Phase::Firing {
                    alert_id,
                    started_at: since,
                    value: value.unwrap_or(0.0),
                    threshold: threshold.unwrap_or(0.0),
                },
                _ => Phase::Pending { since },
            };
            phases.insert((server, metric, severity, container), phase);
        }
        Ok(phases)
    }

    /// The default rules with the per-server overrides of `alert_rules`.
    pub async fn load_rules(
        &self,
        defaults: &RuleSet,
        default_margin: f64,
    ) -> Result<RuleSet, sqlx::Error> {
        let rows: Vec<RuleRow> = sqlx::query_as(
            "SELECT server_id, metric, warning, critical, for_secs, margin, enabled FROM alert_rules",
        )
        .fetch_all(&self.pool)
        .await?;
        let overrides = rows
            .into_iter()
            .filter_map(
                |(server, metric, warning, critical, for_secs, margin, enabled)| {
                    let metric = Metric::parse(&metric)?;
                    let rule = Rule {
                        warning: warning.map(f64::from),
                        critical: critical.map(f64::from),
                        hold: chrono::Duration::seconds(i64::from(for_secs)),
                        margin: margin.map_or(default_margin, f64::from),
                        enabled,
                    };
                    Some(((server, metric), rule))
                },
            )
            .collect();
        Ok(defaults.clone().with_overrides(overrides))
    }

    /// The servers of the fleet that reported in the last day.
    pub async fn known_servers(&self) -> Result<HashSet<ServerId>, sqlx::Error> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM servers WHERE last_seen_at > now() - interval '1 day'",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(ids
            .into_iter()
            .filter_map(|id| ServerId::parse(id).ok())
            .collect())
    }

    /// Whether a server still exists (it may have been deleted through the gateway).
    pub async fn existing(&self, ids: &[ServerId]) -> Result<HashSet<ServerId>, sqlx::Error> {
        let names: Vec<&str> = ids.iter().map(ServerId::as_str).collect();
        let found: Vec<String> = sqlx::query_scalar("SELECT id FROM servers WHERE id = ANY($1)")
            .bind(names)
            .fetch_all(&self.pool)
            .await?;
        Ok(found
            .into_iter()
            .filter_map(|id| ServerId::parse(id).ok())
            .collect())
    }

    /// Commits, in one transaction and only while `epoch` is current: the progress in the
    /// stream, the changed thresholds and the transitions to publish.
    pub async fn commit(
        &self,
        epoch: i64,
        sequence: u64,
        changes: &[(Key, Option<Phase>)],
        outgoing: &[Outgoing],
    ) -> Result<(), CommitError> {
        let mut tx = self.pool.begin().await?;
        let fenced = sqlx::query(
            "UPDATE alerter_progress SET sequence = GREATEST(COALESCE(sequence, 0), $3), updated_at = now()
             WHERE stream = $1 AND epoch = $2",
        )
        .bind(&self.stream)
        .bind(epoch)
        .bind(i64::try_from(sequence).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 0;
        if fenced {
            return Err(CommitError::Fenced(epoch));
        }

        let (gone, present): (Vec<_>, Vec<_>) =
            changes.iter().partition(|(_, phase)| phase.is_none());
        if !gone.is_empty() {
            sqlx::query(
                "DELETE FROM alert_state s
                 USING UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS u(server_id, metric, severity, container)
                 WHERE s.server_id = u.server_id AND s.metric = u.metric AND s.severity = u.severity
                   AND s.container = u.container",
            )
            .bind(gone.iter().map(|((s, _, _, _), _)| s.as_str()).collect::<Vec<_>>())
            .bind(gone.iter().map(|((_, m, _, _), _)| m.as_str()).collect::<Vec<_>>())
            .bind(gone.iter().map(|((_, _, v, _), _)| severity_str(*v)).collect::<Vec<_>>())
            .bind(gone.iter().map(|((_, _, _, c), _)| c.as_str()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        if !present.is_empty() {
            let mut phase_names = Vec::with_capacity(present.len());
            let mut since = Vec::with_capacity(present.len());
            let mut alert_ids = Vec::with_capacity(present.len());
            let mut values = Vec::with_capacity(present.len());
            let mut thresholds = Vec::with_capacity(present.len());
            for (_, phase) in &present {
                match phase {
                    Some(Phase::Pending { since: at }) => {
                        phase_names.push("pending");
                        since.push(*at);
                        alert_ids.push(None);
                        values.push(None);
                        thresholds.push(None);
                    }
                    Some(Phase::Firing {
                        alert_id,
                        started_at,
                        value,
                        threshold,
                    }) => {
                        phase_names.push("firing");
                        since.push(*started_at);
                        alert_ids.push(Some(*alert_id));
                        values.push(Some(*value));
                        thresholds.push(Some(*threshold));
                    }
                    None => {}
                }
            }
            sqlx::query(
                "INSERT INTO alert_state (server_id, metric, severity, phase, since, alert_id, value, threshold, container)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                                      $6::uuid[], $7::float8[], $8::float8[], $9::text[])
                 ON CONFLICT (server_id, metric, severity, container) DO UPDATE SET
                     phase = EXCLUDED.phase, since = EXCLUDED.since, alert_id = EXCLUDED.alert_id,
                     value = EXCLUDED.value, threshold = EXCLUDED.threshold",
            )
            .bind(present.iter().map(|((s, _, _, _), _)| s.as_str()).collect::<Vec<_>>())
            .bind(present.iter().map(|((_, m, _, _), _)| m.as_str()).collect::<Vec<_>>())
            .bind(present.iter().map(|((_, _, v, _), _)| severity_str(*v)).collect::<Vec<_>>())
            .bind(phase_names)
            .bind(since)
            .bind(alert_ids)
            .bind(values)
            .bind(thresholds)
            .bind(present.iter().map(|((_, _, _, c), _)| c.as_str()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        if !outgoing.is_empty() {
            sqlx::query(
                "INSERT INTO alert_outbox (id, subject, payload)
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[]) ON CONFLICT (id) DO NOTHING",
            )
            .bind(outgoing.iter().map(|o| o.id).collect::<Vec<_>>())
            .bind(outgoing.iter().map(|o| o.subject.as_str()).collect::<Vec<_>>())
            .bind(outgoing.iter().map(|o| o.payload.as_str()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
            // The notifier takes them from here, whatever becomes of the NATS publication.
            sqlx::query(
                "INSERT INTO notification_queue (event_id, payload)
                 SELECT * FROM UNNEST($1::uuid[], $2::text[]) ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(outgoing.iter().map(|o| o.id).collect::<Vec<_>>())
            .bind(
                outgoing
                    .iter()
                    .map(|o| o.payload.as_str())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Transitions committed but not yet known to be in JetStream, oldest first.
    pub async fn unpublished(&self) -> Result<Vec<Outgoing>, sqlx::Error> {
        let rows: Vec<(Uuid, String, String)> =
            sqlx::query_as("SELECT id, subject, payload FROM alert_outbox ORDER BY created_at, id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, subject, payload)| Outgoing {
                event: serde_json::from_str(&payload).ok(),
                id,
                subject,
                payload,
            })
            .collect())
    }

    pub async fn published(&self, ids: &[Uuid]) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM alert_outbox WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
