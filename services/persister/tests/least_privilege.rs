//! The persister runs with nothing more than the `persister` user of `nats.conf`.

use std::time::Duration;

use flick_persister::Config;
use flick_shared::shutdown::CancellationToken;
use flick_shared::testkit::{self, TestDb, eventually};

#[tokio::test]
async fn runs_with_the_persister_user_of_nats_conf() {
    let nats = flick_shared::testkit::nats_conf_server();
    let db = TestDb::new().await;
    let mut config = Config {
        database: db.settings(),
        streams: testkit::stream_settings(),
        ..Config::default()
    };
    config.nats.url = nats.url();
    config.nats.user = Some("persister".into());
    config.nats.password = Some("persister-pw".into());
    config.persister.flush_interval_ms = 200;
    config.persister.ops_listen = String::new();
    let stop = CancellationToken::new();
    let persister = tokio::spawn(flick_persister::run(config, stop.clone()));

    let collector = flick_shared::testkit::connect_as(&nats, "collector").await;
    let js = async_nats::jetstream::new(collector);
    let subjects = flick_shared::Subjects::default();
    let samples: Vec<_> = {
        let mut simulation = flick_collector::simulate::Simulation::new(5, 0, 1);
        let at = flick_collector::now_millis() - chrono::Duration::seconds(30);
        (0..5).map(|i| simulation.sample(i, at)).collect()
    };
    eventually("the metrics stream", Duration::from_secs(20), || async {
        js.get_stream("FLICK_METRICS").await.ok()
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
