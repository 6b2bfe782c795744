//! The web dashboard served by the gateway: the page shown before it is built, content types,
//! cache headers, precompressed files, client-side routes, and the API's JSON 404 kept.

mod common;

use std::path::Path;

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE};
use serde_json::Value;

use common::{Gateway, code};

const INDEX: &str = "<!doctype html><html><head><title>FLick</title>\
    <script type=\"module\" src=\"/assets/index-3f2a1b.js\"></script></head>\
    <body><div id=\"app\"></div></body></html>";

/// A directory shaped like `npm run build`'s output.
fn built_app() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    let dist = root.path();
    std::fs::create_dir(dist.join("assets")).expect("assets");
    std::fs::write(dist.join("index.html"), INDEX).expect("index");
    std::fs::write(
        dist.join("assets/index-3f2a1b.js"),
        "console.log('flick');\n",
    )
    .expect("js");
    std::fs::write(dist.join("assets/index-3f2a1b.css"), "body{margin:0}\n").expect("css");
    std::fs::write(
        dist.join("favicon.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    )
    .expect("svg");
    // The build's gzip twin (the content does not matter to the test: only the choice).
    std::fs::write(dist.join("assets/index-3f2a1b.js.gz"), b"\x1f\x8bgzipped").expect("gz");
    root
}

async fn get(gw: &Gateway, path: &str) -> reqwest::Response {
    gw.http
        .get(format!("{}{path}", gw.base))
        .send()
        .await
        .expect("send")
}

fn header(response: &reqwest::Response, name: impl reqwest::header::AsHeaderName) -> &str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn start_with_dir(dir: &Path) -> Gateway {
    let dir = dir.to_path_buf();
    Gateway::start_with(move |c| c.gateway.web_dir = Some(dir)).await
}

#[tokio::test]
async fn before_the_build_the_root_says_how_to_build_and_the_api_still_answers() {
    let empty = tempfile::tempdir().expect("temp dir");
    let gw = start_with_dir(empty.path()).await;

    for path in ["/", "/servers/web-01"] {
        let response = get(&gw, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            header(&response, CONTENT_TYPE).starts_with("text/html"),
            "{path}"
        );
        assert_eq!(header(&response, CACHE_CONTROL), "no-cache");
        let body = response.text().await.expect("body");
        assert!(body.contains("npm ci &amp;&amp; npm run build"), "{body}");
        assert!(body.contains("services/gateway/web"), "{body}");
    }
    let asset = get(&gw, "/assets/index-3f2a1b.js").await;
    assert_eq!(asset.status(), StatusCode::NOT_FOUND);

    let (status, body) = gw
        .call(reqwest::Method::GET, "/api/v1/nope", None, None)
        .await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let health = get(&gw, "/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    gw.stop().await;
}

#[tokio::test]
async fn built_files_have_their_content_types_and_cache_headers() {
    let app = built_app();
    let gw = start_with_dir(app.path()).await;

    let root = get(&gw, "/").await;
    assert_eq!(root.status(), StatusCode::OK);
    assert!(header(&root, CONTENT_TYPE).starts_with("text/html"));
    assert_eq!(header(&root, CACHE_CONTROL), "no-cache");
    assert!(header(&root, "content-security-policy").contains("default-src 'self'"));
    assert_eq!(header(&root, "x-frame-options"), "DENY");
    assert_eq!(root.text().await.expect("body"), INDEX);

    for (path, content_type) in [
        ("/assets/index-3f2a1b.js", "text/javascript"),
        ("/assets/index-3f2a1b.css", "text/css"),
    ] {
        let response = get(&gw, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            header(&response, CONTENT_TYPE).starts_with(content_type),
            "{path}: {}",
            header(&response, CONTENT_TYPE)
        );
        assert_eq!(
            header(&response, CACHE_CONTROL),
            "public, max-age=31536000, immutable",
            "{path}"
        );
    }
    let icon = get(&gw, "/favicon.svg").await;
    assert_eq!(header(&icon, CONTENT_TYPE), "image/svg+xml");
    assert_eq!(
        header(&icon, CACHE_CONTROL),
        "no-cache",
        "not hashed: revalidated"
    );

    let index = get(&gw, "/index.html").await;
    assert_eq!(header(&index, CACHE_CONTROL), "no-cache");
    gw.stop().await;
}

#[tokio::test]
async fn a_browser_that_accepts_gzip_gets_the_precompressed_twin() {
    let app = built_app();
    let gw = start_with_dir(app.path()).await;
    let response = gw
        .http
        .get(format!("{}/assets/index-3f2a1b.js", gw.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, CONTENT_ENCODING), "gzip");
    assert!(header(&response, CONTENT_TYPE).starts_with("text/javascript"));
    assert_eq!(
        header(&response, CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&response, "vary"), "accept-encoding");
    gw.stop().await;
}

#[tokio::test]
async fn client_side_routes_fall_back_to_the_app_but_api_paths_never_do() {
    let app = built_app();
    let gw = start_with_dir(app.path()).await;

    for path in [
        "/servers/web-01",
        "/alerts",
        "/logs?serverId=x",
        "/admin",
        "/servers/",
    ] {
        let response = get(&gw, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            header(&response, CONTENT_TYPE).starts_with("text/html"),
            "{path}"
        );
        assert_eq!(header(&response, CACHE_CONTROL), "no-cache", "{path}");
        assert_eq!(response.text().await.expect("body"), INDEX, "{path}");
    }

    // A missing file is a 404, not the app (a stale page must not run HTML as a script).
    let missing = get(&gw, "/assets/index-000000.js").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // The API and operations keep their own answers.
    for path in ["/api/v1/nope", "/api/v2/servers", "/api", "/api/"] {
        let (status, body) = gw.call(reqwest::Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(code(&body), "not_found", "{path}: {body}");
        assert!(matches!(body, Value::Object(_)), "{path}: JSON");
    }
    let (status, _) = gw
        .call(reqwest::Method::GET, "/api/v1/servers", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let health = get(&gw, "/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);

    // Only GET and HEAD reach the dashboard.
    let (status, body) = gw
        .call(
            reqwest::Method::POST,
            "/servers/web-01",
            None,
            Some(serde_json::json!({})),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let head = gw
        .http
        .head(format!("{}/alerts", gw.base))
        .send()
        .await
        .expect("send");
    assert_eq!(head.status(), StatusCode::OK);
    gw.stop().await;
}

#[tokio::test]
async fn files_outside_the_directory_are_never_served() {
    let app = built_app();
    std::fs::create_dir(app.path().join("dist")).expect("dist");
    std::fs::rename(
        app.path().join("index.html"),
        app.path().join("dist/index.html"),
    )
    .expect("move");
    std::fs::rename(app.path().join("assets"), app.path().join("dist/assets")).expect("move");
    std::fs::write(app.path().join("secret.txt"), "do not serve").expect("secret");
    let gw = start_with_dir(&app.path().join("dist")).await;
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/../../secret.txt",
    ] {
        let response = gw
            .http
            .get(format!("{}{path}", gw.base))
            .send()
            .await
            .expect("send");
        let body = response.text().await.expect("body");
        assert!(!body.contains("do not serve"), "{path}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_web_dir_that_does_not_exist_stops_start_up() {
    use flick_shared::config::Validate as _;
    let db = flick_shared::testkit::TestDb::new().await;
    let subjects = flick_shared::testkit::unique_subjects();
    let mut config = common::config(&db, &subjects);
    config.gateway.web_dir = Some("/nonexistent/flick/web".into());
    let err = config.validate().expect_err("refused");
    assert!(err.to_string().contains("gateway.web_dir"), "{err}");
}
