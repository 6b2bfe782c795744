//! The protective layers: security headers, CORS allowlist, body limit, per-user rate limit,
//! operations endpoints.

mod common;

use reqwest::{Method, StatusCode};
use serde_json::json;

use common::{Gateway, code};

#[tokio::test]
async fn responses_carry_security_headers_and_no_cors_by_default() {
    let gw = Gateway::start().await;
    let response = gw
        .http
        .get(format!("{}/api/v1/servers", gw.base))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let headers = response.headers();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(
            headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name}"
        );
    }
    assert!(
        headers.get("access-control-allow-origin").is_none(),
        "no CORS unless configured"
    );
    gw.stop().await;
}

#[tokio::test]
async fn cors_answers_only_the_configured_origins() {
    let gw =
        Gateway::start_with(|c| c.gateway.cors_origins = vec!["https://dash.example.com".into()])
            .await;
    let preflight = |origin: &'static str| {
        gw.http
            .request(Method::OPTIONS, format!("{}/api/v1/servers", gw.base))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://dash.example.com").await.expect("send");
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://dash.example.com")
    );
    let refused = preflight("https://evil.example.com").await.expect("send");
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_oversized_body_is_413_and_a_busy_user_gets_429() {
    let gw = Gateway::start_with(|c| {
        c.gateway.user_burst = 3;
        c.gateway.user_per_second = 1;
    })
    .await;
    let ada = gw.register("ada@example.com").await;
    let (status, body) = gw
        .post(
            "/api/v1/servers",
            Some(&ada.access),
            json!({ "name": "x", "credentials": { "blob": "x".repeat(100_000) } }),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(gw.get("/api/v1/servers", &ada.access).await.0);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn healthz_is_public_and_readyz_and_metrics_are_on_the_ops_listener_only() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    gw.get("/api/v1/servers", &ada.access).await;
    let text = |base: &str, path: &'static str| {
        let http = gw.http.clone();
        let url = format!("{base}{path}");
        async move {
            let response = http.get(url).send().await.expect("send");
            (response.status(), response.text().await.expect("text"))
        }
    };
    assert_eq!(text(&gw.base, "/healthz").await.0, StatusCode::OK);
    for path in ["/readyz", "/metrics"] {
        let (_, page) = text(&gw.base, path).await;
        assert!(
            page.trim() != "ready" && !page.contains("flick_gateway_requests_total"),
            "{path} is not on the public port: {page}"
        );
    }
    assert_eq!(
        text(&gw.ops, "/readyz").await,
        (StatusCode::OK, "ready\n".to_owned())
    );
    let (status, page) = text(&gw.ops, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(
            "flick_gateway_requests_total{method=\"GET\",route=\"/api/v1/servers\",status=\"200\"}"
        ),
        "{page}"
    );
    assert!(page.contains("flick_gateway_request_seconds_bucket"));
    gw.stop().await;
}

async fn create(gw: &Gateway, token: String, url: &str) -> (StatusCode, serde_json::Value) {
    let body = json!({ "name": "hook", "url": url });
    gw.post("/api/v1/notification-channels", Some(&token), body)
        .await
}

#[tokio::test]
async fn notification_channels_inside_the_machine_are_refused_unless_allowed() {
    let inside = [
        "http://127.0.0.1:9000/hook",
        "http://[::1]:9000/hook",
        "http://0x7f000001/hook",
        "http://localhost:5432/",
        "http://127.0.0.1:8222/varz",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:4222/",
        "http://224.0.0.251/",
    ];
    let gw = Gateway::start().await;
    let admin = gw.register("admin@example.com").await;
    for url in inside {
        let (status, body) = create(&gw, admin.access.clone(), url).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{url}: {body}"
        );
        assert!(
            body.to_string().contains("notify.allow_hosts"),
            "the refusal names the setting: {body}"
        );
    }
    let (status, body) = create(&gw, admin.access.clone(), "https://10.20.30.40/hook").await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a private network is fine: {body}"
    );
    gw.stop().await;

    let gw = Gateway::start_with(|c| c.notify.allow_hosts = vec!["127.0.0.1".into()]).await;
    let admin = gw.register("admin@example.com").await;
    let (status, body) = create(&gw, admin.access.clone(), "http://127.0.0.1:9000/hook").await;
    assert_eq!(status, StatusCode::CREATED, "allowed: {body}");
    let (status, _) = create(&gw, admin.access.clone(), "http://169.254.169.254/").await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "only what is allowed"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_nul_character_in_any_text_field_is_422_naming_the_field() {
    let gw = Gateway::start().await;
    let admin = gw.register("admin@example.com").await;
    gw.create_server(&admin.access, json!({ "id": "nul-1", "name": "nul" }))
        .await;
    let nul = "bad\u{0}text";
    let cases: Vec<(Method, &str, Option<serde_json::Value>, &str)> = vec![
        (
            Method::POST,
            "/api/v1/auth/register",
            Some(
                json!({ "email": format!("a{nul}@example.com"), "password": "long enough password" }),
            ),
            "email",
        ),
        (
            Method::POST,
            "/api/v1/servers",
            Some(json!({ "name": nul })),
            "name",
        ),
        (
            Method::POST,
            "/api/v1/servers",
            Some(json!({ "name": "ok", "hostname": nul })),
            "hostname",
        ),
        (
            Method::POST,
            "/api/v1/servers",
            Some(json!({ "name": "ok", "tags": ["fine", nul] })),
            "tags",
        ),
        (
            Method::PATCH,
            "/api/v1/servers/nul-1",
            Some(json!({ "name": nul })),
            "name",
        ),
        (
            Method::PATCH,
            "/api/v1/servers/nul-1",
            Some(json!({ "hostname": nul })),
            "hostname",
        ),
        (
            Method::PATCH,
            "/api/v1/servers/nul-1",
            Some(json!({ "tags": [nul] })),
            "tags",
        ),
        (Method::GET, "/api/v1/logs?q=a%00b", None, "q"),
        (
            Method::GET,
            "/api/v1/logs?serverId=nul-1%00",
            None,
            "serverId",
        ),
        (Method::GET, "/api/v1/alerts?serverId=%00", None, "serverId"),
        (
            Method::POST,
            "/api/v1/logs",
            Some(json!({ "serverId": "nul-1", "level": "info", "message": nul })),
            "message",
        ),
        (
            Method::POST,
            "/api/v1/logs",
            Some(json!({ "serverId": "nul-1", "level": "info", "message": "ok", "source": nul })),
            "source",
        ),
        (
            Method::POST,
            "/api/v1/logs",
            Some(
                json!({ "serverId": "nul-1", "level": "info", "message": "ok", "fields": { "k": nul } }),
            ),
            "fields",
        ),
        (
            Method::POST,
            "/api/v1/notification-channels",
            Some(json!({ "name": nul, "url": "https://10.1.1.1/" })),
            "name",
        ),
        (
            Method::POST,
            "/api/v1/notification-channels",
            Some(json!({ "name": "hook", "url": format!("https://10.1.1.1/{nul}") })),
            "url",
        ),
        (
            Method::POST,
            "/api/v1/notification-channels",
            Some(
                json!({ "name": "hook", "url": "https://10.1.1.1/", "headers": { "x-token": nul } }),
            ),
            "header",
        ),
    ];
    for (method, path, body, field) in cases {
        let token = (path != "/api/v1/auth/register").then_some(admin.access.as_str());
        let (status, answer) = gw.call(method.clone(), path, token, body).await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{method} {path}: {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(field),
            "{method} {path}: {message:?} names {field}"
        );
    }
    gw.stop().await;
}
