//! API tokens against a real gateway and PostgreSQL: a token never exposes more than its
//! owner may see, in any route the OpenAPI document lists; a revoked token is refused at once,
//! on this gateway and on another one; a `metrics:scrape` token cannot write; tokens are
//! stored only hashed and never manage tokens.

mod common;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use common::{Gateway, Session, code};

/// Creates a token for `session` and returns (token, id).
async fn token(gw: &Gateway, session: &Session, name: &str, scopes: &[&str]) -> (String, String) {
    let (status, body) = gw
        .post(
            "/api/v1/tokens",
            Some(&session.access),
            json!({ "name": name, "scopes": scopes }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["token"].as_str().expect("token").to_owned(),
        body["id"].as_str().expect("id").to_owned(),
    )
}

/// Every (method, path) of the OpenAPI document under `/api/v1`, but the WebSocket; with
/// `authenticated`, only those that take a bearer token (sign-in and host enrolment do not).
async fn routes_of(gw: &Gateway, authenticated: bool) -> Vec<(Method, String)> {
    let doc: Value = gw
        .http
        .get(format!("{}/api/v1/openapi.json", gw.base))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/v1/") || path == "/api/v1/ws" || path == "/api/v1/openapi.json" {
            continue;
        }
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(operation) = item.get(method) else {
                continue;
            };
            if !authenticated || operation.get("security").is_some() {
                out.push((
                    Method::from_bytes(method.to_uppercase().as_bytes()).expect("method"),
                    path.clone(),
                ));
            }
        }
    }
    assert!(out.len() > 30, "the document lists the API: {}", out.len());
    out
}

async fn routes(gw: &Gateway) -> Vec<(Method, String)> {
    routes_of(gw, false).await
}

/// What one user holds, to put in a route's `{id}`.
struct Holdings {
    server: String,
    alert: String,
    silence: String,
    token: String,
}

impl Holdings {
    /// `path` with its `{id}` filled with this user's object of the path's kind, and the
    /// query a route needs to do anything at all.
    fn fill(&self, path: &str) -> String {
        let id = if path.starts_with("/api/v1/servers/") {
            self.server.clone()
        } else if path.starts_with("/api/v1/alerts/") {
            self.alert.clone()
        } else if path.starts_with("/api/v1/silences/") {
            self.silence.clone()
        } else if path.starts_with("/api/v1/tokens/") {
            self.token.clone()
        } else {
            Uuid::new_v4().to_string()
        };
        let filled = path.replace("{id}", &id);
        if path.ends_with("/metrics/detail") {
            format!("{filled}?series=cores")
        } else {
            filled
        }
    }
}

