//! The repository's `nats.conf`, started for real: each role can do its job and nothing else.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use tokio::sync::mpsc;

use flick_shared::config::{NatsSettings, StreamSettings};
use flick_shared::nats::inbox_prefix;
use flick_shared::subjects::StreamKind;
use flick_shared::testkit::{self, NatsServer, next_message};

fn nats_conf() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../nats.conf")
}

fn start_server() -> NatsServer {
    testkit::nats_conf_server()
}

/// A connection as `role` that reports the server's errors (permission violations) on a channel.
async fn connect_as(server: &NatsServer, role: &str) -> (Client, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = ConnectOptions::with_user_and_password(role.to_owned(), format!("{role}-pw"))
        .custom_inbox_prefix(inbox_prefix(role))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let Event::ServerError(err) = event {
                    let _ = tx.send(err.to_string().to_lowercase());
                }
            }
        })
        .connect(server.url())
        .await
        .unwrap_or_else(|err| panic!("connect as {role}: {err}"));
    (client, rx)
}

async fn expect_violation(errors: &mut mpsc::UnboundedReceiver<String>, what: &str) {
    match tokio::time::timeout(Duration::from_secs(3), errors.recv()).await {
        Ok(Some(error)) => assert!(
            error.contains("permissions violation") && error.contains(what),
            "expected a violation for {what}, got {error}"
        ),
        _ => panic!("no permissions violation for {what}"),
    }
}

async fn expect_no_violation(client: &Client, errors: &mut mpsc::UnboundedReceiver<String>) {
    client.flush().await.expect("flush");
    if let Ok(Some(error)) = tokio::time::timeout(Duration::from_millis(500), errors.recv()).await {
        panic!("unexpected server error: {error}");
    }
}

#[tokio::test]
async fn the_collector_role_creates_its_stream_publishes_samples_and_reads_nothing() {
    let server = start_server();
    let (integration, _) = connect_as(&server, "integration").await;
    let mut observed = integration
        .subscribe("flick.metrics.*")
        .await
        .expect("subscribe");
    integration.flush().await.expect("flush");

    // Connected the way the collector connects, it creates its stream and publishes through it.
    let settings = NatsSettings {
        url: server.url(),
        user: Some("collector".into()),
        password: Some("collector-pw".into()),
        ..NatsSettings::default()
    };
    let client = flick_shared::nats::connect(&settings, "collector")
        .await
        .expect("connect");
    let js = async_nats::jetstream::new(client.clone());
    flick_shared::streams::ensure_streams(
        &js,
        &settings.subjects(),
        &StreamSettings::default(),
        &[StreamKind::Metrics],
    )
    .await
    .expect("the collector may create the metrics stream");
    let ack = js
        .publish("flick.metrics.web-1", "{}".into())
        .await
        .expect("publish")
        .await
        .expect("JetStream acknowledges the collector's sample");
    assert_eq!(ack.stream, "FLICK_METRICS");
    let seen = next_message(&mut observed, Duration::from_secs(5)).await;
    assert_eq!(seen.subject.as_str(), "flick.metrics.web-1");

    let (collector, mut errors) = connect_as(&server, "collector").await;
    for forbidden in ["flick.metrics.>", "flick.alerts.*", ">", "_INBOX.gateway.>"] {
        let _sub = collector
            .subscribe(forbidden.to_owned())
            .await
            .expect("send SUB");
        expect_violation(&mut errors, "subscription").await;
    }
    for forbidden in [
        "flick.alerts.web-1",
        "flick.logs.web-1",
        "$JS.API.STREAM.DELETE.FLICK_METRICS",
    ] {
        collector
            .publish(forbidden.to_owned(), "{}".into())
            .await
            .expect("send PUB");
        collector.flush().await.expect("flush");
        expect_violation(&mut errors, "publish").await;
    }
    collector
        .publish("flick.status.web-1", "{}".into())
        .await
        .expect("status");
    expect_no_violation(&collector, &mut errors).await;
}

#[tokio::test]
async fn the_integration_user_reads_every_public_subject_and_publishes_nothing() {
    let server = start_server();
    let (integration, mut errors) = connect_as(&server, "integration").await;
    let mut subs = Vec::new();
    for subject in [
        "flick.metrics.*",
        "flick.alerts.*",
        "flick.logs.*",
        "flick.status.*",
    ] {
        subs.push(
            integration
                .subscribe(subject.to_owned())
                .await
                .expect("subscribe"),
        );
    }
    expect_no_violation(&integration, &mut errors).await;

    for forbidden in [
        "flick.metrics.web-1",
        "flick.alerts.web-1",
        "flick.logs.web-1",
        "$JS.API.INFO",
    ] {
        integration
            .publish(forbidden.to_owned(), "{}".into())
            .await
            .expect("send PUB");
        integration.flush().await.expect("flush");
        expect_violation(&mut errors, "publish").await;
    }
    let _sub = integration
        .subscribe("flick.deadletter.*".to_owned())
        .await
        .expect("send SUB");
    expect_violation(&mut errors, "subscription").await;
}

#[tokio::test]
async fn each_service_role_is_held_to_its_own_subjects() {
    let server = start_server();
    let cases = [
        ("alerter", "flick.metrics.web-1"),
        ("alerter", "flick.logs.web-1"),
        ("gateway", "flick.metrics.web-1"),
        ("gateway", "flick.alerts.web-1"),
        ("persister", "flick.metrics.web-1"),
        ("persister", "$JS.API.STREAM.DELETE.FLICK_METRICS"),
    ];
    for (role, forbidden) in cases {
        let (client, mut errors) = connect_as(&server, role).await;
        client
            .publish(forbidden.to_owned(), "{}".into())
            .await
            .expect("send PUB");
        client.flush().await.expect("flush");
        expect_violation(&mut errors, "publish").await;
    }
    let allowed = [
        ("alerter", "flick.alerts.web-1"),
        ("gateway", "flick.logs.web-1"),
        ("persister", "flick.deadletter.persister"),
    ];
    for (role, subject) in allowed {
        let (client, mut errors) = connect_as(&server, role).await;
        client
            .publish(subject.to_owned(), "{}".into())
            .await
            .expect("send PUB");
        expect_no_violation(&client, &mut errors).await;
    }
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let server = start_server();
    let refused = ConnectOptions::with_user_and_password("collector".into(), "guess".into())
        .connect(server.url())
        .await;
    assert!(refused.is_err(), "connected with a wrong password");
    let anonymous = async_nats::connect(server.url()).await;
    assert!(anonymous.is_err(), "connected without credentials");
}

#[test]
fn a_missing_password_stops_the_server_naming_the_variable() {
    let store = tempfile::tempdir().expect("tempdir");
    let output =
        Command::new(std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into()))
            .arg("-c")
            .arg(nats_conf())
            .args(["-a", "127.0.0.1", "-p", "-1", "-m", "0", "-sd"])
            .arg(store.path())
            .envs(
                testkit::NATS_CONF_PASSWORDS
                    .iter()
                    .copied()
                    .filter(|(name, _)| !name.contains("GATEWAY")),
            )
            .output()
            .expect("run nats-server");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FLICK_NATS_GATEWAY_PASSWORD"), "{stderr}");
}
