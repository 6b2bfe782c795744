//! `GET /servers/{id}/containers`: the newest stored container list, or the one stored last at
//! or before `?at=`, to the server's owner only.

mod common;

use reqwest::StatusCode;
use serde_json::json;

use common::Gateway;

#[tokio::test]
async fn the_newest_or_an_earlier_list_is_served_to_the_owner_only() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    let bob = gw.register("bob@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    let (status, empty) = gw
        .get("/api/v1/servers/web-1/containers", &ada.access)
        .await;
    assert_eq!(status, StatusCode::OK, "{empty}");
    assert_eq!(
        empty,
        json!({ "serverId": "web-1", "timestamp": null, "containers": [] })
    );

    // Two containers at 10:00, one of them gone at 10:05.
    sqlx::query(
        "INSERT INTO containers (server_id, ts, name, container_id, image, state, health, exit_code,
                                 restarts, cpu_percent, memory_bytes, memory_limit_bytes,
                                 net_rx_bytes, net_tx_bytes, block_read_bytes, block_write_bytes)
         VALUES ('web-1', '2026-11-24 10:00:00+00', 'web', 'aaaaaaaaaaaa', 'nginx', 'running', 'healthy', NULL,
                 1, 12.5, 1048576, 8589934592, 100, 200, 300, 400),
                ('web-1', '2026-11-24 10:00:00+00', 'db', 'bbbbbbbbbbbb', 'postgres', 'exited', NULL, 137,
                 0, 0, 0, NULL, 0, 0, 0, 0),
                ('web-1', '2026-11-24 10:05:00+00', 'web', 'aaaaaaaaaaaa', 'nginx', 'running', 'unhealthy', NULL,
                 3, 50, 2097152, 8589934592, 1000, 2000, 3000, 4000)",
    )
    .execute(&gw.db.pool)
    .await
    .expect("containers");

    let (status, newest) = gw
        .get("/api/v1/servers/web-1/containers", &ada.access)
        .await;
    assert_eq!(status, StatusCode::OK, "{newest}");
    assert_eq!(newest["timestamp"], "2026-11-24T10:05:00Z");
    assert_eq!(
        newest["containers"],
        json!([{
            "id": "aaaaaaaaaaaa", "name": "web", "image": "nginx", "state": "running",
            "health": "unhealthy", "restarts": 3, "cpuPercent": 50.0, "memoryBytes": 2097152,
            "memoryLimitBytes": 8589934592u64, "netRxBytes": 1000, "netTxBytes": 2000,
            "blockReadBytes": 3000, "blockWriteBytes": 4000,
        }])
    );

    let (status, earlier) = gw
        .get(
            "/api/v1/servers/web-1/containers?at=2026-11-24T10:04:59Z",
            &ada.access,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{earlier}");
    assert_eq!(earlier["timestamp"], "2026-11-24T10:00:00Z");
    let names: Vec<&str> = earlier["containers"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["db", "web"], "by name");
    assert_eq!(earlier["containers"][0]["exitCode"], 137);

    let (status, before) = gw
        .get(
            "/api/v1/servers/web-1/containers?at=2026-11-24T09:00:00Z",
            &ada.access,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(before["containers"], json!([]));

    let (status, _) = gw
        .get("/api/v1/servers/web-1/containers?at=yesterday", &ada.access)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = gw
        .get("/api/v1/servers/web-1/containers", &bob.access)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another user's server");

    // Every container removed: the persister stores the empty list as one nameless row, and
    // the newest list is that empty one, not the last that had containers.
    sqlx::query(
        "INSERT INTO containers (server_id, ts, name, container_id, state)
         VALUES ('web-1', '2026-11-24 10:10:00+00', '', '', '')",
    )
    .execute(&gw.db.pool)
    .await
    .expect("an empty list");
    let (_, none) = gw
        .get("/api/v1/servers/web-1/containers", &ada.access)
        .await;
    assert_eq!(
        (none["timestamp"].clone(), none["containers"].clone()),
        (json!("2026-11-24T10:10:00Z"), json!([]))
    );
    gw.stop().await;
}
