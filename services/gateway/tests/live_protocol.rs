//! The live protocol's typed messages, the fleet subscription and `since` replays, with real
//! clients, a real gateway, real NATS (JetStream for the replays) and PostgreSQL.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use common::ws::{Socket, closed, expect, next, open, send};
use common::{Gateway, publish_sample as publish, sample_at};
use flick_shared::subjects::StreamKind;
use flick_shared::testkit;
use reqwest::Method;

/// A socket authenticated by its first message, and the `auth` ack.
async fn authenticated(gw: &Gateway, token: &str) -> (Socket, Value) {
    let mut socket = open(gw, None, None).await.expect("upgrade");
    send(
        &mut socket,
        json!({ "type": "auth", "id": "a", "data": { "token": token } }),
    )
    .await;
    let ack = expect(&mut socket, "ack").await;
    (socket, ack)
}

/// The answer to `message` (frames of other kinds before it are skipped).
async fn ask(socket: &mut Socket, message: Value) -> Value {
    let id = message["id"].clone();
    send(socket, message).await;
    loop {
        let frame = next(socket, Duration::from_secs(5))
            .await
            .expect("an answer");
        if frame["id"] == id && frame["type"] != "resource_metrics" {
            return frame;
        }
    }
}

#[tokio::test]
async fn every_message_type_is_answered_bad_ones_get_typed_errors_and_limits_are_advertised() {
    let gw = Gateway::start_with(|c| {
        c.gateway.ws_max_subscriptions = 7;
        c.gateway.ws_messages_per_second = 30;
        c.gateway.ws_max_queued = 123;
        c.gateway.ws_max_message_bytes = 4096;
    })
    .await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    let (mut socket, ack) = authenticated(&gw, &ada.access).await;
    assert_eq!(ack["id"], "a");
    assert_eq!(
        ack["data"]["limits"],
        json!({
            "subscriptions": 7,
            "messagesPerSecond": 30,
            "messageBurst": 60,
            "queuedFrames": 123,
            "messageBytes": 4096,
        }),
        "{ack}"
    );

    // Every type, with and without the payload it may omit.
    let answers = [
        (
            json!({ "type": "server_metrics.subscribe", "id": 1, "data": { "serverId": "web-1", "intervalMs": 0 } }),
            "ack",
        ),
        (
            json!({ "type": "server_metrics.unsubscribe", "id": 2, "data": { "serverId": "web-1" } }),
            "ack",
        ),
        (json!({ "type": "fleet.subscribe", "id": 3 }), "ack"),
        (
            json!({ "type": "fleet.unsubscribe", "id": 4, "data": {} }),
            "ack",
        ),
        (json!({ "type": "alerts.subscribe", "id": 5 }), "ack"),
        (
            json!({ "type": "alerts.unsubscribe", "id": 6, "data": null }),
            "ack",
        ),
        (json!({ "type": "ping", "id": 7 }), "pong"),
    ];
    for (message, kind) in answers {
        let answer = ask(&mut socket, message.clone()).await;
        assert_eq!(answer["type"], kind, "{message} → {answer}");
        if kind == "ack" {
            assert_eq!(answer["data"]["type"], message["type"], "{answer}");
        }
    }

    // Refusals: a code for each, the id kept where there is one, the connection usable.
    let refusals = [
        (json!({ "id": 10 }), "bad_request"),
        (json!({ "type": 5, "id": 11 }), "bad_request"),
        (json!({ "type": "teleport", "id": 12 }), "unknown_type"),
        (
            json!({ "type": "server_metrics.subscribe", "id": 13, "data": {} }),
            "bad_request",
        ),
        (
            json!({ "type": "server_metrics.subscribe", "id": 14, "data": { "serverId": "web-1", "intervalMS": 5 } }),
            "bad_request",
        ),
        (
            json!({ "type": "server_metrics.subscribe", "id": 15, "data": { "serverId": "web-1", "intervalMs": 3_600_001 } }),
            "bad_request",
        ),
        (
            json!({ "type": "server_metrics.subscribe", "id": 16, "data": { "serverId": "web-1", "since": "yesterday" } }),
            "bad_request",
        ),
        (
            json!({ "type": "server_metrics.subscribe", "id": 17, "data": { "serverId": "nope" } }),
            "not_found",
        ),
        (
            json!({ "type": "server_metrics.unsubscribe", "id": 18, "data": { "serverId": "web-1" } }),
            "not_found",
        ),
        (
            json!({ "type": "fleet.subscribe", "id": 19, "data": { "tags": "db" } }),
            "bad_request",
        ),
        (
            json!({ "type": "auth", "id": 20, "data": { "token": 3 } }),
            "bad_request",
        ),
        (
            json!({ "type": "auth", "id": 21, "data": { "token": "not a token" } }),
            "unauthorized",
        ),
    ];
    for (message, code) in refusals {
        let answer = ask(&mut socket, message.clone()).await;
        assert_eq!(
            (answer["type"].as_str(), answer["data"]["code"].as_str()),
            (Some("error"), Some(code)),
            "{message} → {answer}"
        );
    }
    let misspelt = ask(
        &mut socket,
        json!({ "type": "server_metrics.subscribe", "id": 30, "data": { "serverId": "web-1", "intervalMS": 5 } }),
    )
    .await;
    assert!(
        misspelt["data"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("intervalMS")),
        "the error names the field: {misspelt}"
    );
    socket.send(Message::text("{not json")).await.expect("send");
    assert_eq!(
        expect(&mut socket, "error").await["data"]["code"],
        "bad_request"
    );
    socket
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .expect("send");
    assert_eq!(
        expect(&mut socket, "error").await["data"]["code"],
        "bad_request"
    );
    // The subscription limit, as advertised.
    for n in 0..7 {
        let id = format!("s-{n}");
        gw.create_server(&ada.access, json!({ "id": id, "name": id }))
            .await;
    }
    let mut codes = Vec::new();
    for n in 0..7 {
        let answer = ask(
            &mut socket,
            json!({ "type": "server_metrics.subscribe", "id": 40 + n, "data": { "serverId": format!("s-{n}") } }),
        )
        .await;
        codes.push(answer["data"]["code"].as_str().unwrap_or("ok").to_owned());
    }
    assert_eq!(codes, ["ok", "ok", "ok", "ok", "ok", "ok", "ok"]);
    let over = ask(
        &mut socket,
        json!({ "type": "server_metrics.subscribe", "id": 50, "data": { "serverId": "web-1" } }),
    )
    .await;
    assert_eq!(over["data"]["code"], "limit_exceeded", "{over}");
    assert_eq!(
        ask(&mut socket, json!({ "type": "ping", "id": "still-here" })).await["type"],
        "pong"
    );

    // Over the advertised message size: closed with 1009.
    let huge = json!({ "type": "ping", "data": { "padding": "x".repeat(5_000) } });
    let _ = socket.send(Message::text(huge.to_string())).await;
    let (code, _) = closed(&mut socket, Duration::from_secs(5)).await;
    assert_eq!(code, CloseCode::Size);
    gw.stop().await;
}

