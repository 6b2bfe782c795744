//! The live WebSocket with real clients, a real gateway and real NATS.

mod common;

use std::time::Duration;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use common::ws::{Socket, closed, expect, next, open, send};
use common::{Gateway, JWT_SECRET};
use flick_shared::testkit;
use flick_shared::wire::{AlertEvent, AlertSeverity, AlertState, MetricSample, ServerId};
use reqwest::Method;

fn sample(server: &str, cpu: f64) -> MetricSample {
    common::sample_at(server, flick_collector::now_millis(), cpu)
}

async fn publish(client: &async_nats::Client, gw: &Gateway, sample: &MetricSample) {
    common::publish_sample(client, gw, sample).await;
    client.flush().await.expect("flush");
}

/// `web-1` and `web-2`, owned by the holder of `token`.
async fn two_servers(gw: &Gateway, token: &str) {
    for (id, name) in [("web-1", "web"), ("web-2", "other")] {
        gw.create_server(token, json!({ "id": id, "name": name }))
            .await;
    }
}

fn alert_event(server: &str, severity: AlertSeverity, value: f64, threshold: f64) -> AlertEvent {
    AlertEvent {
        v: 1,
        id: uuid::Uuid::new_v4(),
        alert_id: uuid::Uuid::new_v4(),
        server_id: ServerId::parse(server).expect("id"),
        metric: "cpu".into(),
        severity,
        state: AlertState::Firing,
        value: Some(value),
        threshold: Some(threshold),
        started_at: chrono::Utc::now(),
        at: chrono::Utc::now(),
        message: Some("CPU high".into()),
        top_processes: Vec::new(),
        container: None,
    }
}

async fn subscribe(socket: &mut Socket, server: &str, interval_ms: Option<u64>) -> Value {
    let mut data = json!({ "serverId": server });
    if let Some(ms) = interval_ms {
        data["intervalMs"] = json!(ms);
    }
    send(
        socket,
        json!({ "type": "server_metrics.subscribe", "id": server, "data": data }),
    )
    .await;
    next(socket, Duration::from_secs(5))
        .await
        .expect("an answer")
}

#[tokio::test]
async fn header_and_first_message_authentication_work_and_failures_close_with_a_reason() {
    let gw = Gateway::start_with(|c| c.gateway.ws_auth_timeout_ms = 500).await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;

    let mut by_header = open(&gw, Some(&ada.access), None).await.expect("upgrade");
    let answer = subscribe(&mut by_header, "web-1", None).await;
    assert_eq!(answer["type"], "ack", "{answer}");

    let mut by_message = open(&gw, None, None).await.expect("upgrade");
    send(
        &mut by_message,
        json!({ "type": "server_metrics.subscribe", "data": { "serverId": "web-1" } }),
    )
    .await;
    assert_eq!(
        expect(&mut by_message, "error").await["data"]["code"],
        "unauthorized"
    );
    send(
        &mut by_message,
        json!({ "type": "auth", "id": 1, "data": { "token": ada.access } }),
    )
    .await;
    let auth = expect(&mut by_message, "ack").await;
    assert_eq!(
        (auth["id"].clone(), auth["data"]["userId"].clone()),
        (json!(1), json!(ada.user_id))
    );
    assert_eq!(
        subscribe(&mut by_message, "web-1", None).await["type"],
        "ack"
    );

    let mut silent = open(&gw, None, None).await.expect("upgrade");
    let (code, reason) = closed(&mut silent, Duration::from_secs(5)).await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("not authenticated"), "{reason}");

    let mut bad = open(&gw, None, None).await.expect("upgrade");
    send(
        &mut bad,
        json!({ "type": "auth", "data": { "token": "forged.token.here" } }),
    )
    .await;
    let (code, reason) = closed(&mut bad, Duration::from_secs(5)).await;
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::Policy, "invalid or expired token")
    );

    match open(&gw, Some("forged.token.here"), None).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("a bad header token must be refused at the upgrade: {other:?}"),
    }
    match open(&gw, Some(&ada.access), Some("https://evil.example.com")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("a foreign origin must be refused: {other:?}"),
    }
    // The gateway's own host under another scheme is another origin.
    let own = format!("http://{}", gw.address);
    open(&gw, Some(&ada.access), Some(&own))
        .await
        .expect("the gateway's own origin");
    match open(
        &gw,
        Some(&ada.access),
        Some(&format!("https://{}", gw.address)),
    )
    .await
    {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("https:// is not the gateway's http:// origin: {other:?}"),
    }
    gw.stop().await;
}

