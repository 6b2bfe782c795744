//! Alert transitions into `alert_events`, folded into one `alerts` row per alert.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use flick_shared::Subjects;
use flick_shared::subjects::StreamKind;
use flick_shared::wire::{AlertEvent, AlertSeverity, AlertState, decode_on};

use super::metrics::column;
use crate::pipeline::{Refusal, Sink};

#[derive(Debug)]
pub struct AlertsSink {
    subjects: Subjects,
}

impl AlertsSink {
    pub fn new(subjects: Subjects) -> Self {
        Self { subjects }
    }
}

impl Sink for AlertsSink {
    type Row = AlertEvent;
    const KIND: StreamKind = StreamKind::Alerts;
    const NAME: &'static str = "alerts";

    fn decode(
        &self,
        subject: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<AlertEvent, Refusal> {
        Ok(decode_on::<AlertEvent>(
            &self.subjects,
            subject,
            payload,
            now,
        )?)
    }

    /// New transitions only (a redelivered one is skipped), then one upsert per alert: a
    /// resolution wins over a firing whatever order they arrive in, and the value, threshold and
    /// message are the firing's.
    async fn write(
        &self,
        conn: &mut PgConnection,
        rows: &[AlertEvent],
    ) -> Result<u64, sqlx::Error> {
        let severity = |e: &AlertEvent| match e.severity {
            AlertSeverity::Warning => "warning",
            AlertSeverity::Critical => "critical",
        };
        let state = |e: &AlertEvent| match e.state {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        };
        let inserted: i64 = sqlx::query_scalar(
            "WITH new_events AS (
                 INSERT INTO alert_events (id, alert_id, server_id, metric, severity, state, value,
                                           threshold, started_at, at, message, top_processes,
                                           container)
                 SELECT id, alert_id, server_id, metric, severity, state, value, threshold,
                        started_at, at, message, top_processes::json, container
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                             $6::text[], $7::float8[], $8::float8[], $9::timestamptz[],
                             $10::timestamptz[], $11::text[], $12::text[], $13::text[])
                      AS u(id, alert_id, server_id, metric, severity, state, value, threshold,
                           started_at, at, message, top_processes, container)
                 ON CONFLICT (id) DO NOTHING
                 RETURNING *
             ), folded AS (
                 SELECT alert_id,
                        min(server_id) AS server_id, min(metric) AS metric, min(severity) AS severity,
                        min(container) AS container,
                        CASE WHEN bool_or(state = 'resolved') THEN 'resolved' ELSE 'firing' END AS state,
                        min(value) FILTER (WHERE state = 'firing') AS value,
                        min(threshold) FILTER (WHERE state = 'firing') AS threshold,
                        min(message) FILTER (WHERE state = 'firing') AS message,
                        (array_agg(top_processes::text) FILTER (WHERE state = 'firing'
                            AND top_processes IS NOT NULL))[1]::json AS top_processes,
                        min(started_at) AS started_at,
                        max(at) FILTER (WHERE state = 'resolved') AS resolved_at
                 FROM new_events GROUP BY alert_id
             ), upserted AS (
                 INSERT INTO alerts AS a (id, server_id, metric, severity, state, value, threshold,
                                          started_at, resolved_at, message, top_processes, container,
                                          updated_at)
                 SELECT alert_id, server_id, metric, severity, state, value, threshold, started_at,
                        resolved_at, message, top_processes, container, now()
                 FROM folded
                 ON CONFLICT (id) DO UPDATE SET
                     state = CASE WHEN a.state = 'resolved' OR EXCLUDED.state = 'resolved'
                                  THEN 'resolved' ELSE 'firing' END,
                     resolved_at = COALESCE(a.resolved_at, EXCLUDED.resolved_at),
                     value = COALESCE(a.value, EXCLUDED.value),
                     threshold = COALESCE(a.threshold, EXCLUDED.threshold),
                     message = COALESCE(a.message, EXCLUDED.message),
                     top_processes = COALESCE(a.top_processes, EXCLUDED.top_processes),
                     started_at = LEAST(a.started_at, EXCLUDED.started_at),
                     updated_at = now()
             )
             SELECT count(*) FROM new_events",
        )
        .bind(column(rows, |e| e.id))
        .bind(column(rows, |e| e.alert_id))
        .bind(column(rows, |e| e.server_id.as_str()))
        .bind(column(rows, |e| e.metric.as_str()))
        .bind(column(rows, severity))
        .bind(column(rows, state))
        .bind(column(rows, |e| e.value))
        .bind(column(rows, |e| e.threshold))
        .bind(column(rows, |e| e.started_at))
        .bind(column(rows, |e| e.at))
        .bind(column(rows, |e| e.message.as_deref()))
        .bind(column(rows, |e| {
            (!e.top_processes.is_empty())
                .then(|| serde_json::to_string(&e.top_processes).ok())
                .flatten()
        }))
        .bind(column(rows, |e| e.container.as_deref().unwrap_or("")))
        .fetch_one(&mut *conn)
        .await?;
        Ok(u64::try_from(inserted).unwrap_or(0))
    }
}
