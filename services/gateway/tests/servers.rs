//! Servers: the fleet as each caller may see it, sealed credentials, ownership, and the rule
//! that another user's server and a missing server look the same, on every `{id}` route.

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{Gateway, code};

#[tokio::test]
async fn a_user_creates_lists_reads_changes_and_deletes_their_servers() {
    let gw = Gateway::start().await;
    let _admin = gw.register("admin@example.com").await;
    let ada = gw.register("ada@example.com").await;
    let server = gw
        .create_server(&ada.access, json!({ "id": "web-01", "name": " Web 01 ", "hostname": "web-01.example.com", "tags": ["prod", "eu", "prod"] }))
        .await;
    assert_eq!(server["id"], "web-01");
    assert_eq!(server["name"], "Web 01");
    assert_eq!(server["tags"], json!(["prod", "eu"]));
    assert_eq!(server["ownerId"], json!(ada.user_id));
    assert_eq!(server["status"], "unknown");
    assert_eq!(server["hasCredentials"], false);
    let generated = gw
        .create_server(&ada.access, json!({ "name": "no id given" }))
        .await;
    assert!(uuid::Uuid::parse_str(generated["id"].as_str().unwrap_or("")).is_ok());

    let (status, list) = gw.get("/api/v1/servers", &ada.access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().map(Vec::len), Some(2));

    // A sample makes it online, and the detail shows it.
    sqlx::query("UPDATE servers SET last_seen_at = now() WHERE id = 'web-01'")
        .execute(&gw.db.pool)
        .await
        .expect("seen");
    sqlx::query(
        "INSERT INTO metrics (server_id, ts, cpu, memory, disk, network, cpu_cores, mounts)
         VALUES ('web-01', now(), 12.5, 40, 70, 1024, '{10,15}', '[{\"mountPoint\":\"/\",\"totalBytes\":10,\"usedBytes\":7}]')",
    )
    .execute(&gw.db.pool)
    .await
    .expect("sample");
    let (status, detail) = gw.get("/api/v1/servers/web-01", &ada.access).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["status"], "online");
    assert_eq!(detail["latest"]["cpuUsage"], 12.5);
    assert_eq!(detail["latest"]["cpuCores"], json!([10.0, 15.0]));
    assert_eq!(detail["latest"]["mounts"][0]["mountPoint"], "/");

    let (status, changed) = gw
        .call(
            Method::PATCH,
            "/api/v1/servers/web-01",
            Some(&ada.access),
            Some(json!({ "name": "Web One", "hostname": null, "tags": [] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        (
            changed["name"].clone(),
            changed["hostname"].clone(),
            changed["tags"].clone()
        ),
        (json!("Web One"), Value::Null, json!([]))
    );

    let (status, _) = gw
        .call(
            Method::DELETE,
            "/api/v1/servers/web-01",
            Some(&ada.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = gw.get("/api/v1/servers/web-01", &ada.access).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let audited: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE target = 'web-01' ORDER BY id")
            .fetch_all(&gw.db.pool)
            .await
            .expect("audit");
    assert_eq!(audited, ["server_created", "server_deleted"]);
    gw.stop().await;
}

#[tokio::test]
async fn bad_server_requests_are_refused_with_the_right_status() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "taken", "name": "first" }))
        .await;
    let cases = [
        (
            json!({ "id": "taken", "name": "again" }),
            StatusCode::CONFLICT,
        ),
        (
            json!({ "id": "a.b", "name": "bad id" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({ "name": "" }), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({ "name": "x", "credentials": "not an object" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "name": "x", "tags": (0..21).map(|i| i.to_string()).collect::<Vec<_>>() }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({ "nme": "typo" }), StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (body, expected) in cases {
        let (status, answer) = gw
            .post("/api/v1/servers", Some(&ada.access), body.clone())
            .await;
        assert_eq!(status, expected, "{body} → {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let (status, _) = gw.call(Method::GET, "/api/v1/servers", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    gw.stop().await;
}

#[tokio::test]
async fn credentials_are_sealed_returned_only_on_request_and_audited() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    let secret = json!({ "sshUser": "deploy", "password": "pa55-w0rd-very-secret" });
    let server = gw
        .create_server(
            &ada.access,
            json!({ "id": "db-1", "name": "db", "credentials": secret }),
        )
        .await;
    assert_eq!(server["hasCredentials"], true);
    assert!(
        server.get("credentials").is_none(),
        "never in a server answer"
    );
    let (_, detail) = gw.get("/api/v1/servers/db-1", &ada.access).await;
    assert!(!detail.to_string().contains("pa55"), "nor in the detail");
    let (_, list) = gw.get("/api/v1/servers", &ada.access).await;
    assert!(!list.to_string().contains("pa55"), "nor in the list");

    let stored: Vec<u8> = sqlx::query_scalar("SELECT credentials FROM servers WHERE id = 'db-1'")
        .fetch_one(&gw.db.pool)
        .await
        .expect("column");
    assert!(
        !stored.windows(4).any(|w| w == b"pa55") && !stored.windows(7).any(|w| w == b"sshUser"),
        "no plaintext in the column"
    );

    let (status, read) = gw
        .get("/api/v1/servers/db-1/credentials", &ada.access)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["credentials"], secret);
    let reads: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'credentials_read' AND target = 'db-1'",
    )
    .fetch_one(&gw.db.pool)
    .await
    .expect("audit");
    assert_eq!(reads, 1);

    // A ciphertext copied from another server does not open (the id is authenticated) …
    gw.create_server(
        &ada.access,
        json!({ "id": "db-2", "name": "db2", "credentials": { "other": true } }),
    )
    .await;
    sqlx::query("UPDATE servers SET credentials = (SELECT credentials FROM servers WHERE id = 'db-1') WHERE id = 'db-2'")
        .execute(&gw.db.pool)
        .await
        .expect("copy");
    let (status, body) = gw
        .get("/api/v1/servers/db-2/credentials", &ada.access)
        .await;
    assert_eq!(
        (status, body["error"]["message"].clone()),
        (StatusCode::INTERNAL_SERVER_ERROR, json!("internal error"))
    );
    assert!(
        !body.to_string().contains("pa55") && !body.to_string().contains("decrypt"),
        "{body}"
    );
    // … nor does a tampered one; neither panics the gateway.
    sqlx::query("UPDATE servers SET credentials = set_byte(credentials, 30, get_byte(credentials, 30) # 1) WHERE id = 'db-1'")
        .execute(&gw.db.pool)
        .await
        .expect("tamper");
    let (status, body) = gw
        .get("/api/v1/servers/db-1/credentials", &ada.access)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::INTERNAL_SERVER_ERROR, "internal")
    );
    let (status, _) = gw.get("/api/v1/servers/db-1", &ada.access).await;
    assert_eq!(status, StatusCode::OK, "the gateway still answers");

    // Removing them.
    let (status, changed) = gw
        .call(
            Method::PATCH,
            "/api/v1/servers/db-1",
            Some(&ada.access),
            Some(json!({ "credentials": null })),
        )
        .await;
    assert_eq!(
        (status, changed["hasCredentials"].clone()),
        (StatusCode::OK, json!(false))
    );
    let (status, _) = gw
        .get("/api/v1/servers/db-1/credentials", &ada.access)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    gw.stop().await;
}

#[tokio::test]
async fn discovered_servers_are_for_admins_who_can_give_them_to_users() {
    let gw = Gateway::start().await;
    let admin = gw.register("admin@example.com").await;
    let ada = gw.register("ada@example.com").await;
    sqlx::query("INSERT INTO servers (id, name, hostname, last_seen_at) VALUES ('found-1', 'found-1', 'h1', now())")
        .execute(&gw.db.pool)
        .await
        .expect("discovered");
    let (_, admin_list) = gw.get("/api/v1/servers", &admin.access).await;
    assert!(
        admin_list
            .as_array()
            .is_some_and(|l| l.iter().any(|s| s["id"] == "found-1"))
    );
    let (_, ada_list) = gw.get("/api/v1/servers", &ada.access).await;
    assert_eq!(ada_list, json!([]));

    let (status, body) = gw
        .call(
            Method::PUT,
            "/api/v1/servers/found-1/owner",
            Some(&admin.access),
            Some(json!({ "ownerId": uuid::Uuid::new_v4() })),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        "not a user"
    );
    let (status, server) = gw
        .call(
            Method::PUT,
            "/api/v1/servers/found-1/owner",
            Some(&admin.access),
            Some(json!({ "ownerId": ada.user_id })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{server}");
    let (_, ada_list) = gw.get("/api/v1/servers", &ada.access).await;
    assert_eq!(ada_list[0]["id"], "found-1");
    let (status, body) = gw
        .call(
            Method::PUT,
            "/api/v1/servers/found-1/owner",
            Some(&ada.access),
            Some(json!({ "ownerId": null })),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "owners cannot reassign"
    );
    gw.stop().await;
}

/// Every `{id}` route, as user B tries it on user A's server.
fn id_routes(id: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, format!("/api/v1/servers/{id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/servers/{id}"),
            Some(json!({ "name": "mine now" })),
        ),
        (Method::DELETE, format!("/api/v1/servers/{id}"), None),
        (
            Method::GET,
            format!("/api/v1/servers/{id}/credentials"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/servers/{id}/owner"),
            Some(json!({ "ownerId": null })),
        ),
        (Method::GET, format!("/api/v1/servers/{id}/metrics"), None),
        (
            Method::GET,
            format!("/api/v1/servers/{id}/thresholds"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/servers/{id}/thresholds"),
            Some(json!({ "cpu": { "warning": 1, "critical": 2 } })),
        ),
    ]
}

#[tokio::test]
async fn another_users_server_is_exactly_as_invisible_as_a_missing_one_on_every_id_route() {
    let gw = Gateway::start().await;
    let _admin = gw.register("admin@example.com").await;
    let a = gw.register("a@example.com").await;
    let b = gw.register("b@example.com").await;
    gw.create_server(
        &a.access,
        json!({ "id": "a-server", "name": "A's", "credentials": { "k": "v" } }),
    )
    .await;

    for ((method, path, body), (_, missing_path, _)) in id_routes("a-server")
        .into_iter()
        .zip(id_routes("no-such-server"))
    {
        let (status, answer) = gw
            .call(method.clone(), &path, Some(&b.access), body.clone())
            .await;
        let (missing_status, missing_answer) = gw
            .call(method.clone(), &missing_path, Some(&b.access), body)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        assert_eq!(
            (status, answer),
            (missing_status, missing_answer),
            "{method} {path} tells forbidden from missing"
        );
    }
    // Through the other routes too: logs for it, alerts of it.
    let (status, _) = gw
        .post(
            "/api/v1/logs",
            Some(&b.access),
            json!({ "serverId": "a-server", "level": "info", "message": "hi" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let alert = uuid::Uuid::new_v4();
    sqlx::query("INSERT INTO alerts (id, server_id, metric, severity, state, started_at) VALUES ($1, 'a-server', 'cpu', 'warning', 'firing', now())")
        .bind(alert)
        .execute(&gw.db.pool)
        .await
        .expect("alert");
    let (status, _) = gw
        .post(
            &format!("/api/v1/alerts/{alert}/ack"),
            Some(&b.access),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, alerts) = gw.get("/api/v1/alerts?serverId=a-server", &b.access).await;
    assert_eq!(alerts["items"], json!([]));

    // Nothing changed, and A still has everything.
    let (status, server) = gw.get("/api/v1/servers/a-server", &a.access).await;
    assert_eq!(
        (status, server["name"].clone()),
        (StatusCode::OK, json!("A's"))
    );
    let (status, _) = gw
        .get("/api/v1/servers/a-server/credentials", &a.access)
        .await;
    assert_eq!(status, StatusCode::OK);
    let overrides: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_rules")
        .fetch_one(&gw.db.pool)
        .await
        .expect("rules");
    assert_eq!(overrides, 0);
    gw.stop().await;
}
