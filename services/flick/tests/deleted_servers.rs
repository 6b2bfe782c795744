//! A server id cannot be claimed to read what was someone else's: deleting a server removes its
//! samples, container lists, alerts and logs in the background, and an id that belonged to another owner,
//! carries data or was discovered is refused to users. The real persister, alerter and gateway
//! binaries on the real NATS and PostgreSQL.

mod common;

use std::time::Duration;

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::json;

use common::{Api, Stack};
use flick_shared::testkit::{self, eventually};
use flick_shared::wire::{ContainerUsage, MetricSample, ServerId};

/// Rows under `server` in each table that holds a server's data.
async fn rows_of(pool: &sqlx::PgPool, server: &str) -> [i64; 5] {
    let mut counts = [0; 5];
    for (i, table) in ["metrics", "logs", "alerts", "alert_events", "containers"]
        .iter()
        .enumerate()
    {
        counts[i] = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE server_id = $1"
        )))
        .bind(server)
        .fetch_one(pool)
        .await
        .expect("count");
    }
    counts
}

/// 600 samples of `server`, one a second up to now, CPU at 97 % (above both thresholds).
fn ten_minutes_hot(server: &str) -> Vec<MetricSample> {
    let id = ServerId::parse(server).expect("id");
    let now = Utc::now();
    (0..600)
        .rev()
        .map(|ago| MetricSample {
            // Every tenth sample carries a container list, as with `docker_socket`.
            containers: (ago % 10 == 0).then(|| vec![container()]),
            ..MetricSample::minimal(
                id.clone(),
                now - chrono::Duration::seconds(ago),
                97.0,
                40.0,
                50.0,
                1_000,
            )
        })
        .collect()
}

fn container() -> ContainerUsage {
    ContainerUsage {
        id: "0123456789ab".into(),
        name: "web-1".into(),
        image: "nginx".into(),
        state: "running".into(),
        health: None,
        exit_code: None,
        restarts: 0,
        cpu_percent: 1.0,
        memory_bytes: 1 << 20,
        memory_limit_bytes: None,
        net_rx_bytes: 0,
        net_tx_bytes: 0,
        block_read_bytes: 0,
        block_write_bytes: 0,
    }
}

/// `POST /servers {id, name: id}` as `token`.
async fn create(api: &Api, token: &str, id: &str) -> (StatusCode, serde_json::Value) {
    api.call(
        Method::POST,
        "/servers",
        Some(token),
        Some(json!({ "id": id, "name": id })),
    )
    .await
}

