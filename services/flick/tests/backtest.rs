//! The threshold preview tells the truth: the real persister and alerter binaries process an
//! hour of samples published on NATS (with the past hour's timestamps, published at once: the
//! alerter evaluates by the samples' own time), and the gateway's preview of the rule in force
//! over that hour of stored samples gives exactly the alerts the live alerter published: the
//! same count, severities, firing and resolution times.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, DurationRound as _, Utc};
use reqwest::{Method, StatusCode};
use serde_json::json;

use common::{Api, Stack};
use flick_shared::subjects::StreamKind;
use flick_shared::testkit::{self, eventually};
use flick_shared::wire::{AlertEvent, AlertSeverity, AlertState, MetricSample, ServerId};

const SERVER: &str = "bt-1";

/// CPU at second `s` of the hour: mostly 40 %, with episodes that fire a warning only, fire
/// both, stay inside the hysteresis margin, are too short to fire, and still fire at the end.
fn cpu_at(s: i64) -> f64 {
    match s {
        300..=359 => 85.0,     // warning for a minute
        900..=1_019 => 95.0,   // both, two minutes
        1_020..=1_079 => 87.0, // critical stays (87 ≥ 90 - 4), warning stays
        1_080..=1_199 => 50.0,
        1_500..=1_509 => 96.0, // 10 s: shorter than `for` (15 s), fires nothing
        2_000..=2_100 => 92.0,
        2_101..=2_160 => 84.0, // critical resolves (below 86), warning stays
        2_161..=2_400 => 60.0,
        3_500..=3_599 => 96.0, // still firing when the hour ends
        _ => 40.0,
    }
}

/// `(severity, fired at, resolved at)`.
type Summary = BTreeSet<(String, DateTime<Utc>, Option<DateTime<Utc>>)>;

fn severity(severity: AlertSeverity) -> String {
    match severity {
        AlertSeverity::Warning => "warning".into(),
        AlertSeverity::Critical => "critical".into(),
    }
}

/// The live alerter's CPU alerts, from the transitions it published.
fn live_alerts(events: &[AlertEvent]) -> Summary {
    let cpu: Vec<&AlertEvent> = events.iter().filter(|e| e.metric == "cpu").collect();
    cpu.iter()
        .filter(|e| e.state == AlertState::Firing)
        .map(|fired| {
            let resolved = cpu
                .iter()
                .find(|e| e.alert_id == fired.alert_id && e.state == AlertState::Resolved)
                .map(|e| e.at);
            (severity(fired.severity), fired.at, resolved)
        })
        .collect()
}

fn time(value: &serde_json::Value) -> Option<DateTime<Utc>> {
    value.as_str().map(|t| {
        DateTime::parse_from_rfc3339(t)
            .expect("RFC 3339")
            .with_timezone(&Utc)
    })
}

