//! A channel URL that is itself a credential (a Slack or Discord incoming webhook) is sealed
//! like every other channel secret: the API, the audit log and the database's clear columns
//! show it with its token cut out, while the real alerter still calls the full URL. A channel
//! stored before URLs were sealed is sealed when the gateway next starts.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use reqwest::{Method, StatusCode};
use serde_json::json;

use common::{Api, Service, Stack};
use flick_shared::testkit::eventually;

const SLACK_TOKEN: &str = "slackTokenXXXXXXXXXXXXXXXX";
const DISCORD_TOKEN: &str = "discord-Token_YYYYYYYYYYYYYY";

/// Every request's path and body.
#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<Mutex<Vec<(String, String)>>>,
}

async fn record(State(receiver): State<Receiver>, uri: Uri, body: Bytes) -> &'static str {
    receiver
        .calls
        .lock()
        .expect("lock")
        .push((uri.path().to_owned(), String::from_utf8_lossy(&body).into()));
    "ok"
}

impl Receiver {
    async fn start() -> (Self, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let receiver = Receiver::default();
        let app = Router::new().fallback(record).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, base)
    }

    fn paths(&self) -> Vec<String> {
        let calls = self.calls.lock().expect("lock");
        calls.iter().map(|(path, _)| path.clone()).collect()
    }
}

#[tokio::test]
async fn slack_and_discord_urls_are_sealed_shown_without_their_token_and_still_called() {
    let stack = Stack::new()
        .await
        .with_env("FLICK_NOTIFY__ALLOW_HOSTS", "127.0.0.1")
        .with_env("FLICK_ALERTER__NOTIFY_GROUP_SECS", "0");
    let mut backend = stack.start_backend().await;
    let api = Api::of(&stack);
    let admin = api.register("root@example.com").await;
    let (receiver, base) = Receiver::start().await;

    let slack_url = format!("{base}/services/T0001/B0002/{SLACK_TOKEN}");
    let (status, slack) = api
        .call(
            Method::POST,
            "/notification-channels",
            Some(&admin),
            Some(json!({ "name": "team chat", "kind": "slack", "url": slack_url })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{slack}");
    assert_eq!(slack["url"], format!("{base}/services/T0001/B0002/…"));

    // A Discord channel written before URLs were sealed: its URL in the clear.
    let discord_id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO notification_channels (id, name, kind, url) VALUES ($1, 'ops room', 'discord', $2)",
    )
    .bind(discord_id)
    .bind(format!("{base}/api/webhooks/42/{DISCORD_TOKEN}"))
    .execute(&stack.db.pool)
    .await
    .expect("insert an unsealed channel");
    let _ = backend.gateway.kill();
    backend.gateway = stack.spawn(&Service::Gateway, &[]);
    stack
        .wait_ready(&format!("http://{}/readyz", stack.gateway_ops))
        .await;

    let listed = api.get("/notification-channels", &admin).await;
    let shown: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|c| c["url"].as_str())
        .collect();
    assert_eq!(
        shown,
        [
            format!("{base}/services/T0001/B0002/…"),
            format!("{base}/api/webhooks/42/…")
        ],
        "{listed}"
    );
    // Nothing readable in the database holds a token: not the channels' clear columns, not
    // the audit log.
    let clear: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws(' ', name, url, settings::text) FROM notification_channels
         UNION ALL SELECT concat_ws(' ', action, target, detail::text) FROM audit_log",
    )
    .fetch_all(&stack.db.pool)
    .await
    .expect("read the clear columns");
    for text in &clear {
        assert!(
            !text.contains(SLACK_TOKEN) && !text.contains(DISCORD_TOKEN),
            "a token in the clear: {text}"
        );
    }

    // "Send test" on both: the alerter calls the full, sealed URLs.
    for id in [
        slack["id"].as_str().expect("id").to_owned(),
        discord_id.to_string(),
    ] {
        let (status, body) = api
            .call(
                Method::POST,
                &format!("/notification-channels/{id}/test"),
                Some(&admin),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    eventually("both test notices", Duration::from_secs(30), || {
        let mut paths = receiver.paths();
        paths.sort();
        async move { (paths.len() >= 2).then_some(paths) }
    })
    .await;
    let mut paths = receiver.paths();
    paths.sort();
    assert_eq!(
        paths,
        [
            format!("/api/webhooks/42/{DISCORD_TOKEN}"),
            format!("/services/T0001/B0002/{SLACK_TOKEN}"),
        ]
    );
    let sent = api
        .get(
            &format!("/notification-channels/{discord_id}/notifications"),
            &admin,
        )
        .await;
    assert_eq!(sent[0]["status"], "delivered", "{sent}");
}