async fn holdings(gw: &Gateway, session: &Session, server: &str, hostname: &str) -> Holdings {
    gw.create_server(
        &session.access,
        json!({ "id": server, "name": format!("{server} box"), "hostname": hostname, "tags": ["team=core"] }),
    )
    .await;
    let now = chrono::Utc::now();
    sqlx::query(
        "INSERT INTO metrics (server_id, ts, cpu, memory, disk, network)
         SELECT $1, $2 - make_interval(secs => s), 42.5, 50, 60, 1000 FROM generate_series(0, 59) s",
    )
    .bind(server)
    .bind(now)
    .execute(&gw.db.pool)
    .await
    .expect("samples");
    let alert = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO alerts (id, server_id, metric, severity, state, value, threshold, started_at, message)
         VALUES ($1, $2, 'cpu', 'critical', 'firing', 95, 90, $3, $4)",
    )
    .bind(alert)
    .bind(server)
    .bind(now)
    .bind(format!("cpu on {hostname}"))
    .execute(&gw.db.pool)
    .await
    .expect("alert");
    let (status, silence) = gw
        .post(
            "/api/v1/silences",
            Some(&session.access),
            json!({ "serverId": server, "durationSecs": 3600, "comment": format!("{server} upgrade") }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{silence}");
    let (_, token_id) = token(gw, session, &format!("{server} script"), &["read"]).await;
    Holdings {
        server: server.to_owned(),
        alert: alert.to_string(),
        silence: silence["id"].as_str().expect("id").to_owned(),
        token: token_id,
    }
}

/// Asserts that `owner`'s server keeps its name, its silence is active and `tokens` tokens
/// are live; the token list.
async fn untouched(gw: &Gateway, owner: &Session, has: &Holdings, tokens: usize) -> Value {
    let (status, server) = gw
        .get(&format!("/api/v1/servers/{}", has.server), &owner.access)
        .await;
    assert_eq!(status, StatusCode::OK, "{server}");
    assert_eq!(server["name"], format!("{} box", has.server));
    let (_, silences) = gw.get("/api/v1/silences", &owner.access).await;
    assert_eq!(silences[0]["id"], has.silence.as_str(), "{silences}");
    assert_eq!(silences[0]["status"], "active", "{silences}");
    let (_, list) = gw.get("/api/v1/tokens", &owner.access).await;
    assert_eq!(list.as_array().map(Vec::len), Some(tokens), "{list}");
    list
}

async fn send(
    gw: &Gateway,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let mut request = gw
        .http
        .request(method, format!("{}{path}", gw.base))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn a_token_never_exposes_or_changes_another_users_servers_in_any_route() {
    let gw = Gateway::start().await;
    let root = gw.register("root@example.com").await;
    assert_eq!(root.role, "admin");
    let ada = gw.register("ada@example.com").await;
    let bob = gw.register("bob@example.com").await;
    let ada_has = holdings(&gw, &ada, "ada-1", "ada-host.internal").await;
    let bob_has = holdings(&gw, &bob, "bob-1", "bob-host.internal").await;
    let (ada_all, _) = token(&gw, &ada, "everything", &["read", "write"]).await;
    let (ada_scrape, _) = token(&gw, &ada, "prometheus", &["metrics:scrape"]).await;
    let secrets_of_bob = [
        "bob-1",
        "bob-host",
        bob_has.alert.as_str(),
        bob_has.silence.as_str(),
        bob_has.token.as_str(),
        "bob@example.com",
    ];
    let leaks = |body: &str| {
        secrets_of_bob
            .iter()
            .find(|s| body.contains(*s))
            .map(|s| (*s).to_owned())
    };

    let mut checked_with_ids = 0;
    for (method, path) in routes(&gw).await {
        if method != Method::GET {
            continue;
        }
        if path.contains('{') {
            let bobs = bob_has.fill(&path);
            // The route works for its owner, so a refusal below is about ownership.
            let (owner_status, _) = send(&gw, Method::GET, &bobs, &bob.access, None).await;
            let (status, body) = send(&gw, Method::GET, &bobs, &ada_all, None).await;
            assert!(
                !status.is_success(),
                "GET {bobs} with Ada's token: {status} {body}"
            );
            if owner_status.is_success() {
                checked_with_ids += 1;
                assert!(
                    status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
                    "GET {bobs}: {status}"
                );
            }
            assert_eq!(leaks(&body), None, "GET {bobs}: {body}");
            // Ada's own object through the same route is fine, and hers alone.
            let (status, body) = send(&gw, Method::GET, &ada_has.fill(&path), &ada_all, None).await;
            if owner_status.is_success() && !path.starts_with("/api/v1/tokens") {
                assert!(status.is_success(), "GET {path} of Ada's: {status} {body}");
            }
            assert_eq!(leaks(&body), None, "GET {path} of Ada's: {body}");
        } else {
            for token in [&ada_all, &ada_scrape] {
                let (status, body) = send(&gw, Method::GET, &path, token, None).await;
                assert_eq!(leaks(&body), None, "GET {path}: {status} {body}");
            }
        }
    }
    assert!(
        checked_with_ids >= 6,
        "{checked_with_ids} routes of Bob's objects checked"
    );

    // The exposition shows Ada's server and not Bob's; an admin's token shows both.
    let (status, text) = send(&gw, Method::GET, "/api/v1/prometheus", &ada_scrape, None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("server_id=\"ada-1\""), "{text}");
    assert_eq!(leaks(&text), None);
    let (root_scrape, _) = token(&gw, &root, "fleet", &["metrics:scrape"]).await;
    let (_, text) = send(&gw, Method::GET, "/api/v1/prometheus", &root_scrape, None).await;
    assert!(text.contains("server_id=\"bob-1\"") && text.contains("server_id=\"ada-1\""));

    // Every change aimed at Bob's objects, with Ada's read-write token, is refused...
    for (method, path) in routes(&gw).await {
        if method == Method::GET || !path.contains('{') {
            continue;
        }
        let bobs = bob_has.fill(&path);
        let body =
            json!({ "name": "taken", "serverId": "bob-1", "cpu": { "warning": 1, "critical": 2 } });
        let (status, text) = send(&gw, method.clone(), &bobs, &ada_all, Some(body)).await;
        assert!(
            !status.is_success(),
            "{method} {bobs} with Ada's token: {status} {text}"
        );
        assert_eq!(leaks(&text), None, "{method} {bobs}: {text}");
    }
    // ... and changed nothing of Bob's.
    untouched(&gw, &bob, &bob_has, 1).await;
    let acked: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT acknowledged_at FROM alerts WHERE id = $1")
            .bind(Uuid::parse_str(&bob_has.alert).expect("uuid"))
            .fetch_one(&gw.db.pool)
            .await
            .expect("alert");
    assert_eq!(acked, None, "Bob's alert was not acknowledged");
    // A log for Bob's server is "no such server".
    let (status, _) = send(
        &gw,
        Method::POST,
        "/api/v1/logs",
        &ada_all,
        Some(json!({ "serverId": "bob-1", "level": "error", "message": "forged" })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    gw.stop().await;
}

#[tokio::test]
async fn a_scrape_token_reads_the_exposition_only_and_no_token_writes_beyond_its_scope() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    let ada_has = holdings(&gw, &ada, "ada-1", "ada-host.internal").await;
    let (scrape, _) = token(&gw, &ada, "prometheus", &["metrics:scrape"]).await;
    let (read, _) = token(&gw, &ada, "grafana", &["read"]).await;
    let (logs, _) = token(&gw, &ada, "shipper", &["write:logs"]).await;

    let (status, text) = send(&gw, Method::GET, "/api/v1/prometheus", &scrape, None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, body) = send(&gw, Method::GET, "/api/v1/servers", &scrape, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.contains("metrics:scrape"),
        "the refusal names the scopes: {body}"
    );
    let (status, _) = send(&gw, Method::GET, "/api/v1/servers", &read, None).await;
    assert_eq!(status, StatusCode::OK);

    // Every change the API offers, aimed at Ada's own objects (a session could make it):
    // refused with 403 to the scrape and the read token, before anything is looked at.
    let mut writes = 0;
    for (method, path) in routes_of(&gw, true).await {
        if method == Method::GET || path.ends_with("/thresholds/preview") {
            continue;
        }
        writes += 1;
        let target = ada_has.fill(&path);
        for (name, token) in [("scrape", &scrape), ("read", &read)] {
            let body =
                json!({ "serverId": "ada-1", "level": "info", "message": "hi", "name": "x" });
            let (status, text) = send(&gw, method.clone(), &target, token, Some(body)).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{method} {target} with the {name} token: {text}"
            );
        }
        let (status, text) = send(&gw, method.clone(), &target, &logs, Some(json!({}))).await;
        if method == Method::POST && path == "/api/v1/logs" {
            continue;
        }
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{method} {target} with the logs token: {text}"
        );
    }
    assert!(writes >= 15, "{writes} writes tried");
    // Nothing changed: the server, its silence, no log, no new token.
    let tokens = untouched(&gw, &ada, &ada_has, 4).await;

    // The log-writing token writes logs (and reads nothing).
    let (status, text) = send(
        &gw,
        Method::POST,
        "/api/v1/logs",
        &logs,
        Some(json!({ "serverId": "ada-1", "level": "warn", "message": "disk slow" })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    let (status, _) = send(&gw, Method::GET, "/api/v1/logs", &logs, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Stored hashed: neither the token nor its secret is in the table.
    let secret = scrape.rsplit_once('_').expect("secret").1.to_owned();
    let stored: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT secret_hash FROM api_tokens")
        .fetch_all(&gw.db.pool)
        .await
        .expect("rows");
    let dump: String = sqlx::query_scalar("SELECT string_agg(t::text, ' ') FROM api_tokens t")
        .fetch_one(&gw.db.pool)
        .await
        .expect("dump");
    assert!(!dump.contains(&secret) && !dump.contains(&scrape));
    assert!(stored.iter().all(|(h,)| h.len() == 32));
    // The list never shows a token again; a wrong secret is refused.
    assert!(!tokens.to_string().contains(&secret));
    assert!(
        tokens[0]["hint"]
            .as_str()
            .is_some_and(|h| h.starts_with("flk_"))
    );
    let forged = format!("{}x", &scrape[..scrape.len() - 1]);
    let (status, body) = send(&gw, Method::GET, "/api/v1/prometheus", &forged, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = send(&gw, Method::GET, "/api/v1/prometheus", "flk_nonsense", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Guessing spends the address's sign-in budget (a burst of 5), then 429; a real token from
    // the same address still works.
    let mut refused = Vec::new();
    for _ in 0..5 {
        refused.push(
            send(&gw, Method::GET, "/api/v1/prometheus", &forged, None)
                .await
                .0,
        );
    }
    assert_eq!(
        refused.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{refused:?}"
    );
    let (status, _) = send(&gw, Method::GET, "/api/v1/prometheus", &scrape, None).await;
    assert_eq!(status, StatusCode::OK);

    // Bad requests name what is wrong.
    for (body, why) in [
        (json!({ "name": "x", "scopes": [] }), "scopes"),
        (json!({ "name": "x", "scopes": ["admin"] }), "scopes"),
        (json!({ "name": "", "scopes": ["read"] }), "name"),
        (
            json!({ "name": "x", "scopes": ["read"], "expiresAt": "2001-01-01T00:00:00Z" }),
            "expiresAt",
        ),
    ] {
        let (status, answer) = gw.post("/api/v1/tokens", Some(&ada.access), body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(answer.to_string().contains(why), "{answer}");
    }
    let (status, answer) = gw
        .post(
            "/api/v1/tokens",
            Some(&ada.access),
            json!({ "name": "grafana", "scopes": ["read"] }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a second live 'grafana': {answer}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_admin_sees_and_revokes_every_users_tokens_and_a_user_only_their_own() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await; // the first account: the administrator
    let bob = gw.register("bob@example.com").await;
    let (ada_token, ada_id) = token(&gw, &ada, "ada-ci", &["read"]).await;
    let (bob_token, bob_id) = token(&gw, &bob, "bob-scraper", &["metrics:scrape"]).await;
    let revoke = |by: &Session, id: &str| {
        let path = format!("/api/v1/tokens/{id}");
        let access = by.access.clone();
        let gw = &gw;
        async move { gw.call(Method::DELETE, &path, Some(&access), None).await.0 }
    };
    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .expect("a list")
            .iter()
            .map(|t| t["id"].as_str().expect("id").to_owned())
            .collect()
    };

    // Everyone's own list is their own, the administrator's included.
    let (_, mine) = gw.get("/api/v1/tokens", &ada.access).await;
    assert_eq!(ids(&mine), [ada_id.as_str()]);
    let (_, mine) = gw.get("/api/v1/tokens", &bob.access).await;
    assert_eq!(ids(&mine), [bob_id.as_str()]);
    assert_eq!(mine[0]["ownerEmail"], "bob@example.com");

    // The administrator's view of everyone's: each with its owner, never a secret.
    let (status, all) = gw.get("/api/v1/tokens?owner=all", &ada.access).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(ids(&all), [bob_id.clone(), ada_id.clone()], "newest first");
    assert_eq!(
        (all[0]["ownerEmail"].clone(), all[0]["ownerId"].clone()),
        (json!("bob@example.com"), json!(bob.user_id))
    );
    for secret in [&ada_token, &bob_token] {
        let tail = secret.rsplit_once('_').expect("flk_<id>_<secret>").1;
        assert!(!all.to_string().contains(tail), "{all}");
    }
    // A user may not, and says so; nonsense is named.
    let (status, refusal) = gw.get("/api/v1/tokens?owner=all", &bob.access).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refusal}");
    assert_eq!(code(&refusal), "forbidden", "{refusal}");
    let (status, refusal) = gw.get("/api/v1/tokens?owner=bob", &ada.access).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refusal}");

    // Bob cannot revoke Ada's token: as if it did not exist, and it keeps working.
    let status = revoke(&bob, &ada_id).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(&gw, Method::GET, "/api/v1/servers", &ada_token, None).await;
    assert_eq!(status, StatusCode::OK);

    // The administrator revokes Bob's leaked token: refused from the next request, gone from
    // Bob's list, and the audit log names who revoked whose.
    let (status, _) = send(&gw, Method::GET, "/api/v1/prometheus", &bob_token, None).await;
    assert_eq!(status, StatusCode::OK);
    let status = revoke(&ada, &bob_id).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(&gw, Method::GET, "/api/v1/prometheus", &bob_token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, mine) = gw.get("/api/v1/tokens", &bob.access).await;
    assert_eq!(mine, json!([]));
    let (actor, owner): (Uuid, String) = sqlx::query_as(
        "SELECT actor, detail->>'owner' FROM audit_log
         WHERE action = 'api_token_revoked' AND target = $1",
    )
    .bind(&bob_id)
    .fetch_one(&gw.db.pool)
    .await
    .expect("the revocation's audit row");
    assert_eq!(
        (actor.to_string(), owner),
        (ada.user_id.clone(), bob.user_id.clone())
    );
    // Revoked is revoked: a second time is 404.
    let status = revoke(&ada, &bob_id).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    gw.stop().await;
}

/// A second gateway on `first`'s database and subjects; its base URL.
async fn beside(first: &Gateway, stop: &flick_shared::shutdown::CancellationToken) -> String {
    let mut config = common::config(&first.db, &first.subjects);
    config.gateway.access_cache_ms = 5_000;
    let (address, _, _) = common::spawn(config, stop).await;
    format!("http://{address}")
}

async fn status_at(base: &str, path: &str, token: &str) -> StatusCode {
    flick_shared::testkit::http()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once_on_every_gateway() {
    // Both gateways cache for the longest allowed: only the notification can explain a refusal
    // well within it.
    let gw = Gateway::start_with(|c| c.gateway.access_cache_ms = 5_000).await;
    let stop = flick_shared::shutdown::CancellationToken::new();
    let other = beside(&gw, &stop).await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "ada-1", "name": "ada" }))
        .await;
    let (read, id) = token(&gw, &ada, "grafana", &["read"]).await;
    let path = "/api/v1/servers";
    assert_eq!(status_at(&gw.base, path, &read).await, StatusCode::OK);
    assert_eq!(status_at(&other, path, &read).await, StatusCode::OK);

    // The last use is recorded, and not again within the minute.
    let last_used = || async {
        sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
            "SELECT last_used_at FROM api_tokens WHERE id = $1",
        )
        .bind(Uuid::parse_str(&id).expect("uuid"))
        .fetch_one(&gw.db.pool)
        .await
        .expect("row")
    };
    let first_use =
        flick_shared::testkit::eventually("the use recorded", Duration::from_secs(5), || async {
            last_used().await
        })
        .await;
    for _ in 0..5 {
        assert_eq!(status_at(&gw.base, path, &read).await, StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(last_used().await, Some(first_use));
    let (_, tokens) = gw.get("/api/v1/tokens", &ada.access).await;
    assert_eq!(tokens[0]["lastUsedIp"], "127.0.0.1", "{tokens}");

    let (status, body) = gw
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&ada.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let revoked_at = Instant::now();
    // This gateway: the very next request.
    assert_eq!(
        status_at(&gw.base, path, &read).await,
        StatusCode::UNAUTHORIZED
    );
    // The other: as soon as the notification arrives, well before its cache would expire.
    loop {
        if status_at(&other, path, &read).await == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(2),
            "the other gateway still accepts a revoked token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "revocation reached the other gateway in {:?}",
        revoked_at.elapsed()
    );
    let (_, tokens) = gw.get("/api/v1/tokens", &ada.access).await;
    assert_eq!(tokens, json!([]));
    let (status, body) = gw
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&ada.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // A token cannot make or revoke tokens, even a read-write one.
    let (write, write_id) = token(&gw, &ada, "ci", &["read", "write"]).await;
    let (status, body) = send(
        &gw,
        Method::POST,
        "/api/v1/tokens",
        &write,
        Some(json!({ "name": "next", "scopes": ["read"] })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = send(
        &gw,
        Method::DELETE,
        &format!("/api/v1/tokens/{write_id}"),
        &write,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Its owner disabled by hand in the database: refused on both gateways at once too.
    sqlx::query("UPDATE users SET disabled_at = now() WHERE email = 'ada@example.com'")
        .execute(&gw.db.pool)
        .await
        .expect("disable");
    let disabled_at = Instant::now();
    for base in [gw.base.as_str(), other.as_str()] {
        loop {
            let status = status_at(base, path, &write).await;
            if status == StatusCode::UNAUTHORIZED {
                break;
            }
            assert!(
                disabled_at.elapsed() < Duration::from_secs(2),
                "{base}: {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    sqlx::query("UPDATE users SET disabled_at = NULL WHERE email = 'ada@example.com'")
        .execute(&gw.db.pool)
        .await
        .expect("enable");

    // An expired token is refused without anyone revoking it.
    let session = gw
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "ada@example.com", "password": common::PASSWORD }),
        )
        .await;
    assert_eq!(session.0, StatusCode::OK, "{}", session.1);
    let ada = Session::from(session.1);
    let expires = chrono::Utc::now() + chrono::Duration::seconds(2);
    let (status, body) = gw
        .post(
            "/api/v1/tokens",
            Some(&ada.access),
            json!({ "name": "short", "scopes": ["read"], "expiresAt": expires }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let short = body["token"].as_str().expect("token").to_owned();
    assert_eq!(status_at(&gw.base, path, &short).await, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (status, body) = send(&gw, Method::GET, path, &short, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        code(&serde_json::from_str(&body).expect("json")),
        "unauthorized"
    );
    stop.cancel();
    gw.stop().await;
}

#[tokio::test]
async fn a_read_token_streams_live_until_it_is_revoked_and_a_scrape_token_cannot() {
    use common::ws::{closed, expect, next, open, send};
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let gw = Gateway::start().await;
    let root = gw.register("root@example.com").await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    gw.create_server(&root.access, json!({ "id": "root-1", "name": "root's" }))
        .await;
    let (read, read_id) = token(&gw, &ada, "stream", &["read"]).await;
    let (scrape, _) = token(&gw, &ada, "prometheus", &["metrics:scrape"]).await;

    // A scrape token opens no stream, on the upgrade or by message.
    match open(&gw, Some(&scrape), None).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("a scrape token was let in: {:?}", other.map(|_| ())),
    }
    let mut socket = open(&gw, None, None).await.expect("upgrade");
    send(
        &mut socket,
        json!({ "type": "auth", "id": 1, "data": { "token": scrape } }),
    )
    .await;
    let (code, reason) = closed(&mut socket, Duration::from_secs(5)).await;
    assert_eq!(code, CloseCode::Policy, "{reason}");

    // A read token streams its owner's servers, and only those.
    let mut socket = open(&gw, None, None).await.expect("upgrade");
    send(
        &mut socket,
        json!({ "type": "auth", "id": 1, "data": { "token": read } }),
    )
    .await;
    let ack = expect(&mut socket, "ack").await;
    assert_eq!(ack["data"]["userId"], ada.user_id.as_str(), "{ack}");
    assert_eq!(
        ack["data"]["expiresAt"],
        Value::Null,
        "a token without an end: {ack}"
    );
    for server in ["root-1", "web-1"] {
        send(
            &mut socket,
            json!({ "type": "server_metrics.subscribe", "id": server, "data": { "serverId": server } }),
        )
        .await;
        let answer = next(&mut socket, Duration::from_secs(5))
            .await
            .expect("answer");
        let want = if server == "web-1" { "ack" } else { "error" };
        assert_eq!(answer["type"], want, "{server}: {answer}");
    }
    let nats = flick_shared::testkit::connect().await;
    let now = chrono::Utc::now();
    for (server, cpu) in [("root-1", 99.0), ("web-1", 45.5)] {
        common::publish_sample(&nats, &gw, &common::sample_at(server, now, cpu)).await;
    }
    nats.flush().await.expect("flush");
    let frame = expect(&mut socket, "resource_metrics").await;
    assert_eq!(frame["data"]["serverId"], "web-1", "{frame}");
    assert_eq!(frame["data"]["cpuUsage"], 45.5);

    // Revoked: the stream ends at once, and the token opens no new one.
    let (status, body) = gw
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{read_id}"),
            Some(&ada.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (code, reason) = closed(&mut socket, Duration::from_secs(3)).await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("revoked"), "{reason}");
    match open(&gw, Some(&read), None).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("a revoked token was let in: {:?}", other.map(|_| ())),
    }
    gw.stop().await;
}
