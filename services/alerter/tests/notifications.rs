//! Webhook notifications: signed, retried, and their secrets sealed at rest.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use uuid::Uuid;

use common::{Harness, minutes_ago, series};
use flick_alerter::notify::{load_channels, signature};
use flick_alerter::store::Store;
use flick_shared::crypto::KeyRing;
use flick_shared::testkit::eventually;
use flick_shared::wire::AlertEvent;

static KEY_HEX: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(flick_shared::testkit::random_key_hex);
const SIGNING_SECRET: &[u8] = b"whsec-test-0123456789";
const API_TOKEN: &str = "Bearer super-secret-token-42";

#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

/// A webhook receiver that answers 500 to the first two calls and 200 afterwards.
async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut calls = receiver.calls.lock().expect("lock");
    calls.push((headers, body));
    if calls.len() <= 2 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

fn keys() -> KeyRing {
    KeyRing::from_secrets(1, &KEY_HEX.as_str().into(), &Default::default()).expect("valid key")
}

/// Stores a channel as the gateway will: secrets sealed with the channel id as associated data.
async fn insert_channel(pool: &sqlx::PgPool, url: &str) -> Uuid {
    let id = Uuid::new_v4();
    let headers = serde_json::json!({ "authorization": API_TOKEN }).to_string();
    sqlx::query(
        "INSERT INTO notification_channels (id, name, url, secret_headers, signing_secret)
         VALUES ($1, 'ops webhook', $2, $3, $4)",
    )
    .bind(id)
    .bind(url)
    .bind(
        keys()
            .seal(id.as_bytes(), headers.as_bytes())
            .expect("seal"),
    )
    .bind(keys().seal(id.as_bytes(), SIGNING_SECRET).expect("seal"))
    .execute(pool)
    .await
    .expect("insert a channel");
    id
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_the_signed_event_on_the_third_attempt() {
    let harness = Harness::new().await;
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    insert_channel(&harness.db.pool, &url).await;

    let mut config = harness.config();
    config.encryption.key = Some(KEY_HEX.as_str().into());
    // The receiver is on loopback, which deliveries reach only when allowed.
    config.notify.allow_hosts = vec!["127.0.0.1".into()];
    let alerter = harness.start(config);
    harness.wait_for_leader(0).await;
    harness
        .publish(&series("web-1", minutes_ago(2), &[85.0; 5]))
        .await;

    let calls = eventually("three delivery attempts", Duration::from_secs(30), || {
        let calls = receiver.calls.lock().expect("lock").clone();
        async move { (calls.len() >= 3).then_some(calls) }
    })
    .await;
    // (The server then goes silent, so an `offline` notification follows: only the first
    // event's deliveries are counted.)
    tokio::time::sleep(Duration::from_secs(3)).await;
    let first_body = calls[0].1.clone();
    let attempts = receiver
        .calls
        .lock()
        .expect("lock")
        .iter()
        .filter(|(_, b)| *b == first_body)
        .count();
    assert_eq!(attempts, 3, "two failures, one success, no retry after it");

    let (headers, body) = &calls[2];
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let timestamp: i64 = header("x-flick-timestamp")
        .parse()
        .expect("a timestamp header");
    assert_eq!(
        header("x-flick-signature"),
        signature(SIGNING_SECRET, timestamp, body),
        "the signature verifies"
    );
    assert_ne!(
        header("x-flick-signature"),
        signature(b"another secret", timestamp, body)
    );
    assert_eq!(
        header("authorization"),
        API_TOKEN,
        "the secret header is sent"
    );
    assert_eq!(header("x-flick-attempt"), "3");
    let event: AlertEvent = serde_json::from_slice(body).expect("the body is the AlertEvent");
    assert_eq!(event.metric, "cpu");
    assert_eq!(header("x-flick-event-id"), event.id.to_string());
    assert_eq!(*body, first_body, "the same event on all three attempts");
    alerter.stop().await;
}

#[tokio::test]
async fn channel_secrets_are_sealed_at_rest_and_a_tampered_one_is_refused_with_a_clear_error() {
    let harness = Harness::new().await;
    let good = insert_channel(&harness.db.pool, "https://hooks.example.com/a").await;
    let bad = insert_channel(&harness.db.pool, "https://hooks.example.com/b").await;

    let stored: Vec<(Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT secret_headers, signing_secret FROM notification_channels")
            .fetch_all(&harness.db.pool)
            .await
            .expect("read");
    for (headers, secret) in &stored {
        let contains =
            |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(headers, API_TOKEN.as_bytes()) && !contains(headers, b"authorization"));
        assert!(!contains(secret, SIGNING_SECRET));
    }
    // Swapping ciphertexts between records fails too: the record id is authenticated.
    let sealed_good: Vec<u8> =
        sqlx::query_scalar("SELECT signing_secret FROM notification_channels WHERE id = $1")
            .bind(good)
            .fetch_one(&harness.db.pool)
            .await
            .expect("read");
    assert!(keys().open(bad.as_bytes(), &sealed_good).is_err());

    sqlx::query(
        "UPDATE notification_channels SET signing_secret = set_byte(signing_secret, 20, get_byte(signing_secret, 20) # 1)
         WHERE id = $1",
    )
    .bind(bad)
    .execute(&harness.db.pool)
    .await
    .expect("tamper");
    let tampered: Vec<u8> =
        sqlx::query_scalar("SELECT signing_secret FROM notification_channels WHERE id = $1")
            .bind(bad)
            .fetch_one(&harness.db.pool)
            .await
            .expect("read");
    let err = keys()
        .open(bad.as_bytes(), &tampered)
        .expect_err("tampered ciphertext");
    assert!(err.to_string().contains("decryption failed"), "{err}");

    let store = Store::new(harness.db.pool.clone(), "unused".into());
    let channels = load_channels(&store, Some(&keys())).await.expect("load");
    let ids: Vec<Uuid> = channels.iter().map(|c| c.channel.id).collect();
    assert_eq!(
        ids,
        vec![good],
        "the tampered channel is left out, the good one kept"
    );
    assert_eq!(
        channels[0].channel.signing_secret.as_deref(),
        Some(SIGNING_SECRET)
    );
    let printed = format!("{channels:?}");
    assert!(
        !printed.contains("super-secret") && !printed.contains("whsec"),
        "{printed}"
    );

    let without_key = load_channels(&store, None).await.expect("load");
    assert!(
        without_key.is_empty(),
        "no key: channels with secrets are skipped"
    );
}

#[tokio::test]
async fn a_webhook_that_never_answers_does_not_delay_evaluation() {
    let harness = Harness::new().await;
    // Accepts connections (the kernel does) and never answers.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", black_hole.local_addr().expect("address"));
    insert_channel(&harness.db.pool, &url).await;
    let mut config = harness.config();
    config.encryption.key = Some(KEY_HEX.as_str().into());
    config.alerter.notify_timeout_ms = 30_000;
    config.notify.allow_hosts = vec!["127.0.0.1".into()];
    let alerter = harness.start(config);
    harness.wait_for_leader(0).await;

    let start = minutes_ago(2);
    let mut values = vec![97.0; 4];
    values.extend([10.0; 2]);
    let published = std::time::Instant::now();
    harness.publish(&series("web-1", start, &values)).await;
    let events = harness.wait_for_events(4, Duration::from_secs(20)).await;
    let took = published.elapsed();
    assert_eq!(events.len(), 4);
    assert!(
        took < Duration::from_secs(5),
        "transitions took {took:?} with a hung webhook"
    );
    drop(black_hole);
    alerter.stop().await;
}

/// A receiver on `address` that records every call and answers `answer` (with `Location:
/// location` when set).
async fn receiver_at(
    address: &str,
    answer: StatusCode,
    location: Option<String>,
) -> (String, Receiver) {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind(address).await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let recorded = receiver.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let recorded = recorded.clone();
            let location = location.clone();
            async move {
                recorded.calls.lock().expect("lock").push((headers, body));
                let mut response = axum::response::Response::new(axum::body::Body::empty());
                *response.status_mut() = answer;
                if let Some(location) = location {
                    response.headers_mut().insert(
                        axum::http::header::LOCATION,
                        location.parse().expect("location"),
                    );
                }
                response
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, receiver)
}

fn calls(receiver: &Receiver) -> usize {
    receiver.calls.lock().expect("lock").len()
}

#[tokio::test]
async fn deliveries_never_reach_loopback_unless_allowed_and_never_follow_redirects() {
    // Loopback receivers written three ways; none is allowed.
    flick_shared::ops::prometheus();
    let harness = Harness::new().await;
    let (url, inside) = receiver_at("127.0.0.1:0", StatusCode::OK, None).await;
    let port = url
        .split(':')
        .nth(2)
        .and_then(|p| p.split('/').next())
        .expect("port");
    for url in [
        url.clone(),
        format!("http://0x7f000001:{port}/hook"),
        format!("http://localhost:{port}/hook"),
    ] {
        insert_channel(&harness.db.pool, &url).await;
    }
    let mut config = harness.config();
    config.encryption.key = Some(KEY_HEX.as_str().into());
    let alerter = harness.start(config);
    harness.wait_for_leader(0).await;
    harness
        .publish(&series("web-1", minutes_ago(2), &[97.0; 5]))
        .await;
    harness.wait_for_events(2, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(calls(&inside), 0, "nothing reached the loopback receiver");
    let page = flick_shared::ops::prometheus().render();
    let refused: f64 = page
        .lines()
        .find(|l| l.starts_with("flick_alerter_notifications_total{outcome=\"refused\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    assert!(
        refused >= 3.0,
        "each channel's delivery refused and counted: {refused}"
    );
    alerter.stop().await;

    // Allowed receivers that redirect elsewhere: the redirect is not followed, so the secret
    // header and the signature never reach the other host, and a redirect is not retried.
    let harness = Harness::new().await;
    let (elsewhere_url, elsewhere) = receiver_at("127.0.0.2:0", StatusCode::OK, None).await;
    for answer in [StatusCode::TEMPORARY_REDIRECT, StatusCode::FOUND] {
        let (url, redirecting) =
            receiver_at("127.0.0.1:0", answer, Some(elsewhere_url.clone())).await;
        let channel = insert_channel(&harness.db.pool, &url).await;
        let mut config = harness.config();
        config.encryption.key = Some(KEY_HEX.as_str().into());
        config.notify.allow_hosts = vec!["127.0.0.0/8".into()];
        let alerter = harness.start(config);
        harness.wait_for_leader(0).await;
        harness
            .publish(&series(
                &format!("web-{}", answer.as_u16()),
                minutes_ago(2),
                &[97.0; 5],
            ))
            .await;
        eventually(
            "the redirecting receiver called",
            Duration::from_secs(20),
            || {
                let n = calls(&redirecting);
                async move { (n >= 1).then_some(()) }
            },
        )
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let bodies: Vec<Bytes> = redirecting
            .calls
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, b)| b.clone())
            .collect();
        let distinct: std::collections::HashSet<&Bytes> = bodies.iter().collect();
        assert_eq!(
            bodies.len(),
            distinct.len(),
            "{answer}: a redirect is final, not retried"
        );
        assert_eq!(
            calls(&elsewhere),
            0,
            "{answer}: the redirect was not followed"
        );
        alerter.stop().await;
        sqlx::query("DELETE FROM notification_channels WHERE id = $1")
            .bind(channel)
            .execute(&harness.db.pool)
            .await
            .expect("delete");
    }
}