#[tokio::test]
async fn subscribed_samples_arrive_in_the_original_protocol_and_stop_after_unsubscribe() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    two_servers(&gw, &ada.access).await;
    let nats = testkit::connect().await;
    let mut socket = open(&gw, Some(&ada.access), None).await.expect("upgrade");
    assert_eq!(subscribe(&mut socket, "web-1", None).await["type"], "ack");

    publish(&nats, &gw, &sample("web-2", 99.0)).await;
    publish(&nats, &gw, &sample("web-1", 45.2)).await;
    let frame = expect(&mut socket, "resource_metrics").await;
    let data = &frame["data"];
    assert_eq!(data["serverId"], "web-1", "never another server's samples");
    for field in [
        "serverId",
        "cpuUsage",
        "memoryUsage",
        "diskUsage",
        "networkUsage",
        "timestamp",
    ] {
        assert!(!data[field].is_null(), "{field} missing: {frame}");
    }
    assert_eq!(data["cpuUsage"], 45.2);
    assert!(
        data.get("containers").is_none(),
        "absent without a list: {frame}"
    );

    // A sample carrying its host's container list passes it through as it is.
    let with_list = MetricSample {
        containers: Some(vec![flick_shared::wire::ContainerUsage {
            id: "0123456789ab".into(),
            name: "db-1".into(),
            image: "postgres:15".into(),
            state: "exited".into(),
            health: None,
            exit_code: Some(137),
            restarts: 2,
            cpu_percent: 0.0,
            memory_bytes: 0,
            memory_limit_bytes: None,
            net_rx_bytes: 10,
            net_tx_bytes: 20,
            block_read_bytes: 30,
            block_write_bytes: 40,
        }]),
        ..sample("web-1", 46.0)
    };
    publish(&nats, &gw, &with_list).await;
    let frame = expect(&mut socket, "resource_metrics").await;
    let container = &frame["data"]["containers"][0];
    assert_eq!(
        (
            container["name"].clone(),
            container["state"].clone(),
            container["exitCode"].clone(),
            container["blockWriteBytes"].clone()
        ),
        (json!("db-1"), json!("exited"), json!(137), json!(40)),
        "{frame}"
    );
    // The largest list the wire allows (500 containers with long image names, ~330 KiB) is one
    // frame, and it reaches the client rather than closing the connection.
    let template = with_list.containers.as_ref().expect("a list")[0].clone();
    let largest = MetricSample {
        containers: Some(
            (0..flick_shared::wire::MAX_CONTAINERS)
                .map(|i| flick_shared::wire::ContainerUsage {
                    name: format!("worker-{i:03}-{}", "x".repeat(200)),
                    image: format!("registry.example.com/{}:{i}", "team/".repeat(40)),
                    ..template.clone()
                })
                .collect(),
        ),
        ..sample("web-1", 47.0)
    };
    publish(&nats, &gw, &largest).await;
    let frame = expect(&mut socket, "resource_metrics").await;
    assert_eq!(
        frame["data"]["containers"].as_array().map(Vec::len),
        Some(flick_shared::wire::MAX_CONTAINERS)
    );
    assert!(frame.to_string().len() > 300 * 1024, "a frame over 300 KiB");

    send(
        &mut socket,
        json!({ "type": "server_metrics.unsubscribe", "id": "u", "data": { "serverId": "web-1" } }),
    )
    .await;
    assert_eq!(expect(&mut socket, "ack").await["id"], "u");
    publish(&nats, &gw, &sample("web-1", 50.0)).await;
    assert!(
        next(&mut socket, Duration::from_millis(700))
            .await
            .is_none(),
        "nothing after unsubscribing"
    );
    gw.stop().await;
}