/// The next `fleet.servers` frame (headlines before it are skipped).
async fn fleet_change(socket: &mut Socket, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = next(socket, left)
            .await
            .expect("a fleet.servers frame in time");
        if frame["type"] == "fleet.servers" {
            return frame["data"].clone();
        }
    }
}

fn ids(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str().or(s.as_str()).map(str::to_owned))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Server ids in the `fleet.metrics` frames that arrive within `within`.
async fn headlines(socket: &mut Socket, within: Duration) -> HashSet<String> {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = HashSet::new();
    while let Some(frame) = next(
        socket,
        deadline.saturating_duration_since(tokio::time::Instant::now()),
    )
    .await
    {
        if frame["type"] == "fleet.metrics" {
            for sample in frame["data"]["samples"].as_array().into_iter().flatten() {
                assert!(sample["cpuUsage"].is_number(), "{sample}");
                assert!(sample["timestamp"].is_string(), "{sample}");
                seen.insert(sample["serverId"].as_str().expect("id").to_owned());
            }
        }
    }
    seen
}

#[tokio::test]
async fn the_fleet_subscription_streams_only_the_users_servers_and_announces_every_change() {
    // A long periodic re-check: what is announced in time is announced by the notifications.
    let gw = Gateway::start_with(|c| c.gateway.ws_recheck_secs = 600).await;
    let admin = gw.register("admin@example.com").await;
    let ada = gw.register("ada@example.com").await;
    let bob = gw.register("bob@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "a-1", "name": "a one" }))
        .await;
    gw.create_server(
        &ada.access,
        json!({ "id": "a-2", "name": "a two", "tags": ["db"] }),
    )
    .await;
    gw.create_server(&bob.access, json!({ "id": "b-1", "name": "b one" }))
        .await;
    let nats = testkit::connect().await;

    let (mut adas, _) = authenticated(&gw, &ada.access).await;
    let ack = ask(
        &mut adas,
        json!({ "type": "fleet.subscribe", "id": "f", "data": { "intervalMs": 200 } }),
    )
    .await;
    assert_eq!(
        (ack["type"].clone(), ack["data"]["intervalMs"].clone()),
        (json!("ack"), json!(200))
    );
    let initial = fleet_change(&mut adas, Duration::from_secs(5)).await;
    assert_eq!(
        (initial["initial"].clone(), initial["complete"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(ids(&initial["added"]), set(&["a-1", "a-2"]), "{initial}");
    assert_eq!(
        initial["added"][0]["name"], "a one",
        "the API's server objects"
    );
    let (mut bobs, _) = authenticated(&gw, &bob.access).await;
    ask(&mut bobs, json!({ "type": "fleet.subscribe", "id": "f" })).await;
    assert_eq!(
        ids(&fleet_change(&mut bobs, Duration::from_secs(5)).await["added"]),
        set(&["b-1"])
    );
    let (mut tagged, _) = authenticated(&gw, &ada.access).await;
    ask(
        &mut tagged,
        json!({ "type": "fleet.subscribe", "id": "f", "data": { "tags": ["db"] } }),
    )
    .await;
    assert_eq!(
        ids(&fleet_change(&mut tagged, Duration::from_secs(5)).await["added"]),
        set(&["a-2"])
    );

    // Headlines: each socket only its own servers'.
    for server in ["a-1", "a-2", "b-1"] {
        publish(&nats, &gw, &sample_at(server, Utc::now(), 10.0)).await;
    }
    nats.flush().await.expect("flush");
    assert_eq!(
        headlines(&mut adas, Duration::from_millis(800)).await,
        HashSet::from(["a-1".to_owned(), "a-2".to_owned()])
    );
    assert_eq!(
        headlines(&mut bobs, Duration::from_millis(800)).await,
        HashSet::from(["b-1".to_owned()])
    );

    // Enrolled (here: registered), renamed, deleted and given away, mid-stream.
    gw.create_server(&ada.access, json!({ "id": "a-3", "name": "a three" }))
        .await;
    let change = fleet_change(&mut adas, Duration::from_secs(5)).await;
    assert_eq!(
        (change["initial"].clone(), ids(&change["added"])),
        (json!(false), set(&["a-3"]))
    );
    let (status, _) = gw
        .call(
            Method::PATCH,
            "/api/v1/servers/a-3",
            Some(&ada.access),
            Some(json!({ "name": "a three, renamed" })),
        )
        .await;
    assert!(status.is_success(), "{status}");
    let change = fleet_change(&mut adas, Duration::from_secs(5)).await;
    assert_eq!(change["changed"][0]["name"], "a three, renamed", "{change}");
    let (status, _) = gw
        .call(
            Method::DELETE,
            "/api/v1/servers/a-2",
            Some(&ada.access),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");
    assert_eq!(
        ids(&fleet_change(&mut adas, Duration::from_secs(5)).await["removed"]),
        set(&["a-2"])
    );
    assert_eq!(
        ids(&fleet_change(&mut tagged, Duration::from_secs(5)).await["removed"]),
        set(&["a-2"])
    );
    let (status, _) = gw
        .call(
            Method::PUT,
            "/api/v1/servers/a-1/owner",
            Some(&admin.access),
            Some(json!({ "ownerId": bob.user_id })),
        )
        .await;
    assert!(status.is_success(), "{status}");
    assert_eq!(
        ids(&fleet_change(&mut adas, Duration::from_secs(5)).await["removed"]),
        set(&["a-1"])
    );
    let gained = fleet_change(&mut bobs, Duration::from_secs(5)).await;
    assert_eq!(ids(&gained["added"]), set(&["a-1"]), "{gained}");
    assert_eq!(gained["added"][0]["ownerId"], json!(bob.user_id));

    // The given-away server's headlines follow it.
    publish(&nats, &gw, &sample_at("a-1", Utc::now(), 20.0)).await;
    publish(&nats, &gw, &sample_at("a-3", Utc::now(), 20.0)).await;
    nats.flush().await.expect("flush");
    assert_eq!(
        headlines(&mut adas, Duration::from_millis(800)).await,
        HashSet::from(["a-3".to_owned()])
    );
    assert_eq!(
        headlines(&mut bobs, Duration::from_millis(800)).await,
        HashSet::from(["a-1".to_owned()])
    );

    // Unsubscribed: nothing more.
    ask(&mut adas, json!({ "type": "fleet.unsubscribe", "id": "u" })).await;
    publish(&nats, &gw, &sample_at("a-3", Utc::now(), 30.0)).await;
    nats.flush().await.expect("flush");
    assert!(
        headlines(&mut adas, Duration::from_millis(600))
            .await
            .is_empty()
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_thousand_servers_stream_on_one_socket() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    let pool = sqlx::PgPool::connect(gw.db.url()).await.expect("db");
    let servers: Vec<String> = (0..1000).map(|n| format!("host-{n:04}")).collect();
    sqlx::query(
        "INSERT INTO servers (id, name, owner_id, origin)
         SELECT id, id, $2, 'registered' FROM unnest($1::text[]) AS id",
    )
    .bind(&servers)
    .bind(ada.user_id.parse::<uuid::Uuid>().expect("uuid"))
    .execute(&pool)
    .await
    .expect("insert");
    let nats = testkit::connect().await;
    let (mut socket, _) = authenticated(&gw, &ada.access).await;
    ask(
        &mut socket,
        json!({ "type": "fleet.subscribe", "id": "f", "data": { "intervalMs": 500 } }),
    )
    .await;
    let mut listed = BTreeSet::new();
    let mut completes = Vec::new();
    while listed.len() < 1000 {
        let frame = fleet_change(&mut socket, Duration::from_secs(10)).await;
        assert_eq!(frame["initial"], true);
        listed.extend(ids(&frame["added"]));
        completes.push(frame["complete"].clone());
    }
    assert_eq!(listed.len(), 1000);
    assert_eq!(
        completes,
        [json!(false), json!(true)],
        "two frames, the last complete"
    );

    let mut seen = HashSet::new();
    let mut frames = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < 1000 && tokio::time::Instant::now() < deadline {
        for server in &servers {
            publish(&nats, &gw, &sample_at(server, Utc::now(), 5.0)).await;
        }
        nats.flush().await.expect("flush");
        let got = headlines(&mut socket, Duration::from_secs(1)).await;
        frames += 1;
        seen.extend(got);
    }
    assert_eq!(seen.len(), 1000, "every server's headline on one socket");
    assert!(frames <= 5, "{frames} rounds");
    gw.stop().await;
}

/// The `resource_metrics` timestamps a socket receives until `quiet` passes without one, and
/// whether a `server_metrics.replayed` came (with its count) before any live sample.
async fn series(socket: &mut Socket, quiet: Duration) -> (Vec<DateTime<Utc>>, Option<Value>) {
    let mut times = Vec::new();
    let mut replayed = None;
    while let Some(frame) = next(socket, quiet).await {
        match frame["type"].as_str() {
            Some("resource_metrics") => times.push(
                frame["data"]["timestamp"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .expect("a timestamp")
                    .with_timezone(&Utc),
            ),
            Some("server_metrics.replayed") => {
                assert!(replayed.is_none(), "one replayed frame");
                replayed = Some(json!({ "data": frame["data"], "after": times.len() }));
            }
            _ => {}
        }
    }
    (times, replayed)
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[tokio::test]
async fn since_replays_the_stored_window_and_a_reconnect_resumes_with_no_gap_and_no_duplicate() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    let nats = testkit::connect().await;
    flick_shared::streams::ensure_streams(
        &async_nats::jetstream::new(nats.clone()),
        &gw.subjects,
        &testkit::stream_settings(),
        &[StreamKind::Metrics],
    )
    .await
    .expect("the metrics stream");

    // A collector at 20 Hz, each sample 50 ms after the previous, for the whole test.
    // Whole milliseconds, as the wire carries them.
    let start = DateTime::from_timestamp_millis(
        (Utc::now() - chrono::Duration::seconds(2)).timestamp_millis(),
    )
    .expect("a time");
    let publisher = {
        let (nats, subjects) = (nats.clone(), gw.subjects.clone());
        tokio::spawn(async move {
            let mut published = Vec::new();
            let mut at = start;
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            for _ in 0..120 {
                tick.tick().await;
                let sample = sample_at("web-1", at, 1.0);
                nats.publish(
                    subjects.metrics(&sample.server_id),
                    serde_json::to_vec(&sample).expect("json").into(),
                )
                .await
                .expect("publish");
                published.push(at);
                at += chrono::Duration::milliseconds(50);
            }
            nats.flush().await.expect("flush");
            published
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let since = start + chrono::Duration::milliseconds(125);
    let (mut first, _) = authenticated(&gw, &ada.access).await;
    let ack = ask(
        &mut first,
        json!({ "type": "server_metrics.subscribe", "id": 1, "data": { "serverId": "web-1", "since": rfc3339(since) } }),
    )
    .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["data"]["since"], rfc3339(since));
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    let mut replayed = None;
    while tokio::time::Instant::now() < deadline {
        let Some(frame) = next(&mut first, Duration::from_millis(500)).await else {
            break;
        };
        match frame["type"].as_str() {
            Some("resource_metrics") => received.push(
                DateTime::parse_from_rfc3339(frame["data"]["timestamp"].as_str().expect("time"))
                    .expect("rfc 3339")
                    .with_timezone(&Utc),
            ),
            Some("server_metrics.replayed") => replayed = Some((frame, received.len())),
            _ => {}
        }
    }
    let (frame, at) = replayed.expect("a replayed frame");
    assert!(at >= 20, "the stored window came first: {at} samples");
    assert_eq!(
        (
            frame["id"].clone(),
            frame["data"]["samples"].clone(),
            frame["data"]["complete"].clone()
        ),
        (json!(1), json!(at), json!(true)),
        "{frame}"
    );
    assert_eq!(
        frame["data"]["until"],
        json!(rfc3339(received[at - 1])),
        "{frame}"
    );
    assert!(received.len() > at, "live samples followed");
    assert_eq!(received[0], start + chrono::Duration::milliseconds(150));

    // A forced reconnect: the socket dropped without a close, samples missed meanwhile.
    drop(first);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let last = *received.last().expect("samples");
    let (mut second, _) = authenticated(&gw, &ada.access).await;
    ask(
        &mut second,
        json!({ "type": "server_metrics.subscribe", "id": 2, "data": { "serverId": "web-1", "since": rfc3339(last) } }),
    )
    .await;
    let (more, replayed) = series(&mut second, Duration::from_millis(1500)).await;
    let replayed = replayed.expect("replayed again");
    assert!(
        replayed["after"]
            .as_u64()
            .is_some_and(|n| n >= 10 && (n as usize) < more.len()),
        "the ~14 samples missed while away came before the live ones: {replayed}, {} in all",
        more.len()
    );
    received.extend(more);
    let published = publisher.await.expect("publisher");
    let expected: Vec<DateTime<Utc>> = published
        .into_iter()
        .filter(|at| *at > since && at <= received.last().expect("samples"))
        .collect();
    assert_eq!(received, expected, "no gap and no duplicate");
    assert!(expected.len() >= 100, "{} samples", expected.len());

    // Thinned to an interval, as live samples are; a server one may not see, a time to come.
    let (mut fourth, _) = authenticated(&gw, &ada.access).await;
    ask(
        &mut fourth,
        json!({ "type": "server_metrics.subscribe", "id": 4, "data": { "serverId": "web-1", "intervalMs": 500, "since": rfc3339(since) } }),
    )
    .await;
    let (thinned, replayed) = series(&mut fourth, Duration::from_millis(800)).await;
    let replayed = replayed.expect("a replay");
    let sent = replayed["after"].as_u64().expect("count") as usize;
    assert!(
        (10..=14).contains(&sent),
        "~6 s of samples at 2 a second: {replayed}"
    );
    assert!(
        thinned[..sent]
            .windows(2)
            .all(|w| w[1] - w[0] >= chrono::Duration::milliseconds(500)),
        "{thinned:?}"
    );
    let bob = gw.register("bob@example.com").await;
    let (mut bobs, _) = authenticated(&gw, &bob.access).await;
    let denied = ask(
        &mut bobs,
        json!({ "type": "server_metrics.subscribe", "id": 5, "data": { "serverId": "web-1", "since": rfc3339(since) } }),
    )
    .await;
    assert_eq!(denied["data"]["code"], "not_found", "{denied}");
    let future = ask(
        &mut fourth,
        json!({ "type": "server_metrics.subscribe", "id": 6, "data": { "serverId": "web-1", "since": rfc3339(Utc::now() + chrono::Duration::hours(1)) } }),
    )
    .await;
    assert_eq!(future["data"]["code"], "bad_request", "{future}");
    assert!(
        next(&mut bobs, Duration::from_millis(500)).await.is_none(),
        "nothing of another user's server"
    );

    // A server without stored samples: an empty replay, then live.
    gw.create_server(&ada.access, json!({ "id": "web-2", "name": "quiet" }))
        .await;
    let (mut third, _) = authenticated(&gw, &ada.access).await;
    ask(
        &mut third,
        json!({ "type": "server_metrics.subscribe", "id": 3, "data": { "serverId": "web-2", "since": rfc3339(Utc::now() - chrono::Duration::minutes(15)) } }),
    )
    .await;
    let replayed = expect(&mut third, "server_metrics.replayed").await;
    assert_eq!(
        (
            replayed["data"]["samples"].clone(),
            replayed["data"]["until"].clone()
        ),
        (json!(0), Value::Null)
    );
    let now = Utc::now();
    publish(&nats, &gw, &sample_at("web-2", now, 3.0)).await;
    nats.flush().await.expect("flush");
    let (live, _) = series(&mut third, Duration::from_millis(800)).await;
    let now_ms = DateTime::parse_from_rfc3339(&rfc3339(now))
        .expect("time")
        .with_timezone(&Utc);
    assert_eq!(live, [now_ms]);
    gw.stop().await;
}
