//! Alerts that fire once, resolve once, do not flap, and notice silence.

mod common;

use std::time::Duration;

use common::{Harness, minutes_ago, names, series};
use flick_shared::wire::AlertState;

#[tokio::test]
async fn cpu_50_95_50_fires_warning_and_critical_then_resolves_critical_and_warning_once_each() {
    let harness = Harness::new().await;
    let alerter = harness.start(harness.config());
    harness.wait_for_leader(0).await;

    let mut values = vec![50.0; 5];
    values.extend([95.0; 10]);
    values.extend([50.0; 10]);
    harness
        .publish(&series("web-1", minutes_ago(3), &values))
        .await;

    let events = harness.wait_for_events(4, Duration::from_secs(20)).await;
    assert_eq!(
        names(&events),
        [
            "cpu warning firing",
            "cpu critical firing",
            "cpu critical resolved",
            "cpu warning resolved"
        ]
    );
    assert_eq!(events[0].alert_id, events[3].alert_id);
    assert_eq!(events[1].alert_id, events[2].alert_id);
    assert_eq!(events[1].threshold, Some(90.0));
    assert!(events.iter().all(|e| e.server_id.as_str() == "web-1"));
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_state")
        .fetch_one(&harness.db.pool)
        .await
        .expect("count");
    assert_eq!(left, 0, "everything back to ok");
    alerter.stop().await;
}

#[tokio::test]
async fn a_value_oscillating_79_81_never_alerts_and_81_held_alerts_once() {
    let harness = Harness::new().await;
    // Silence is not what this test is about: waiting for the evaluation may outlast 3 s.
    let mut config = harness.config();
    config.alerter.offline_timeout_secs = 600;
    let alerter = harness.start(config);
    harness.wait_for_leader(0).await;

    let start = minutes_ago(4);
    let wobble: Vec<f64> = (0..60)
        .map(|s| if s % 2 == 0 { 79.0 } else { 81.0 })
        .collect();
    harness.publish(&series("web-2", start, &wobble)).await;
    harness.wait_until_evaluated().await;
    assert!(
        harness.stored_events().await.is_empty(),
        "no alert from a value hovering at 80"
    );

    harness
        .publish(&series(
            "web-2",
            start + chrono::Duration::seconds(60),
            &[81.0; 10],
        ))
        .await;
    let events = harness.wait_for_events(1, Duration::from_secs(20)).await;
    assert_eq!(names(&events), ["cpu warning firing"]);
    alerter.stop().await;
}

