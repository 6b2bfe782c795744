//! The persister runs with nothing more than the `persister` identity `flick init` generates.

use std::time::Duration;

use flick_persister::Config;
use flick_shared::shutdown::CancellationToken;
use flick_shared::testkit::{self, TestDb, eventually};

#[tokio::test]
async fn runs_with_the_persister_identity_of_a_hub() {
    use flick_shared::natsauth::Role;
    let subjects = testkit::unique_subjects();
    let hub = testkit::HubServer::start(&subjects);
    let db = TestDb::new().await;
    let mut config = Config {
        database: db.settings(),
        streams: testkit::stream_settings(),
        nats: hub.settings(Role::Persister),
        ..Config::default()
    };
    config.persister.flush_interval_ms = 200;
    config.persister.ops_listen = String::new();
    let stop = CancellationToken::new();
    let persister = tokio::spawn(flick_persister::run(config, stop.clone()));

    let collector = hub.connect_as(Role::Collector).await;
    let js = async_nats::jetstream::new(collector);
    let samples: Vec<_> = {
        let mut simulation = flick_collector::simulate::Simulation::new(5, 0, 1);
        let at = flick_collector::now_millis() - chrono::Duration::seconds(30);
        (0..5).map(|i| simulation.sample(i, at)).collect()
    };
    // Created by the persister (the collector identity may not even look at streams).
    let watcher = async_nats::jetstream::new(hub.connect_as(Role::Persister).await);
    eventually("the metrics stream", Duration::from_secs(20), || async {
        watcher
            .get_stream(subjects.stream_name(flick_shared::subjects::StreamKind::Metrics))
            .await
            .ok()
    })
    .await;
    testkit::publish_samples(&js, &subjects, &samples, true).await;
    eventually("five rows stored", Duration::from_secs(30), || async {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM metrics")
            .fetch_one(&db.pool)
            .await
            .ok()?;
        (rows == 5).then_some(())
    })
    .await;
    stop.cancel();
    persister
        .await
        .expect("join")
        .expect("the persister ran with least privilege");
}
