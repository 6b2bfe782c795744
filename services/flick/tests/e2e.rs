//! The whole stack through its public interfaces only: every service a separate process (the
//! real binaries) on a NATS server started with the repository's `nats.conf` (each service as
//! its own user) and the real PostgreSQL. What a newcomer does on the first day, checked.

mod common;

use std::time::Duration;

use async_nats::{ConnectOptions, Event};
use futures::{SinkExt as _, StreamExt as _};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use common::{Api, Service, Stack};
use flick_shared::natsauth::Role;
use flick_shared::testkit::{self, eventually};
use flick_shared::wire::MetricSample;

type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client that remembers every `alert` frame it read while waiting for others.
struct LiveClient {
    socket: WebSocket,
    alerts: Vec<Value>,
}

impl LiveClient {
    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("send");
    }

    /// The first frame satisfying `wanted`, among the alerts already read or the next frames.
    async fn wait_for(&mut self, within: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(alert) = self.alerts.iter().find(|a| wanted(a)) {
            return alert.clone();
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no wanted frame within {within:?}"))
                .expect("socket open")
                .expect("frame");
            if let Message::Text(text) = message {
                let frame: Value = serde_json::from_str(text.as_str()).expect("JSON frame");
                if frame["type"] == "alert" {
                    self.alerts.push(frame.clone());
                }
                if wanted(&frame) {
                    return frame;
                }
            }
        }
    }
}

