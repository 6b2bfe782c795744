//! Alert transitions and log entries: stored once, alerts folded whatever the arrival order.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use common::Harness;
use flick_shared::wire::{AlertEvent, AlertSeverity, AlertState, LogEntry, LogLevel, ServerId};

/// id, state, value, resolved_at, started_at
type AlertRow = (
    Uuid,
    String,
    Option<f64>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);

fn event(
    alert: Uuid,
    state: AlertState,
    value: f64,
    at: DateTime<Utc>,
    started: DateTime<Utc>,
) -> AlertEvent {
    AlertEvent {
        v: 1,
        id: Uuid::new_v4(),
        alert_id: alert,
        server_id: ServerId::parse("web-1").expect("valid"),
        metric: "cpu".into(),
        severity: AlertSeverity::Critical,
        state,
        value: Some(value),
        threshold: Some(90.0),
        started_at: started,
        at,
        message: Some(format!("cpu {value}")),
        top_processes: Vec::new(),
        container: None,
    }
}

async fn publish_json<T: serde::Serialize>(harness: &Harness, subject: String, value: &T) {
    harness
        .publish_raw(subject, serde_json::to_vec(value).expect("json"))
        .await;
}

#[tokio::test]
async fn alert_transitions_fold_into_one_alert_each_in_any_order_and_once() {
    let harness = Harness::new().await;
    let persister = harness.start(harness.config());
    let server = ServerId::parse("web-1").expect("valid");
    let subject = harness.subjects.alerts(&server);
    let t0 = Utc::now() - chrono::Duration::minutes(10);
    let later = |secs| t0 + chrono::Duration::seconds(secs);
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());

    let a_firing = event(a, AlertState::Firing, 95.0, t0, t0);
    let a_resolved = event(a, AlertState::Resolved, 50.0, later(60), t0);
    let b_firing = event(b, AlertState::Firing, 97.0, later(5), later(5));
    let c_firing = event(c, AlertState::Firing, 93.0, later(10), later(10));
    let c_resolved = event(c, AlertState::Resolved, 40.0, later(70), later(10));
    for event in [&a_firing, &a_resolved, &b_firing, &c_resolved] {
        publish_json(&harness, subject.clone(), event).await;
    }
    harness
        .wait_for_rows("alert_events", 4, Duration::from_secs(30))
        .await;
    // C's firing arrives after its resolution; A's resolution is delivered twice.
    publish_json(&harness, subject.clone(), &c_firing).await;
    publish_json(&harness, subject.clone(), &a_resolved).await;
    harness
        .wait_for_rows("alert_events", 5, Duration::from_secs(30))
        .await;

    let alerts: Vec<AlertRow> = sqlx::query_as(
        "SELECT id, state, value, resolved_at, started_at FROM alerts ORDER BY started_at",
    )
    .fetch_all(&harness.db.pool)
    .await
    .expect("alerts");
    assert_eq!(alerts.len(), 3);
    let find = |id: Uuid| alerts.iter().find(|row| row.0 == id).expect("alert row");
    let ms = |t: DateTime<Utc>| t.timestamp_millis();
    let (_, state, value, resolved, started) = find(a);
    assert_eq!(
        (state.as_str(), *value, resolved.map(ms), ms(*started)),
        ("resolved", Some(95.0), Some(ms(later(60))), ms(t0))
    );
    let (_, state, value, resolved, _) = find(b);
    assert_eq!(
        (state.as_str(), *value, *resolved),
        ("firing", Some(97.0), None)
    );
    let (_, state, value, resolved, _) = find(c);
    assert_eq!(
        (state.as_str(), *value, resolved.map(ms)),
        ("resolved", Some(93.0), Some(ms(later(70)))),
        "a late firing does not reopen a resolved alert, and its value is the firing's"
    );
    persister.stop().await;
}

#[tokio::test]
async fn log_entries_are_stored_once_with_their_fields() {
    let harness = Harness::new().await;
    let persister = harness.start(harness.config());
    let server = ServerId::parse("db-2").expect("valid");
    let mut fields = serde_json::Map::new();
    fields.insert("unit".into(), "postgresql.service".into());
    fields.insert("pid".into(), 4242.into());
    let entries: Vec<LogEntry> = (0..3)
        .map(|n| LogEntry {
            v: 1,
            id: Uuid::new_v4(),
            server_id: server.clone(),
            timestamp: Utc::now() - chrono::Duration::seconds(10 - n),
            level: [LogLevel::Info, LogLevel::Warn, LogLevel::Error][n as usize],
            message: format!("line {n}\twith a tab and a \"quote\""),
            source: Some("journald".into()),
            fields: Some(fields.clone()),
        })
        .collect();
    for entry in entries.iter().chain(std::iter::once(&entries[1])) {
        publish_json(&harness, harness.subjects.logs(&server), entry).await;
    }
    harness
        .wait_for_rows("logs", 3, Duration::from_secs(30))
        .await;
    let stored: Vec<(Uuid, String, String, serde_json::Value)> =
        sqlx::query_as("SELECT id, level, message, fields FROM logs ORDER BY ts")
            .fetch_all(&harness.db.pool)
            .await
            .expect("logs");
    for (entry, (id, level, message, stored_fields)) in entries.iter().zip(&stored) {
        assert_eq!(*id, entry.id);
        assert_eq!(level, entry.level.as_str());
        assert_eq!(message, &entry.message);
        assert_eq!(stored_fields, &serde_json::Value::Object(fields.clone()));
    }
    persister.stop().await;
}