#[tokio::test]
async fn the_preview_of_the_rule_in_force_matches_what_the_live_alerter_fired_over_an_hour() {
    // Defaults the gateway cannot know but from what the alerter recorded.
    let stack = Stack::new()
        .await
        .with_env("FLICK_ALERTER__FOR_SECS", "15")
        .with_env("FLICK_ALERTER__MARGIN", "4")
        .with_env("FLICK_PERSISTER__FLUSH_INTERVAL_MS", "200");
    let _backend = stack.start_backend().await;
    let api = Api::of(&stack);
    let ada = api.register("ada@example.com").await;
    let (status, body) = api
        .call(
            Method::POST,
            "/servers",
            Some(&ada),
            Some(json!({ "id": SERVER, "name": SERVER })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The alerter's first term starts at the end of the stream: publish only once it leads.
    let metrics_stream = stack.subjects.stream_name(StreamKind::Metrics);
    eventually("the alerter leading", Duration::from_secs(30), || {
        let pool = stack.db.pool.clone();
        let stream = metrics_stream.clone();
        async move {
            let sequence: Option<i64> =
                sqlx::query_scalar("SELECT sequence FROM alerter_progress WHERE stream = $1")
                    .bind(stream)
                    .fetch_optional(&pool)
                    .await
                    .ok()
                    .flatten()
                    .flatten();
            sequence.map(|_| ())
        }
    })
    .await;
    let thresholds = api
        .get(&format!("/servers/{SERVER}/thresholds"), &ada)
        .await;
    assert_eq!(thresholds["defaultsFrom"], "alerter", "{thresholds}");
    assert_eq!(thresholds["rules"]["cpu"]["forSecs"], 15);
    assert_eq!(thresholds["rules"]["cpu"]["margin"], 4.0);

    let start = (Utc::now() - chrono::Duration::minutes(62))
        .duration_trunc(chrono::Duration::seconds(1))
        .expect("whole seconds");
    let id = ServerId::parse(SERVER).expect("id");
    let samples: Vec<MetricSample> = (0..3_600)
        .map(|s| {
            MetricSample::minimal(
                id.clone(),
                start + chrono::Duration::seconds(s),
                cpu_at(s),
                40.0,
                50.0,
                1_000,
            )
        })
        .collect();
    let client = testkit::connect().await;
    let js = async_nats::jetstream::new(client.clone());
    testkit::publish_samples(&js, &stack.subjects, &samples, true).await;

    // Every sample stored and evaluated, every transition published.
    let last = js
        .get_stream(&metrics_stream)
        .await
        .expect("metrics stream")
        .info()
        .await
        .expect("info")
        .state
        .last_sequence;
    eventually(
        "samples stored and evaluated",
        Duration::from_secs(90),
        || {
            let pool = stack.db.pool.clone();
            let stream = metrics_stream.clone();
            async move {
                let stored: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM metrics WHERE server_id = $1")
                        .bind(SERVER)
                        .fetch_one(&pool)
                        .await
                        .ok()?;
                let committed: Option<i64> =
                    sqlx::query_scalar("SELECT sequence FROM alerter_progress WHERE stream = $1")
                        .bind(stream)
                        .fetch_optional(&pool)
                        .await
                        .ok()
                        .flatten()
                        .flatten();
                let unpublished: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_outbox")
                    .fetch_one(&pool)
                    .await
                    .ok()?;
                (stored == 3_600 && committed? >= last as i64 && unpublished == 0).then_some(())
            }
        },
    )
    .await;
    let events: Vec<AlertEvent> =
        testkit::read_stream(&js, &stack.subjects.stream_name(StreamKind::Alerts))
            .await
            .iter()
            .map(|m| serde_json::from_slice(&m.payload).expect("an AlertEvent"))
            .collect();
    let live = live_alerts(&events);

    let (status, preview) = api
        .call(
            Method::POST,
            &format!("/servers/{SERVER}/thresholds/preview"),
            Some(&ada),
            Some(json!({
                "metric": "cpu",
                "from": start.to_rfc3339(),
                "to": (start + chrono::Duration::hours(1)).to_rfc3339(),
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["samples"], 3_600);
    assert_eq!(
        preview["rule"]["forSecs"], 15,
        "the rule in force: {preview}"
    );
    let previewed: Summary = preview["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| {
            (
                a["severity"].as_str().expect("severity").to_owned(),
                time(&a["firedAt"]).expect("firedAt"),
                time(&a["resolvedAt"]),
            )
        })
        .collect();
    assert_eq!(
        previewed.len(),
        preview["alerts"].as_array().map_or(0, Vec::len),
        "no two alerts alike"
    );
    assert_eq!(previewed, live, "the preview and the live alerter agree");

    // The hour was not trivial: a warning alone, both severities, a critical inside the
    // margin, one too short to fire, and alerts still firing when it ends.
    let at = |s: i64| start + chrono::Duration::seconds(s);
    // (warning 80, critical 90, for 15 s, resolved below 76 and 86)
    let expected: Summary = [
        ("warning", 315, Some(360)),
        ("warning", 915, Some(1_080)),
        ("critical", 915, Some(1_080)),
        ("warning", 2_015, Some(2_161)),
        ("critical", 2_015, Some(2_101)),
        ("warning", 3_515, None),
        ("critical", 3_515, None),
    ]
    .into_iter()
    .map(|(s, fired, resolved)| (s.to_owned(), at(fired), resolved.map(at)))
    .collect();
    assert_eq!(live, expected);
}
