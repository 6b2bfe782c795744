//! The operations listener: liveness, readiness, and metrics that say who leads.

mod common;

use std::time::Duration;

use common::{Harness, minutes_ago, series};

#[tokio::test]
async fn healthz_readyz_and_metrics_report_evaluations_and_leadership() {
    let harness = Harness::new().await;
    let port = flick_shared::testkit::free_port();
    let mut config = harness.config();
    config.alerter.ops_listen = format!("127.0.0.1:{port}");
    let alerter = harness.start(config);
    harness.wait_for_leader(0).await;
    harness
        .publish(&series("web-1", minutes_ago(1), &[95.0; 4]))
        .await;
    harness.wait_for_events(2, Duration::from_secs(20)).await;

    let base = format!("http://127.0.0.1:{port}");
    let http = flick_shared::testkit::http();
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .expect("readyz")
            .status(),
        200
    );
    let page = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    for needle in [
        "flick_alerter_leader 1",
        "flick_alerter_samples_evaluated_total",
        "flick_alerter_transitions_total{metric=\"cpu\",severity=\"critical\",state=\"firing\"}",
        "flick_alerter_batch_seconds_bucket",
    ] {
        assert!(
            page.contains(needle),
            "{needle} missing from /metrics:\n{page}"
        );
    }
    alerter.stop().await;
}