#[tokio::test]
async fn a_silent_server_goes_offline_once_and_comes_back_once() {
    let harness = Harness::new().await;
    let alerter = harness.start(harness.config());
    harness.wait_for_leader(0).await;

    let now = chrono::Utc::now();
    harness
        .publish(&series(
            "web-3",
            now - chrono::Duration::seconds(2),
            &[20.0, 21.0, 22.0],
        ))
        .await;
    // No more samples: offline after 3 s, and only once however long the silence lasts.
    let events = harness.wait_for_events(1, Duration::from_secs(20)).await;
    assert_eq!(names(&events), ["offline critical firing"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        harness.stored_events().await.len(),
        1,
        "silence does not fire twice"
    );

    harness
        .publish(&series("web-3", chrono::Utc::now(), &[23.0]))
        .await;
    let events = harness.wait_for_events(2, Duration::from_secs(20)).await;
    assert_eq!(
        names(&events),
        ["offline critical firing", "offline critical resolved"]
    );
    assert_eq!(events[0].alert_id, events[1].alert_id);
    alerter.stop().await;
}

#[tokio::test]
async fn silence_never_resolves_a_firing_alert() {
    let harness = Harness::new().await;
    let alerter = harness.start(harness.config());
    harness.wait_for_leader(0).await;
    let now = chrono::Utc::now();
    harness
        .publish(&series(
            "web-4",
            now - chrono::Duration::seconds(4),
            &[92.0; 5],
        ))
        .await;
    let events = harness.wait_for_events(3, Duration::from_secs(20)).await;
    let mut got = names(&events);
    got.sort();
    assert_eq!(
        got,
        [
            "cpu critical firing",
            "cpu warning firing",
            "offline critical firing"
        ]
    );
    assert!(
        events.iter().all(|e| e.state == AlertState::Firing),
        "the CPU alerts stay firing while silent"
    );
    alerter.stop().await;
}

#[tokio::test]
async fn a_rule_changed_in_the_database_applies_within_seconds_without_restart() {
    let harness = Harness::new().await;
    let alerter = harness.start(harness.config());
    harness.wait_for_leader(0).await;
    sqlx::query(
        "INSERT INTO alert_rules (server_id, metric, warning, critical, for_secs) VALUES ('db-1', 'cpu', 30, 60, 1)",
    )
    .execute(&harness.db.pool)
    .await
    .expect("insert a rule");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start = minutes_ago(2);
    harness.publish(&series("db-1", start, &[40.0; 5])).await;
    harness.publish(&series("web-5", start, &[40.0; 5])).await;
    let events = harness.wait_for_events(1, Duration::from_secs(20)).await;
    assert_eq!(names(&events), ["cpu warning firing"]);
    assert_eq!(
        events[0].server_id.as_str(),
        "db-1",
        "the override applies to its server only"
    );
    assert_eq!(events[0].threshold, Some(30.0));
    alerter.stop().await;
}

#[tokio::test]
async fn a_temperature_rule_fires_on_the_hottest_sensor_only_where_it_is_enabled() {
    let harness = Harness::new().await;
    let alerter = harness.start(harness.config());
    harness.wait_for_leader(0).await;
    // Off by default; enabled for hot-1 only, with a critical above 100 (°C, not percent).
    sqlx::query(
        "INSERT INTO alert_rules (server_id, metric, warning, critical, for_secs, enabled)
         VALUES ('hot-1', 'temperature', 70, 105, 0, true)",
    )
    .execute(&harness.db.pool)
    .await
    .expect("a temperature rule above 100");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sensors = |celsius: &[f64]| {
        celsius
            .iter()
            .enumerate()
            .map(|(i, c)| flick_shared::wire::Temperature {
                label: format!("sensor {i}"),
                celsius: *c,
                max_celsius: None,
                critical_celsius: None,
            })
            .collect::<Vec<_>>()
    };
    // The hottest of two sensors: 60, then 110 (critical), a sample without sensors (nothing
    // changes), then 50 (both resolve).
    let readings: Vec<Option<[f64; 2]>> = [
        vec![Some([40.0, 60.0]); 3],
        vec![Some([45.0, 110.0]); 3],
        vec![None; 2],
        vec![Some([40.0, 50.0]); 3],
    ]
    .concat();
    let start = minutes_ago(2);
    for server in ["hot-1", "cool-1"] {
        let samples: Vec<_> = series(server, start, &vec![10.0; readings.len()])
            .into_iter()
            .zip(&readings)
            .map(|(mut sample, reading)| {
                sample.temperatures = reading.map(|r| sensors(&r)).unwrap_or_default();
                sample
            })
            .collect();
        harness.publish(&samples).await;
    }
    let events = harness.wait_for_events(4, Duration::from_secs(20)).await;
    assert_eq!(
        names(&events),
        [
            "temperature warning firing",
            "temperature critical firing",
            "temperature critical resolved",
            "temperature warning resolved"
        ]
    );
    assert!(
        events.iter().all(|e| e.server_id.as_str() == "hot-1"),
        "cool-1 has no rule"
    );
    assert_eq!(events[1].value, Some(110.0));
    assert_eq!(
        events[3].at,
        start + chrono::Duration::seconds(8),
        "the samples without sensors resolved nothing"
    );
    let message = events[1].message.as_deref().unwrap_or("");
    assert!(
        message.contains("110.0 °C") && message.contains("105 °C"),
        "{message}"
    );
    alerter.stop().await;
}