#[tokio::test]
async fn another_users_server_is_not_found_and_its_samples_never_arrive() {
    let gw = Gateway::start().await;
    let _admin = gw.register("admin@example.com").await;
    let a = gw.register("a@example.com").await;
    let b = gw.register("b@example.com").await;
    gw.create_server(&a.access, json!({ "id": "a-srv", "name": "A's" }))
        .await;
    let nats = testkit::connect().await;
    let mut socket = open(&gw, Some(&b.access), None).await.expect("upgrade");
    let denied = subscribe(&mut socket, "a-srv", None).await;
    let missing = subscribe(&mut socket, "no-such-srv", None).await;
    assert_eq!(
        denied["data"], missing["data"],
        "forbidden and unknown look the same"
    );
    assert_eq!(denied["data"]["code"], "not_found");
    publish(&nats, &gw, &sample("a-srv", 10.0)).await;
    assert!(
        next(&mut socket, Duration::from_millis(700))
            .await
            .is_none()
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_alert_for_a_subscribed_server_arrives_as_an_alert_message() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    two_servers(&gw, &ada.access).await;
    let nats = testkit::connect().await;
    let mut watcher = open(&gw, Some(&ada.access), None).await.expect("upgrade");
    assert_eq!(subscribe(&mut watcher, "web-1", None).await["type"], "ack");
    let mut all = open(&gw, Some(&ada.access), None).await.expect("upgrade");
    send(&mut all, json!({ "type": "alerts.subscribe" })).await;
    expect(&mut all, "ack").await;

    let event = alert_event("web-1", AlertSeverity::Critical, 97.0, 90.0);
    let payload = serde_json::to_vec(&event).expect("json");
    nats.publish(gw.subjects.alerts(&event.server_id), payload.clone().into())
        .await
        .expect("publish");
    // The same transition published twice (an alerter's recovery) is shown once.
    nats.publish(gw.subjects.alerts(&event.server_id), payload.into())
        .await
        .expect("publish");
    nats.flush().await.expect("flush");
    for socket in [&mut watcher, &mut all] {
        let alert = expect(socket, "alert").await;
        assert_eq!(alert["data"]["id"], json!(event.id));
        assert_eq!(alert["data"]["severity"], "critical");
        assert!(
            next(socket, Duration::from_millis(500)).await.is_none(),
            "shown once"
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_disconnected_while_others_keep_receiving_on_time() {
    let gw = Gateway::start_with(|c| c.gateway.ws_send_timeout_ms = 1_000).await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    let nats = testkit::connect().await;
    let mut stuck = open(&gw, Some(&ada.access), None).await.expect("upgrade");
    assert_eq!(subscribe(&mut stuck, "web-1", None).await["type"], "ack");
    let mut healthy = open(&gw, Some(&ada.access), None).await.expect("upgrade");
    assert_eq!(subscribe(&mut healthy, "web-1", None).await["type"], "ack");

    // Big samples, fast: the stuck client's socket buffers fill up; it stops reading.
    let mut big = sample("web-1", 1.0);
    big.hostname = Some("h".repeat(60_000));
    let reader = tokio::spawn(async move {
        let mut received = 0u64;
        let mut worst = Duration::ZERO;
        while let Some(frame) = next(&mut healthy, Duration::from_secs(3)).await {
            if frame["type"] == "resource_metrics" {
                received += 1;
                let sent: chrono::DateTime<chrono::Utc> = frame["data"]["timestamp"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .expect("timestamp");
                worst = worst.max((chrono::Utc::now() - sent).to_std().unwrap_or_default());
            }
        }
        (received, worst)
    });
    for i in 0..600 {
        big.cpu_usage = f64::from(i % 100);
        big.timestamp = flick_collector::now_millis();
        nats.publish(
            gw.subjects.metrics(&big.server_id),
            serde_json::to_vec(&big).expect("json").into(),
        )
        .await
        .expect("publish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nats.flush().await.expect("flush");
    let (received, worst) = reader.await.expect("reader");
    assert!(
        received > 100,
        "the healthy client kept receiving: {received}"
    );
    assert!(
        worst < Duration::from_secs(1),
        "and on time: worst {worst:?}"
    );

    let page = gw
        .http
        .get(format!("{}/metrics", gw.ops))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        page.contains("flick_gateway_ws_disconnects_total{reason=\"too slow\"}"),
        "the stuck client was disconnected:\n{}",
        page.lines()
            .filter(|l| l.contains("ws_"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(stuck);
    gw.stop().await;
}

#[tokio::test]
async fn an_interval_downsamples_to_the_latest_value() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    let nats = testkit::connect().await;
    let mut socket = open(&gw, Some(&ada.access), None).await.expect("upgrade");
    assert_eq!(
        subscribe(&mut socket, "web-1", Some(1_000)).await["data"]["intervalMs"],
        1_000
    );
    for cpu in 1..=10 {
        publish(&nats, &gw, &sample("web-1", f64::from(cpu))).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut values = Vec::new();
    while let Some(frame) = next(&mut socket, Duration::from_millis(1_500)).await {
        values.push(frame["data"]["cpuUsage"].as_f64().unwrap_or(0.0));
    }
    assert!(values.len() <= 2, "at most one per second: {values:?}");
    assert_eq!(
        values.last(),
        Some(&10.0),
        "the newest value is the one sent: {values:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_expiring_token_closes_the_connection_unless_renewed() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    let short_lived = |secs: i64| {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({ "sub": ada.user_id, "sid": ada.session_id, "role": "user",
                             "iat": now, "exp": now + secs });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        )
        .expect("sign")
    };
    let mut expiring = open(&gw, Some(&short_lived(2)), None)
        .await
        .expect("upgrade");
    let (code, reason) = closed(&mut expiring, Duration::from_secs(10)).await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("expired"), "{reason}");

    let mut renewed = open(&gw, Some(&short_lived(2)), None)
        .await
        .expect("upgrade");
    send(
        &mut renewed,
        json!({ "type": "auth", "data": { "token": short_lived(600) } }),
    )
    .await;
    expect(&mut renewed, "ack").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    send(&mut renewed, json!({ "type": "ping" })).await;
    expect(&mut renewed, "pong").await;
    gw.stop().await;
}

#[tokio::test]
async fn two_gateways_on_one_nats_deliver_the_same_samples() {
    let first = Gateway::start().await;
    let ada = first.register("ada@example.com").await;
    first
        .create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    // A second gateway on the same database and subjects.
    let stop = flick_shared::shutdown::CancellationToken::new();
    let (second_address, _, second) =
        common::spawn(common::config(&first.db, &first.subjects), &stop).await;
    let mut request = format!("ws://{second_address}/api/v1/ws")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", ada.access).parse().expect("header"),
    );
    let mut on_second = testkit::eventually("the second gateway", Duration::from_secs(20), || {
        let request = request.clone();
        async move {
            tokio_tungstenite::connect_async(request)
                .await
                .ok()
                .map(|(s, _)| s)
        }
    })
    .await;
    let mut on_first = open(&first, Some(&ada.access), None)
        .await
        .expect("upgrade");
    assert_eq!(subscribe(&mut on_first, "web-1", None).await["type"], "ack");
    assert_eq!(
        subscribe(&mut on_second, "web-1", None).await["type"],
        "ack"
    );
    let nats = testkit::connect().await;
    let mut sent = Vec::new();
    for cpu in [11.0, 22.0, 33.0] {
        let sample = sample("web-1", cpu);
        publish(&nats, &first, &sample).await;
        sent.push(cpu);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for socket in [&mut on_first, &mut on_second] {
        let mut got = Vec::new();
        while got.len() < 3 {
            let frame = expect(socket, "resource_metrics").await;
            got.push(frame["data"]["cpuUsage"].as_f64().unwrap_or(0.0));
        }
        assert_eq!(got, sent);
    }
    stop.cancel();
    let _ = second.await;
    first.stop().await;
}

#[tokio::test]
async fn a_server_given_away_or_deleted_stops_streaming_to_its_former_owner() {
    let gw = Gateway::start_with(|c| c.gateway.ws_recheck_secs = 1).await;
    let admin = gw.register("admin@example.com").await;
    let ada = gw.register("ada@example.com").await;
    let bob = gw.register("bob@example.com").await;
    two_servers(&gw, &ada.access).await;
    let nats = testkit::connect().await;
    let mut socket = open(&gw, Some(&ada.access), None).await.expect("upgrade");
    assert_eq!(subscribe(&mut socket, "web-1", None).await["type"], "ack");
    assert_eq!(subscribe(&mut socket, "web-2", None).await["type"], "ack");
    send(&mut socket, json!({ "type": "alerts.subscribe" })).await;
    expect(&mut socket, "ack").await;

    let (status, _) = gw
        .call(
            Method::PUT,
            "/api/v1/servers/web-1/owner",
            Some(&admin.access),
            Some(json!({ "ownerId": bob.user_id })),
        )
        .await;
    assert!(status.is_success(), "{status}");
    let (status, _) = gw
        .call(
            Method::DELETE,
            "/api/v1/servers/web-2",
            Some(&ada.access),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");

    let mut revoked = Vec::new();
    while revoked.len() < 2 {
        let frame = next(&mut socket, Duration::from_secs(10))
            .await
            .expect("a revocation within the re-check period");
        assert_eq!(frame["type"], "error", "{frame}");
        assert_eq!(frame["data"]["code"], "not_found", "{frame}");
        revoked.push(frame["data"]["serverId"].as_str().expect("id").to_owned());
    }
    revoked.sort();
    assert_eq!(revoked, ["web-1", "web-2"]);

    let mut bobs = open(&gw, Some(&bob.access), None).await.expect("upgrade");
    assert_eq!(subscribe(&mut bobs, "web-1", None).await["type"], "ack");
    publish(&nats, &gw, &sample("web-1", 11.0)).await;
    publish(&nats, &gw, &sample("web-2", 12.0)).await;
    let event = alert_event("web-1", AlertSeverity::Warning, 85.0, 80.0);
    nats.publish(
        gw.subjects.alerts(&event.server_id),
        serde_json::to_vec(&event).expect("json").into(),
    )
    .await
    .expect("publish");
    nats.flush().await.expect("flush");

    // Bob watches web-1, so its alert may come first: answers and alerts jump the queue.
    let received = loop {
        let frame = next(&mut bobs, Duration::from_secs(10))
            .await
            .expect("bob's sample");
        if frame["type"] != "alert" {
            break frame;
        }
    };
    assert_eq!(received["type"], "resource_metrics", "{received}");
    assert_eq!(received["data"]["serverId"], "web-1");
    assert!(
        next(&mut socket, Duration::from_secs(1)).await.is_none(),
        "the former owner sees nothing of either server"
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_admin_demoted_mid_stream_keeps_only_the_alerts_of_their_own_servers() {
    let gw = Gateway::start().await;
    let admin = gw.register("admin@example.com").await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "ada-1", "name": "ada's" }))
        .await;
    gw.create_server(&admin.access, json!({ "id": "own-1", "name": "own" }))
        .await;
    let nats = testkit::connect().await;
    let mut socket = open(&gw, Some(&admin.access), None).await.expect("upgrade");
    send(&mut socket, json!({ "type": "alerts.subscribe" })).await;
    expect(&mut socket, "ack").await;
    let publish_alert = |server: &'static str| {
        let (nats, subjects) = (nats.clone(), gw.subjects.clone());
        async move {
            let event = alert_event(server, AlertSeverity::Warning, 85.0, 80.0);
            nats.publish(
                subjects.alerts(&event.server_id),
                serde_json::to_vec(&event).expect("json").into(),
            )
            .await
            .expect("publish");
            nats.flush().await.expect("flush");
        }
    };
    publish_alert("ada-1").await;
    assert_eq!(
        expect(&mut socket, "alert").await["data"]["serverId"],
        "ada-1",
        "an admin sees every server's alerts"
    );

    // Demoted by hand in the database: the notification re-checks the connection.
    sqlx::query("UPDATE users SET role = 'user' WHERE id = $1::uuid")
        .bind(&admin.user_id)
        .execute(&gw.db.pool)
        .await
        .expect("demote");
    tokio::time::sleep(Duration::from_secs(2)).await;
    publish_alert("ada-1").await;
    publish_alert("own-1").await;
    let frame = next(&mut socket, Duration::from_secs(5))
        .await
        .expect("the own server's alert");
    assert_eq!(frame["data"]["serverId"], "own-1", "{frame}");
    assert!(
        next(&mut socket, Duration::from_millis(700))
            .await
            .is_none(),
        "nothing more"
    );
    gw.stop().await;
}
