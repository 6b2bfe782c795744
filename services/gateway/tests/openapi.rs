//! The OpenAPI document lists exactly the routes the gateway serves, and each one answers.

mod common;

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::json;

use common::Gateway;

/// Every route the gateway serves.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/auth/me"),
    ("get", "/api/v1/servers"),
    ("post", "/api/v1/servers"),
    ("get", "/api/v1/servers/{id}"),
    ("patch", "/api/v1/servers/{id}"),
    ("delete", "/api/v1/servers/{id}"),
    ("get", "/api/v1/servers/{id}/credentials"),
    ("put", "/api/v1/servers/{id}/owner"),
    ("get", "/api/v1/servers/{id}/metrics"),
    ("get", "/api/v1/servers/{id}/metrics/detail"),
    ("get", "/api/v1/servers/{id}/processes"),
    ("get", "/api/v1/servers/{id}/containers"),
    ("get", "/api/v1/servers/{id}/thresholds"),
    ("put", "/api/v1/servers/{id}/thresholds"),
    ("post", "/api/v1/servers/{id}/thresholds/preview"),
    ("get", "/api/v1/alerts"),
    ("post", "/api/v1/alerts/{id}/ack"),
    ("get", "/api/v1/notification-channels"),
    ("post", "/api/v1/notification-channels"),
    ("delete", "/api/v1/notification-channels/{id}"),
    ("post", "/api/v1/notification-channels/{id}/test"),
    ("get", "/api/v1/notification-channels/{id}/notifications"),
    ("get", "/api/v1/alerts/{id}/notifications"),
    ("get", "/api/v1/silences"),
    ("post", "/api/v1/silences"),
    ("delete", "/api/v1/silences/{id}"),
    ("get", "/api/v1/enrollments"),
    ("post", "/api/v1/enrollments"),
    ("delete", "/api/v1/enrollments/{id}"),
    ("post", "/api/v1/enroll"),
    ("get", "/api/v1/enroll/ca"),
    ("post", "/api/v1/servers/{id}/revoke-key"),
    ("get", "/api/v1/logs"),
    ("post", "/api/v1/logs"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{id}"),
    ("get", "/api/v1/prometheus"),
    ("get", "/api/v1/ws"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/healthz"),
    ("get", "/install.sh"),
    ("get", "/downloads/{file}"),
];

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_every_listed_route_answers() {
    let gw = Gateway::start().await;
    let admin = gw.register("admin@example.com").await;
    let (status, document) = gw
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );

    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.insert((method.to_owned(), path.clone()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        documented, served,
        "documented routes differ from served routes"
    );

    // Each documented route is routed (a 404 may only be about the resource, never the route).
    for (method, path) in &documented {
        let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let (status, body) = gw
            .call(
                method.clone(),
                &concrete,
                Some(&admin.access),
                Some(json!({})),
            )
            .await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        let unrouted =
            status == StatusCode::NOT_FOUND && body["error"]["message"] == "route not found";
        assert!(!unrouted, "{method} {path} is documented but not routed");
    }
    let (status, body) = gw.get("/api/v1/nothing-here", &admin.access).await;
    assert_eq!(
        (status, body["error"]["message"].clone()),
        (StatusCode::NOT_FOUND, json!("route not found"))
    );
    let (status, body) = gw
        .call(Method::PATCH, "/api/v1/auth/me", Some(&admin.access), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::METHOD_NOT_ALLOWED, json!("bad_request"))
    );
    gw.stop().await;
}

/// Routes without bearer authentication (the socket authenticates after the upgrade).
const PUBLIC: &[&str] = &[
    "/api/v1/ws",
    "/api/v1/auth/register",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/logout",
    "/api/v1/enroll",
    "/api/v1/enroll/ca",
    "/api/v1/openapi.json",
    "/healthz",
    "/install.sh",
    "/downloads/{file}",
];

#[tokio::test]
async fn every_protected_route_is_401_without_a_token_and_every_body_route_400_on_malformed_json() {
    let gw = Gateway::start().await;
    let admin = gw.register("admin@example.com").await;
    for (method, path) in ROUTES {
        let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        if !PUBLIC.contains(path) {
            let (status, body) = gw.call(method.clone(), &concrete, None, None).await;
            assert_eq!(
                (status, body["error"]["code"].clone()),
                (StatusCode::UNAUTHORIZED, json!("unauthorized")),
                "{method} {path}"
            );
            let (status, _) = gw
                .call(method.clone(), &concrete, Some("not-a-token"), None)
                .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with a bad token"
            );
        }
        if [Method::POST, Method::PUT, Method::PATCH].contains(&method) && !path.ends_with("/ack") {
            let response = gw
                .http
                .request(method.clone(), format!("{}{concrete}", gw.base))
                .bearer_auth(&admin.access)
                .header("content-type", "application/json")
                .body("{,")
                .send()
                .await
                .expect("send");
            let status = response.status();
            let body: serde_json::Value = response.json().await.expect("a JSON error");
            // A route whose resource is checked first may answer 404 before reading the body.
            assert!(
                status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
                "{method} {path}: {status} {body}"
            );
            assert!(body["error"]["code"].is_string(), "{method} {path}: {body}");
        }
    }
    gw.stop().await;
}
