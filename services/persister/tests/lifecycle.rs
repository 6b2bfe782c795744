//! The persister starts against the real NATS and PostgreSQL, creates its streams, and stops
//! cleanly when asked.

use std::time::Duration;

use flick_persister::Config;
use flick_shared::shutdown::CancellationToken;
use flick_shared::subjects::StreamKind;
use flick_shared::testkit::{self, eventually};

#[tokio::test]
async fn starts_creates_every_stream_and_stops_cleanly() {
    let subjects = testkit::unique_subjects();
    let db = testkit::TestDb::empty().await;
    let config = Config {
        nats: testkit::nats_settings(subjects.prefix()),
        database: db.settings(),
        streams: testkit::stream_settings(),
        ..Config::default()
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(flick_persister::run(config, stop.clone()));

    let js = async_nats::jetstream::new(testkit::connect().await);
    for kind in StreamKind::ALL {
        let name = subjects.stream_name(kind);
        eventually(
            &format!("stream {name}"),
            Duration::from_secs(10),
            || async { js.get_stream(&name).await.ok() },
        )
        .await;
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops within 10 s")
        .expect("join")
        .expect("runs and stops without error");
}
