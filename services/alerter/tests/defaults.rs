//! The alerter records the default rules it applies in `alert_defaults` (the gateway shows
//! them): every replica where none are recorded, each leader over whatever is there.

mod common;

use std::time::Duration;

use common::Harness;
use flick_alerter::defaults::{Record, record};
use flick_shared::alerting::rules::Metric;
use flick_shared::testkit::eventually;

/// The recorded `(warning, critical, for_secs, margin)` of `metric`.
async fn recorded(harness: &Harness, metric: &str) -> Option<(Option<f64>, Option<f64>, i32, f64)> {
    sqlx::query_as(
        "SELECT warning, critical, for_secs, margin FROM alert_defaults WHERE metric = $1",
    )
    .bind(metric)
    .fetch_optional(&harness.db.pool)
    .await
    .expect("alert_defaults")
}

#[tokio::test]
async fn the_leaders_defaults_are_recorded_and_a_new_leader_replaces_them() {
    let harness = Harness::new().await;
    let mut first = harness.config();
    first.alerter.cpu_warning = 70.0;
    first.alerter.margin = 4.0;
    let rules = first.alerter.default_rules();
    let running = harness.start(first);
    let epoch = harness.wait_for_leader(0).await;
    eventually(
        "the leader's defaults recorded",
        Duration::from_secs(10),
        || async {
            (recorded(&harness, "cpu").await? == (Some(70.0), Some(90.0), 2, 4.0)).then_some(())
        },
    )
    .await;
    assert_eq!(
        recorded(&harness, "offline").await,
        Some((None, None, 3, 0.0))
    );
    assert_eq!(
        recorded(&harness, "disk").await.map(|r| (r.0, r.1)),
        Some((Some(85.0), Some(95.0)))
    );
    let (leader, recorded_by): (String, String) = sqlx::query_as(
        "SELECT p.leader, d.recorded_by FROM alerter_progress p, alert_defaults d WHERE d.metric = 'cpu'",
    )
    .fetch_one(&harness.db.pool)
    .await
    .expect("leader and recorder");
    assert_eq!(recorded_by, leader, "recorded by the replica that leads");

    // A replica starting while another leads does not replace the leader's defaults …
    let mut standby_rules = harness.config();
    standby_rules.alerter.cpu_warning = 60.0;
    let written = record(
        &harness.db.pool,
        &standby_rules.alerter.default_rules(),
        "standby:1",
        Record::IfAbsent,
    )
    .await
    .expect("record");
    assert_eq!(written, 0);
    assert_eq!(
        recorded(&harness, "cpu").await.map(|r| r.0),
        Some(Some(70.0))
    );
    let rewritten = record(&harness.db.pool, &rules, "leader:1", Record::Overwrite)
        .await
        .expect("record");
    assert_eq!(rewritten, Metric::ALL.len() as u64, "one row per metric");

    // … but when it takes the lead, its defaults are the ones in force and recorded.
    let standby = harness.start(standby_rules);
    running.stop().await;
    harness.wait_for_leader(epoch).await;
    eventually(
        "the new leader's defaults recorded",
        Duration::from_secs(10),
        || async { (recorded(&harness, "cpu").await?.0 == Some(60.0)).then_some(()) },
    )
    .await;
    standby.stop().await;
}