#[tokio::test]
async fn a_deleted_server_is_purged_and_its_id_cannot_be_claimed_by_another_user() {
    let stack = Stack::new()
        .await
        .with_env("FLICK_ALERTER__FOR_SECS", "2")
        .with_env("FLICK_RETENTION__PURGE_INTERVAL_SECS", "1")
        .with_env("FLICK_RETENTION__PURGE_SETTLE_SECS", "5")
        .with_env("FLICK_PERSISTER__FLUSH_INTERVAL_MS", "200");
    let _backend = stack.start_backend().await;
    let api = Api::of(&stack);
    let admin = api.register("admin@example.com").await;
    let ada = api.register("ada@example.com").await;
    let bob = api.register("bob@example.com").await;
    let (status, body) = create(&api, &ada, "sr-a1").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Ada's server gets ten minutes of samples, a firing alert and a log entry.
    let client = testkit::connect().await;
    let js = async_nats::jetstream::new(client.clone());
    testkit::publish_samples(&js, &stack.subjects, &ten_minutes_hot("sr-a1"), true).await;
    let (status, body) = api
        .call(
            Method::POST,
            "/logs",
            Some(&ada),
            Some(json!({ "serverId": "sr-a1", "level": "error", "message": "disk on fire" })),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    eventually(
        "ada's samples, alert and log stored",
        Duration::from_secs(60),
        || {
            let pool = stack.db.pool.clone();
            async move {
                let [metrics, logs, alerts, _, containers] = rows_of(&pool, "sr-a1").await;
                (metrics == 600 && logs == 1 && alerts >= 1 && containers == 60).then_some(())
            }
        },
    )
    .await;
    let firing = api.get("/alerts?serverId=sr-a1&state=firing", &ada).await;
    assert!(
        !firing["items"].as_array().expect("items").is_empty(),
        "{firing}"
    );

    // Ada deletes it; Bob asks for the same id.
    let (status, _) = api
        .call(Method::DELETE, "/servers/sr-a1", Some(&ada), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, refusal) = create(&api, &bob, "sr-a1").await;
    assert_eq!(status, StatusCode::CONFLICT, "{refusal}");
    let message = refusal["error"]["message"].as_str().unwrap_or_default();
    assert!(
        !message.contains("ada") && !message.contains("delet") && !message.contains("owner"),
        "the refusal says neither whose nor why: {message}"
    );
    for path in [
        "/servers/sr-a1",
        "/servers/sr-a1/metrics",
        "/servers/sr-a1/thresholds",
    ] {
        let (status, _) = api.call(Method::GET, path, Some(&bob), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let logs = api.get("/logs?serverId=sr-a1", &bob).await;
    let alerts = api.get("/alerts?serverId=sr-a1", &bob).await;
    assert_eq!(logs["items"], json!([]), "{logs}");
    assert_eq!(alerts["items"], json!([]), "{alerts}");

    // The persister removes every row of it, the alerter's late resolutions included.
    let purged = std::time::Instant::now();
    eventually("sr-a1's data purged", Duration::from_secs(60), || {
        let pool = stack.db.pool.clone();
        async move {
            let purged: Option<bool> = sqlx::query_scalar(
                "SELECT purged_at IS NOT NULL FROM server_tombstones WHERE server_id = 'sr-a1'",
            )
            .fetch_optional(&pool)
            .await
            .expect("tombstone");
            let left = rows_of(&pool, "sr-a1").await;
            (purged == Some(true) && left == [0, 0, 0, 0, 0]).then_some(())
        }
    })
    .await;
    eprintln!("sr-a1 purged {:.1?} after its deletion", purged.elapsed());

    // Still refused to Bob after the purge; Ada may take her id again, and finds it empty.
    let (status, _) = create(&api, &bob, "sr-a1").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = create(&api, &ada, "sr-a1").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let history = api.get("/servers/sr-a1/metrics", &ada).await;
    assert_eq!(history["points"], json!([]), "{history}");
    let (status, _) = create(&api, &ada, "sr-a1").await;
    assert_eq!(status, StatusCode::CONFLICT, "her own conflict");

    // A discovered server (a collector reported before anyone registered it) is the admin's to
    // assign: refused to users, and the admin is told how.
    let discovered = ten_minutes_hot("web-01");
    testkit::publish_samples(&js, &stack.subjects, &discovered[..5], true).await;
    eventually("web-01 discovered", Duration::from_secs(30), || {
        let api = &api;
        let admin = admin.clone();
        async move {
            let (status, _) = api
                .call(Method::GET, "/servers/web-01", Some(&admin), None)
                .await;
            (status == StatusCode::OK).then_some(())
        }
    })
    .await;
    let (status, _) = create(&api, &bob, "web-01").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = create(&api, &admin, "web-01").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.to_string().contains("/owner"), "{body}");

    // Data stored under an id without a server (left from before deletions purged) is refused.
    sqlx::query(
        "INSERT INTO metrics (server_id, ts, cpu, memory, disk, network)
         VALUES ('orphan-1', now(), 1, 1, 1, 1)",
    )
    .execute(&stack.db.pool.clone())
    .await
    .expect("an orphan sample");
    let (status, _) = create(&api, &bob, "orphan-1").await;
    assert_eq!(status, StatusCode::CONFLICT);
    // A fresh id, or none, is fine.
    let (status, _) = create(&api, &bob, "bob-new-1").await;
    assert_eq!(status, StatusCode::CREATED);
    client.drain().await.expect("drain");
}
