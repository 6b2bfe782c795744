//! Top-process lists into `process_lists`, idempotent on (server, time).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use flick_shared::Subjects;
use flick_shared::subjects::StreamKind;
use flick_shared::wire::{ProcessList, decode_on};

use super::metrics::column;
use crate::pipeline::{Refusal, Sink};

#[derive(Debug)]
pub struct ProcessesSink {
    subjects: Subjects,
}

impl ProcessesSink {
    pub fn new(subjects: Subjects) -> Self {
        Self { subjects }
    }
}

impl Sink for ProcessesSink {
    type Row = ProcessList;
    const KIND: StreamKind = StreamKind::Processes;
    const NAME: &'static str = "processes";

    fn decode(
        &self,
        subject: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<ProcessList, Refusal> {
        Ok(decode_on::<ProcessList>(
            &self.subjects,
            subject,
            payload,
            now,
        )?)
    }

    async fn write(
        &self,
        conn: &mut PgConnection,
        rows: &[ProcessList],
    ) -> Result<u64, sqlx::Error> {
        let json = |list: &[flick_shared::wire::ProcessUsage]| {
            serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
        };
        let inserted = sqlx::query(
            "INSERT INTO process_lists (server_id, ts, by_cpu, by_memory)
             SELECT s, t, c::json, m::json
             FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[]) AS u(s, t, c, m)
             ON CONFLICT (server_id, ts) DO NOTHING",
        )
        .bind(column(rows, |l| l.server_id.as_str()))
        .bind(column(rows, |l| l.timestamp))
        .bind(column(rows, |l| json(&l.by_cpu)))
        .bind(column(rows, |l| json(&l.by_memory)))
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok(inserted)
    }
}
