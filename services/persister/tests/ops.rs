//! The operations listener: liveness, readiness and Prometheus metrics.

mod common;

use std::time::Duration;

use common::{Harness, samples};

#[tokio::test]
async fn healthz_readyz_and_metrics_answer() {
    let harness = Harness::new().await;
    let port = flick_shared::testkit::free_port();
    let mut config = harness.config();
    config.persister.ops_listen = format!("127.0.0.1:{port}");
    let persister = harness.start(config);
    let base = format!("http://127.0.0.1:{port}");
    let http = flick_shared::testkit::http();

    let health = flick_shared::testkit::eventually("/healthz", Duration::from_secs(20), || {
        let http = http.clone();
        let url = format!("{base}/healthz");
        async move { http.get(url).send().await.ok() }
    })
    .await;
    assert_eq!(health.status(), 200);
    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200, "{:?}", ready.text().await);

    harness.publish(&samples(5, 10)).await;
    harness
        .wait_for_rows("metrics", 50, Duration::from_secs(30))
        .await;
    let page = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    for name in [
        "flick_persister_rows_written_total{stream=\"metrics\"}",
        "flick_persister_batches_total{stream=\"metrics\"}",
        "flick_persister_batch_seconds_bucket",
    ] {
        assert!(page.contains(name), "{name} missing from /metrics:\n{page}");
    }
    persister.stop().await;
}
