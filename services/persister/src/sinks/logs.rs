//! Log entries into `logs`, idempotent on their id.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use flick_shared::Subjects;
use flick_shared::subjects::StreamKind;
use flick_shared::wire::{LogEntry, decode_on};

use super::metrics::column;
use crate::pipeline::{Refusal, Sink};

#[derive(Debug)]
pub struct LogsSink {
    subjects: Subjects,
}

impl LogsSink {
    pub fn new(subjects: Subjects) -> Self {
        Self { subjects }
    }
}

impl Sink for LogsSink {
    type Row = LogEntry;
    const KIND: StreamKind = StreamKind::Logs;
    const NAME: &'static str = "logs";

    fn decode(
        &self,
        subject: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<LogEntry, Refusal> {
        Ok(decode_on::<LogEntry>(
            &self.subjects,
            subject,
            payload,
            now,
        )?)
    }

    async fn write(&self, conn: &mut PgConnection, rows: &[LogEntry]) -> Result<u64, sqlx::Error> {
        let fields = |e: &LogEntry| {
            e.fields
                .as_ref()
                .and_then(|f| serde_json::to_string(f).ok())
        };
        let inserted = sqlx::query(
            "INSERT INTO logs (id, server_id, ts, level, message, source, fields)
             SELECT id, s, t, l, m, src, f::jsonb
             FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[],
                         $6::text[], $7::text[]) AS u(id, s, t, l, m, src, f)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(column(rows, |e| e.id))
        .bind(column(rows, |e| e.server_id.as_str()))
        .bind(column(rows, |e| e.timestamp))
        .bind(column(rows, |e| e.level.as_str()))
        .bind(column(rows, |e| e.message.as_str()))
        .bind(column(rows, |e| e.source.as_deref()))
        .bind(column(rows, fields))
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok(inserted)
    }
}
