//! A WebSocket client of the gateway watching one server, counting the frames it gets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use flick_shared::testkit::{self, eventually};

use crate::common::Stack;

pub struct Watch {
    frames: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    /// `resource_metrics` frames received until now.
    pub async fn stop(self) -> u64 {
        self.task.abort();
        self.frames.load(Ordering::Relaxed)
    }
}

/// Registers the first account (an admin), waits for the server to be discovered, and
/// subscribes to its live samples; returns once the first frame arrived.
pub async fn watch(stack: &Stack, pool: &PgPool, server: &str) -> Watch {
    let http = testkit::http();
    let answer: Value = http
        .post(format!("{}/api/v1/auth/register", stack.gateway_url()))
        .json(&json!({"email": "drill@example.com", "password": "a long drill passphrase"}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("a JSON answer");
    let token = answer["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token in {answer}"))
        .to_owned();
    eventually(
        "the watched server discovered",
        Duration::from_secs(30),
        || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM servers WHERE id = $1")
                .bind(server)
                .fetch_one(pool)
                .await
                .ok()
                .filter(|n| *n == 1)
        },
    )
    .await;
    let mut request = format!("ws://127.0.0.1:{}/api/v1/ws", stack.gateway_port)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("open the WebSocket");
    socket
        .send(Message::text(
            json!({"type": "server_metrics.subscribe", "data": {"serverId": server}, "id": 1})
                .to_string(),
        ))
        .await
        .expect("subscribe");
    let mut frames = 0u64;
    let mut acked = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while frames == 0 {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("the first live frame within 30 s")
            .expect("the socket open")
            .expect("a frame");
        if let Message::Text(text) = message {
            let frame: Value = serde_json::from_str(text.as_str()).expect("JSON frame");
            match frame["type"].as_str() {
                Some("ack") => acked = true,
                Some("resource_metrics") => frames += 1,
                _ => panic!("unexpected frame {frame}"),
            }
        }
    }
    assert!(acked, "the subscription was acknowledged");
    let frames = Arc::new(AtomicU64::new(frames));
    let task = tokio::spawn({
        let frames = frames.clone();
        async move {
            while let Some(Ok(message)) = socket.next().await {
                if let Message::Text(text) = message
                    && text.as_str().contains("\"resource_metrics\"")
                {
                    frames.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    Watch { frames, task }
}