#[tokio::test]
async fn a_newcomer_sees_the_fleet_live_stored_alerted_and_logged_through_public_interfaces() {
    let hub = testkit::HubServer::start(&flick_shared::Subjects::default());
    let stack = Stack::on_hub(&hub)
        .await
        .with_env("FLICK_ALERTER__FOR_SECS", "2");

    // An integration watches the public subjects with the read-only identity `flick init` made.
    let (violations_tx, mut violations) = mpsc::unbounded_channel();
    let integration = ConnectOptions::with_credentials_file(hub.creds(Role::Integration))
        .await
        .expect("the integration's creds")
        .add_root_certificates(hub.ca())
        .require_tls(true)
        .custom_inbox_prefix(flick_shared::nats::inbox_prefix("integration"))
        .event_callback(move |event| {
            let tx = violations_tx.clone();
            async move {
                if let Event::ServerError(err) = event {
                    let _ = tx.send(err.to_string().to_lowercase());
                }
            }
        })
        .connect(hub.url())
        .await
        .expect("the integration user connects");
    let mut observed = integration
        .subscribe("flick.metrics.*")
        .await
        .expect("subscribe");
    integration.flush().await.expect("flush");

    let _backend = stack.start_backend().await;

    // A user registers (the first account is the admin) and logs in.
    let api = Api {
        http: testkit::http(),
        base: stack.gateway_url(),
    };
    let credentials =
        json!({ "email": "ops@example.com", "password": "correct horse battery staple" });
    let (status, _) = api
        .call(
            Method::POST,
            "/auth/register",
            None,
            Some(credentials.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, session) = api
        .call(Method::POST, "/auth/login", None, Some(credentials))
        .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let token = session["accessToken"]
        .as_str()
        .expect("access token")
        .to_owned();

    // A WebSocket client watches every alert from the start.
    let mut request = format!("ws://127.0.0.1:{}/api/v1/ws", stack.gateway_port)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("WebSocket upgrade");
    let mut live = LiveClient {
        socket,
        alerts: Vec::new(),
    };
    live.send(json!({ "type": "alerts.subscribe", "id": 1 }))
        .await;
    live.wait_for(Duration::from_secs(5), |f| f["type"] == "ack")
        .await;

    // The local collector and a simulated fleet of three, one of them above the CPU threshold.
    let _collector = stack.spawn(&Service::Collector, &[]);
    let _simulator = stack.spawn(&Service::Simulator { servers: 3, hot: 1 }, &[]);
    let hot_server = flick_collector::simulate::server_id(0).to_string();

    // The local collector's server appears in the fleet.
    let hostname = flick_shared::nats::sysname();
    let server = eventually(
        "the collector's server listed by GET /servers",
        Duration::from_secs(30),
        || {
            let api = &api;
            let token = token.clone();
            let hostname = hostname.clone();
            async move {
                let servers = api.get("/servers", &token).await;
                servers
                    .as_array()?
                    .iter()
                    .find(|s| s["hostname"] == hostname.as_str())
                    .cloned()
            }
        },
    )
    .await;
    let server_id = server["id"].as_str().expect("id").to_owned();
    assert_eq!(server["status"], "online", "{server}");

    // Its live samples arrive on the WebSocket, in the original protocol.
    live.send(
        json!({ "type": "server_metrics.subscribe", "id": 2, "data": { "serverId": server_id } }),
    )
    .await;
    let frame = live
        .wait_for(Duration::from_secs(10), |f| f["type"] == "resource_metrics")
        .await;
    assert_eq!(frame["data"]["serverId"], server_id.as_str());
    for field in [
        "cpuUsage",
        "memoryUsage",
        "diskUsage",
        "networkUsage",
        "timestamp",
    ] {
        assert!(!frame["data"][field].is_null(), "{field} missing: {frame}");
    }

    // After the storage interval the history has them.
    let history = eventually(
        "stored samples in GET /servers/{id}/metrics",
        Duration::from_secs(30),
        || {
            let api = &api;
            let path = format!("/servers/{server_id}/metrics?bucket=1s");
            let token = token.clone();
            async move {
                let history = api.get(&path, &token).await;
                let points = history["points"].as_array()?;
                (!points.is_empty()).then_some(history)
            }
        },
    )
    .await;
    let point = &history["points"][0];
    assert!(point["cpu"]["avg"].as_f64().is_some(), "{point}");

    // A simulated server above the CPU threshold fires: on the WebSocket and in GET /alerts.
    let alerts = eventually(
        "a firing CPU alert in GET /alerts",
        Duration::from_secs(60),
        || {
            let api = &api;
            let token = token.clone();
            let path = format!("/alerts?serverId={hot_server}&state=firing");
            async move {
                let alerts = api.get(&path, &token).await;
                let firing = alerts["items"]
                    .as_array()?
                    .iter()
                    .any(|a| a["metric"] == "cpu");
                firing.then_some(alerts)
            }
        },
    )
    .await;
    assert_eq!(alerts["items"][0]["serverName"], "sim-0000", "{alerts}");
    let alert = live
        .wait_for(Duration::from_secs(10), |f| {
            f["type"] == "alert" && f["data"]["serverId"] == hot_server.as_str()
        })
        .await;
    assert_eq!(alert["data"]["state"], "firing", "{alert}");
    assert_eq!(alert["data"]["metric"], "cpu", "{alert}");

    // A log entry posted comes back from GET /logs.
    let marker = format!("e2e disk check {}", uuid::Uuid::new_v4());
    let (status, body) = api
        .call(
            Method::POST,
            "/logs",
            Some(&token),
            Some(json!({ "serverId": server_id, "level": "error", "message": marker })),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let logs = eventually(
        "the posted log in GET /logs",
        Duration::from_secs(30),
        || {
            let api = &api;
            let token = token.clone();
            let path = format!("/logs?serverId={server_id}&level=error");
            let marker = marker.clone();
            async move {
                let logs = api.get(&path, &token).await;
                let found = logs["items"]
                    .as_array()?
                    .iter()
                    .any(|l| l["message"] == marker.as_str());
                found.then_some(logs)
            }
        },
    )
    .await;
    assert_eq!(logs["items"][0]["level"], "error");

    // The integration received the samples and may publish nothing.
    let message = testkit::next_message(&mut observed, Duration::from_secs(5)).await;
    let sample: MetricSample = serde_json::from_slice(&message.payload).expect("a MetricSample");
    assert!(sample.cpu_usage >= 0.0);
    integration
        .publish(format!("flick.metrics.{server_id}"), "{}".into())
        .await
        .expect("send PUB");
    integration.flush().await.expect("flush");
    let violation = tokio::time::timeout(Duration::from_secs(3), violations.recv())
        .await
        .expect("a permissions violation")
        .expect("error");
    assert!(violation.contains("permissions violation"), "{violation}");
}
