//! The web dashboard: the single-page app built from `services/gateway/web` (`npm ci && npm run
//! build` writes `web/dist`), served from `gateway.web_dir` beside the API.
//!
//! - Files come from the directory as they are on disk (a rebuild shows without a restart), with
//!   content types from their extensions, and the `.br`/`.gz` twins the build writes when the
//!   browser accepts them.
//! - `/assets/*` holds file names with a content hash: cached for a year, `immutable`. Everything
//!   else (`index.html`, the favicon) is `no-cache`, so a new build is picked up at once.
//! - Any other path that is not a file (`/servers/web-01`, `/alerts`) is a client-side route and
//!   answers `index.html`. Paths of the API and of operations (`/api/…`, `/healthz`, `/readyz`,
//!   `/metrics`), and requests other than GET and HEAD, keep the API's JSON 404.
//! - When the app is not built, navigations answer a short page saying how to build it, so that
//!   `cargo build` and `cargo test` never need Node.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;
use tower_http::services::ServeDir;

/// Where a container image puts the built dashboard.
pub const INSTALLED_DIR: &str = "/usr/share/flick/web";

/// The build output of this source tree (present after `npm run build` in `services/gateway/web`).
pub fn source_tree_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("web")
        .join("dist")
}

/// `gateway.web_dir` when set; otherwise the source tree's `web/dist` when it exists, then
/// `/usr/share/flick/web` when that exists, else the source tree's (so a later build is found).
pub fn resolve_dir(configured: Option<&Path>) -> PathBuf {
    if let Some(dir) = configured {
        return dir.to_path_buf();
    }
    let source = source_tree_dir();
    if source.is_dir() {
        return source;
    }
    let installed = PathBuf::from(INSTALLED_DIR);
    if installed.is_dir() {
        return installed;
    }
    source
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";
/// The dashboard loads only its own scripts and styles and talks only to its own origin
/// (`'self'` covers the same-origin WebSocket). Styles set from scripts (element.style) are not
/// inline styles, so no `'unsafe-inline'` is needed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The fallback service of the router: files of the dashboard, or the API's JSON 404.
pub fn service(dir: PathBuf) -> BoxCloneSyncService<Request, Response, Infallible> {
    let web = Arc::new(Web {
        files: ServeDir::new(&dir)
            .precompressed_br()
            .precompressed_gzip()
            .append_index_html_on_directories(false),
        dir,
    });
    BoxCloneSyncService::new(tower::service_fn(move |request: Request| {
        let web = web.clone();
        async move { Ok::<_, Infallible>(web.answer(request).await) }
    }))
}

#[derive(Debug)]
struct Web {
    dir: PathBuf,
    files: ServeDir,
}

/// Paths that belong to the API or to operations: never the dashboard.
fn reserved(path: &str) -> bool {
    path == "/api"
        || path.starts_with("/api/")
        || matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// A request for a file rather than a page: the hashed assets, or a name with a static extension.
/// Server ids (`A-Z a-z 0-9 - _`) never end like these, so `/servers/{id}` stays a page.
fn is_file_request(path: &str) -> bool {
    const EXTENSIONS: [&str; 14] = [
        "js",
        "mjs",
        "css",
        "map",
        "svg",
        "png",
        "ico",
        "jpg",
        "webp",
        "woff",
        "woff2",
        "json",
        "txt",
        "webmanifest",
    ];
    if path.starts_with("/assets/") {
        return true;
    }
    let name = path.rsplit('/').next().unwrap_or_default();
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

impl Web {
    async fn answer(&self, request: Request) -> Response {
        let (request, _body) = request.into_parts();
        let path = request.uri.path().to_owned();
        let read = request.method == Method::GET || request.method == Method::HEAD;
        if reserved(&path) || !read {
            return crate::http::not_found().await.into_response();
        }
        if !self.dir.join("index.html").is_file() {
            if is_file_request(&path) {
                return plain_not_found();
            }
            return not_built(&self.dir);
        }
        let index = path == "/" || path == "/index.html";
        let target = if index { "/index.html" } else { path.as_str() };
        let response = self.file(&request, target).await;
        if response.status() != StatusCode::NOT_FOUND {
            return with_cache(response, path.starts_with("/assets/"));
        }
        if is_file_request(&path) {
            return plain_not_found();
        }
        // A client-side route: the app reads the path and draws the page.
        with_cache(self.file(&request, "/index.html").await, false)
    }

    /// The file at `path` under the directory, answered by `ServeDir` (ranges, conditional
    /// requests, precompressed twins, traversal refused).
    async fn file(&self, request: &Parts, path: &str) -> Response {
        let mut builder = Request::builder()
            .method(request.method.clone())
            .uri(Uri::try_from(path).unwrap_or_else(|_| Uri::from_static("/index.html")));
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let Ok(inner) = builder.body(Body::empty()) else {
            return plain_not_found();
        };
        match self.files.clone().oneshot(inner).await {
            Ok(response) => response.map(Body::new),
            Err(never) => match never {},
        }
    }
}

fn with_cache(mut response: Response, hashed: bool) -> Response {
    let status = response.status();
    let served = status.is_success() || status == StatusCode::NOT_MODIFIED;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    if served {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(if hashed { IMMUTABLE } else { NO_CACHE }),
        );
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    response
}

fn plain_not_found() -> Response {
    let mut response = (StatusCode::NOT_FOUND, "not found\n").into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
    response
}

/// `/` before the dashboard is built.
fn not_built(dir: &Path) -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>FLick: the dashboard is not built</title></head>\n<body style=\"font-family: \
         system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem\">\n\
         <h1>The FLick dashboard is not built</h1>\n\
         <p>The gateway is running and its API answers under <a href=\"/api/v1/openapi.json\">\
         <code>/api/v1</code></a>, but it found no dashboard in <code>{dir}</code>.</p>\n\
         <p>Build it (Node.js 20.19 or newer):</p>\n\
         <pre>cd services/gateway/web\nnpm ci &amp;&amp; npm run build</pre>\n\
         <p>then reload this page. A built dashboard elsewhere is served when \
         <code>gateway.web_dir</code> (<code>FLICK_GATEWAY__WEB_DIR</code>) names its directory.</p>\n\
         </body></html>\n",
        dir = html_escape(&dir.display().to_string()),
    );
    let mut response = Html(page).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    response
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_and_operations_paths_are_never_the_dashboard() {
        for path in [
            "/api",
            "/api/",
            "/api/v1/nope",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(reserved(path), "{path}");
        }
        for path in ["/", "/servers/web-01", "/alerts", "/apix", "/metrics/x"] {
            assert!(!reserved(path), "{path}");
        }
    }

    #[test]
    fn files_are_told_from_client_side_routes() {
        for path in [
            "/assets/index-abc.js",
            "/favicon.svg",
            "/x/y.css",
            "/assets/font",
        ] {
            assert!(is_file_request(path), "{path}");
        }
        for path in [
            "/",
            "/servers/web-01",
            "/servers/4a3e3c4f-1f0a",
            "/logs",
            "/servers/a_b-c",
        ] {
            assert!(!is_file_request(path), "{path}");
        }
    }

    #[test]
    fn a_configured_directory_wins() {
        assert_eq!(
            resolve_dir(Some(Path::new("/srv/flick"))),
            PathBuf::from("/srv/flick")
        );
    }

    #[tokio::test]
    async fn the_not_built_page_says_how_to_build_and_escapes_the_directory() {
        let response = not_built(Path::new("/x/<dist>"));
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("npm ci &amp;&amp; npm run build"), "{text}");
        assert!(text.contains("/x/&lt;dist&gt;"), "{text}");
    }
}
