//! Metric history, alert rules, alerts, notification channels and logs through the API.

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{Gateway, code};
use flick_shared::testkit;

#[tokio::test]
async fn history_is_bucketed_with_avg_min_max_and_bad_ranges_are_422() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    // One sample every 5 s for an hour: cpu climbs 0, 1, 2, … per sample.
    sqlx::query(
        "INSERT INTO metrics (server_id, ts, cpu, memory, disk, network, network_rx, network_tx, load1)
         SELECT 'web-1', TIMESTAMPTZ '2026-11-24 10:00:00+00' + n * interval '5 seconds', n, 50, 60, n * 10, n * 6, n * 4, 1.5
         FROM generate_series(0, 719) AS n",
    )
    .execute(&gw.db.pool)
    .await
    .expect("samples");
    let path = "/api/v1/servers/web-1/metrics?from=2026-11-24T10:00:00Z&to=2026-11-24T11:00:00Z";
    let (status, history) = gw.get(&format!("{path}&bucket=10m"), &ada.access).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(
        (history["bucketSecs"].clone(), history["source"].clone()),
        (json!(600), json!("raw"))
    );
    let points = history["points"].as_array().expect("points");
    assert_eq!(points.len(), 6);
    let first = &points[0];
    assert_eq!(first["t"], "2026-11-24T10:00:00Z");
    assert_eq!(first["samples"], 120);
    assert_eq!(
        (
            first["cpu"]["min"].clone(),
            first["cpu"]["max"].clone(),
            first["cpu"]["avg"].clone()
        ),
        (json!(0.0), json!(119.0), json!(59.5))
    );
    assert_eq!(first["memory"]["avg"], 50.0);
    assert_eq!(first["networkRx"], 357.0);
    assert_eq!(first["load1"], 1.5);

    let (_, default_bucket) = gw.get(path, &ada.access).await;
    assert_eq!(
        default_bucket["bucketSecs"], 5,
        "an hour → 5 s buckets, 720 points"
    );
    assert_eq!(default_bucket["points"].as_array().map(Vec::len), Some(720));

    for (query, why) in [
        (
            "from=2026-11-24T11:00:00Z&to=2026-11-24T10:00:00Z",
            "from after to",
        ),
        ("from=yesterday", "unparseable"),
        (
            "from=2026-01-01T00:00:00Z&to=2026-11-24T00:00:00Z",
            "beyond retention",
        ),
        (
            "from=2026-11-24T10:00:00Z&to=2026-11-24T11:00:00Z&bucket=fast",
            "bad bucket",
        ),
    ] {
        let (status, body) = gw
            .get(
                &format!("/api/v1/servers/web-1/metrics?{query}"),
                &ada.access,
            )
            .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{why}: {body}"
        );
    }
    // A bucket too small for the range is raised to the smallest allowed one, not refused.
    let (status, body) = gw
        .get(
            "/api/v1/servers/web-1/metrics?from=2026-11-01T00:00:00Z&to=2026-11-24T00:00:00Z&bucket=1",
            &ada.access,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["bucketSecs"], 300,
        "23 days in at most 10,000 points: {body}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn thresholds_show_defaults_take_overrides_and_refuse_nonsense() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    let (status, rules) = gw
        .get("/api/v1/servers/web-1/thresholds", &ada.access)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        rules["rules"]["cpu"],
        json!({ "warning": 80.0, "critical": 90.0, "forSecs": 10, "margin": 5.0, "enabled": true, "source": "default" })
    );
    assert_eq!(rules["rules"]["offline"]["forSecs"], 30);
    assert_eq!(
        rules["rules"]["temperature"],
        json!({ "warning": 80.0, "critical": 90.0, "forSecs": 10, "margin": 5.0, "enabled": false, "source": "default" }),
        "the temperature rule is there, off"
    );
    // Setting it turns it on; °C go beyond 100.
    let (status, hot) = gw
        .call(
            Method::PUT,
            "/api/v1/servers/web-1/thresholds",
            Some(&ada.access),
            Some(json!({ "temperature": { "warning": 85, "critical": 105 } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{hot}");
    assert_eq!(
        (
            hot["rules"]["temperature"]["critical"].clone(),
            hot["rules"]["temperature"]["enabled"].clone()
        ),
        (json!(105.0), json!(true))
    );

    let (status, rules) = gw
        .call(Method::PUT, "/api/v1/servers/web-1/thresholds", Some(&ada.access),
            Some(json!({ "cpu": { "warning": 70, "critical": 85, "forSecs": 30 }, "offline": { "forSecs": 120 } })))
        .await;
    assert_eq!(status, StatusCode::OK, "{rules}");
    assert_eq!(rules["rules"]["cpu"]["source"], "server");
    assert_eq!(rules["rules"]["cpu"]["warning"], 70.0);
    assert_eq!(rules["rules"]["memory"]["source"], "default");
    let stored: (f32, i32) = sqlx::query_as(
        "SELECT warning, for_secs FROM alert_rules WHERE server_id = 'web-1' AND metric = 'cpu'",
    )
    .fetch_one(&gw.db.pool)
    .await
    .expect("the alerter's table");
    assert_eq!(stored, (70.0, 30));

    let (status, rules) = gw
        .call(
            Method::PUT,
            "/api/v1/servers/web-1/thresholds",
            Some(&ada.access),
            Some(json!({ "cpu": null })),
        )
        .await;
    assert_eq!(
        (status, rules["rules"]["cpu"]["source"].clone()),
        (StatusCode::OK, json!("default"))
    );

    for body in [
        json!({ "cpu": { "warning": 95, "critical": 90 } }),
        json!({ "cpu": { "warning": 120 } }),
        json!({ "cpu": { "critical": 105 } }),
        json!({ "temperature": { "critical": 151 } }),
        json!({ "offline": { "warning": 1 } }),
        json!({ "offline": { "forSecs": 1 } }),
        json!({ "swap": { "warning": 1 } }),
    ] {
        let (status, answer) = gw
            .call(
                Method::PUT,
                "/api/v1/servers/web-1/thresholds",
                Some(&ada.access),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body} → {answer}"
        );
    }
    gw.stop().await;
}

async fn insert_alert(
    pool: &sqlx::PgPool,
    server: &str,
    severity: &str,
    state: &str,
    minutes_ago: i64,
) -> uuid::Uuid {
    let id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO alerts (id, server_id, metric, severity, state, value, threshold, started_at, resolved_at)
         VALUES ($1, $2, 'cpu', $3, $4, 95, 90, now() - $5 * interval '1 minute',
                 CASE WHEN $4 = 'resolved' THEN now() END)",
    )
    .bind(id)
    .bind(server)
    .bind(severity)
    .bind(state)
    .bind(minutes_ago as f64)
    .execute(pool)
    .await
    .expect("alert");
    id
}

#[tokio::test]
async fn alerts_filter_page_and_acknowledge() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    let mut ids = Vec::new();
    for (i, (severity, state)) in [
        ("warning", "firing"),
        ("critical", "firing"),
        ("warning", "resolved"),
        ("critical", "resolved"),
        ("warning", "firing"),
    ]
    .into_iter()
    .enumerate()
    {
        ids.push(insert_alert(&gw.db.pool, "web-1", severity, state, i as i64 + 1).await);
    }
    let (status, page) = gw.get("/api/v1/alerts?limit=2", &ada.access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["items"][0]["id"], json!(ids[0]), "newest first");
    let mut seen: Vec<Value> = page["items"].as_array().cloned().unwrap_or_default();
    let mut cursor = page["nextCursor"].as_str().map(str::to_owned);
    while let Some(next) = cursor {
        let (_, page) = gw
            .get(
                &format!("/api/v1/alerts?limit=2&cursor={next}"),
                &ada.access,
            )
            .await;
        seen.extend(page["items"].as_array().cloned().unwrap_or_default());
        cursor = page["nextCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 5, "pages neither skip nor repeat");

    let (_, firing) = gw
        .get("/api/v1/alerts?state=firing&severity=warning", &ada.access)
        .await;
    assert_eq!(firing["items"].as_array().map(Vec::len), Some(2));
    let (status, _) = gw.get("/api/v1/alerts?state=bogus", &ada.access).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, acked) = gw
        .post(
            &format!("/api/v1/alerts/{}/ack", ids[1]),
            Some(&ada.access),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{acked}");
    assert_eq!(acked["acknowledgedBy"], json!(ada.user_id));
    assert!(acked["acknowledgedAt"].is_string());
    let (status, _) = gw
        .post(
            &format!("/api/v1/alerts/{}/ack", uuid::Uuid::new_v4()),
            Some(&ada.access),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    gw.stop().await;
}

#[tokio::test]
async fn notification_channels_are_admin_only_and_their_secrets_write_only() {
    let gw = Gateway::start().await;
    let admin = gw.register("admin@example.com").await;
    let ada = gw.register("ada@example.com").await;
    let channel = json!({
        "name": "ops", "url": "https://hooks.example.com/flick",
        "headers": { "Authorization": "Bearer hook-token-123" }, "signingSecret": "whsec-456"
    });
    let (status, body) = gw
        .post(
            "/api/v1/notification-channels",
            Some(&ada.access),
            channel.clone(),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let (status, created) = gw
        .post(
            "/api/v1/notification-channels",
            Some(&admin.access),
            channel,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["headerNames"], json!(["Authorization"]));
    assert_eq!(created["signed"], true);
    assert!(!created.to_string().contains("hook-token") && !created.to_string().contains("whsec"));
    let (_, listed) = gw.get("/api/v1/notification-channels", &admin.access).await;
    assert!(
        !listed.to_string().contains("hook-token") && !listed.to_string().contains("whsec"),
        "write-only"
    );
    let (status, _) = gw.get("/api/v1/notification-channels", &ada.access).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Sealed the way the alerter opens them: the channel id as associated data.
    let id: uuid::Uuid = created["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT signing_secret FROM notification_channels WHERE id = $1")
            .bind(id)
            .fetch_one(&gw.db.pool)
            .await
            .expect("row");
    let keys = flick_shared::crypto::KeyRing::from_secrets(
        1,
        &common::KEY_HEX.as_str().into(),
        &Default::default(),
    )
    .expect("key");
    assert_eq!(
        keys.open(id.as_bytes(), &sealed).expect("opens"),
        b"whsec-456"
    );

    let (status, body) = gw
        .post(
            "/api/v1/notification-channels",
            Some(&admin.access),
            json!({ "name": "bad", "url": "ftp://x" }),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let (status, _) = gw
        .call(
            Method::DELETE,
            &format!("/api/v1/notification-channels/{id}"),
            Some(&admin.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = gw
        .call(
            Method::DELETE,
            &format!("/api/v1/notification-channels/{id}"),
            Some(&admin.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    gw.stop().await;
}

#[tokio::test]
async fn a_posted_log_is_published_and_logs_are_read_back_filtered_and_paged() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    let client = testkit::connect().await;
    let mut published = client
        .subscribe(
            gw.subjects
                .logs(&flick_shared::wire::ServerId::parse("web-1").expect("id")),
        )
        .await
        .expect("subscribe");
    testkit::registered(&client).await;

    let (status, accepted) = gw
        .post("/api/v1/logs", Some(&ada.access), json!({ "serverId": "web-1", "level": "warning", "message": "disk slow", "fields": { "device": "sda" } }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let entry: flick_shared::wire::LogEntry =
        testkit::next_json(&mut published, std::time::Duration::from_secs(5)).await;
    assert_eq!(entry.id.to_string(), accepted["id"].as_str().unwrap_or(""));
    assert_eq!(entry.level, flick_shared::wire::LogLevel::Warn);

    for body in [
        json!({ "serverId": "web-1", "level": "loud", "message": "x" }),
        json!({ "serverId": "web-1", "level": "info", "message": "" }),
        json!({ "serverId": "web-1", "level": "info", "message": "x".repeat(20_000) }),
    ] {
        let (status, _) = gw.post("/api/v1/logs", Some(&ada.access), body).await;
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::PAYLOAD_TOO_LARGE,
            "{status}"
        );
    }

    // What the persister stores, read back.
    sqlx::query(
        "INSERT INTO logs (id, server_id, ts, level, message)
         SELECT gen_random_uuid(), 'web-1', now() - n * interval '1 second',
                CASE WHEN n % 3 = 0 THEN 'error' ELSE 'info' END, 'line ' || n || CASE WHEN n % 5 = 0 THEN ' 100% done' ELSE '' END
         FROM generate_series(1, 30) AS n",
    )
    .execute(&gw.db.pool)
    .await
    .expect("logs");
    let (_, errors) = gw
        .get(
            "/api/v1/logs?serverId=web-1&level=error&limit=100",
            &ada.access,
        )
        .await;
    assert_eq!(errors["items"].as_array().map(Vec::len), Some(10));
    let (_, matched) = gw.get("/api/v1/logs?q=100%25", &ada.access).await;
    assert_eq!(
        matched["items"].as_array().map(Vec::len),
        Some(6),
        "% is matched literally"
    );
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/logs?limit=7&cursor={c}"),
            None => "/api/v1/logs?limit=7".to_owned(),
        };
        let (_, page) = gw.get(&path, &ada.access).await;
        all.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(all.len(), 30);
    let (status, _) = gw.get("/api/v1/logs?cursor=garbage", &ada.access).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    gw.stop().await;
}

#[tokio::test]
async fn processes_before_any_list_was_published_are_empty_then_the_stored_one() {
    // The gateway alone: no persister has created the processes stream and no collector has
    // published into it. That is "no list yet", not an outage.
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    let (status, none) = gw.get("/api/v1/servers/web-1/processes", &ada.access).await;
    assert_eq!(status, StatusCode::OK, "{none}");
    assert_eq!(none["timestamp"], Value::Null);
    assert_eq!(none["byCpu"], json!([]));

    let process = json!([{ "pid": 42, "name": "postgres", "user": "postgres", "cpuPercent": 61.0, "residentBytes": 1048576, "command": "postgres -D /data" }]);
    sqlx::query(
        "INSERT INTO process_lists (server_id, ts, by_cpu, by_memory)
         VALUES ('web-1', now() - interval '10 seconds', $1, $1)",
    )
    .bind(sqlx::types::Json(&process))
    .execute(&gw.db.pool)
    .await
    .expect("a stored list");
    let (status, stored) = gw.get("/api/v1/servers/web-1/processes", &ada.access).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["byCpu"][0]["name"], "postgres");
    assert_ne!(stored["timestamp"], Value::Null);
    gw.stop().await;
}
