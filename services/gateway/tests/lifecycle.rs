//! The gateway starts against the real NATS and PostgreSQL, answers HTTP, and stops cleanly.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use flick_gateway::Config;
use flick_shared::shutdown::CancellationToken;
use flick_shared::testkit;

#[tokio::test]
async fn starts_answers_healthz_and_stops_cleanly() {
    let subjects = testkit::unique_subjects();
    let db = testkit::TestDb::empty().await;
    let mut config = Config {
        nats: testkit::nats_settings(subjects.prefix()),
        database: db.settings(),
        streams: testkit::stream_settings(),
        ..Config::default()
    };
    config.gateway.jwt_secret = Some(testkit::random_key_hex().into());
    config.encryption.key = Some(testkit::random_key_hex().into());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let stop = CancellationToken::new();
    let task = tokio::spawn(flick_gateway::serve(config, listener, stop.clone()));

    let response =
        testkit::eventually("an answer on /healthz", Duration::from_secs(10), || async {
            let mut stream = TcpStream::connect(address).await.ok()?;
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                .await
                .ok()?;
            let mut response = String::new();
            stream.read_to_string(&mut response).await.ok()?;
            Some(response)
        })
        .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops within 10 s")
        .expect("join")
        .expect("runs and stops without error");
}
