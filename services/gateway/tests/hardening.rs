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
async fn healthz_readyz_and_metrics_answer_on_the_main_port() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    gw.get("/api/v1/servers", &ada.access).await;
    let text = |path: &'static str| {
        let http = gw.http.clone();
        let url = format!("{}{path}", gw.base);
        async move {
            let response = http.get(url).send().await.expect("send");
            (response.status(), response.text().await.expect("text"))
        }
    };
    assert_eq!(text("/healthz").await.0, StatusCode::OK);
    assert_eq!(
        text("/readyz").await,
        (StatusCode::OK, "ready\n".to_owned())
    );
    let (status, page) = text("/metrics").await;
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
