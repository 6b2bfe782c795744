//! The layers around every request: tracing, metrics, time limit, body limit, CORS and
//! security headers, and JSON answers for unknown routes and methods.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::GatewaySettings;
use crate::error::ApiError;

/// Counts and times each request by route template (`/api/v1/servers/{id}`), method and status.
pub async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("flick_gateway_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("flick_gateway_request_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Ends a request that takes longer than `gateway.request_timeout_ms` with a 503.
pub async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable("the request took too long".into()).into_response(),
    }
}

/// Headers every response carries.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "no-referrer");
    set(
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    if api {
        set(header::CACHE_CONTROL, "no-store");
        set(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        );
    }
    response
}

/// CORS for the configured origins only; none configured, no CORS headers at all.
pub fn cors(settings: &GatewaySettings) -> Option<CorsLayer> {
    if settings.cors_origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = settings
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            // What a CSV download says beside its rows (its next page, the bucket used).
            .expose_headers([
                HeaderName::from_static("x-next-cursor"),
                HeaderName::from_static("x-bucket-secs"),
                HeaderName::from_static("x-source"),
                HeaderName::from_static("x-from"),
                HeaderName::from_static("x-to"),
                header::CONTENT_DISPOSITION,
                header::RETRY_AFTER,
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// The scheme and host a browser shows for this gateway: `http://<Host>`, or the scheme of
/// `X-Forwarded-Proto` (and host of `X-Forwarded-Host`) when the gateway trusts its proxies.
pub(crate) fn own_origin(headers: &HeaderMap, settings: &GatewaySettings) -> Option<String> {
    let forwarded = |name: &str| {
        settings
            .trust_forwarded_for
            .then(|| headers.get(name).and_then(|v| v.to_str().ok()))
            .flatten()
            .and_then(|v| v.split(',').next_back())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let host = forwarded("x-forwarded-host")
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .filter(|host| !host.is_empty())?;
    let scheme = forwarded("x-forwarded-proto").unwrap_or("http");
    Some(format!("{}://{host}", scheme.to_ascii_lowercase()))
}

/// Whether a browser page at the request's `Origin` may use the gateway's credentials (the
/// live socket, the refresh cookie): an origin of `gateway.cors_origins`, or the gateway's own
/// origin, scheme included (`https://gw` is not `http://gw`). Requests without an `Origin`
/// are not from a browser page.
pub fn origin_allowed(headers: &HeaderMap, settings: &GatewaySettings) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    settings
        .cors_origins
        .iter()
        .any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(origin))
        || own_origin(headers, settings).is_some_and(|own| own.eq_ignore_ascii_case(origin))
}

/// 403 unless [`origin_allowed`].
pub fn require_own_origin(headers: &HeaderMap, settings: &GatewaySettings) -> Result<(), ApiError> {
    if origin_allowed(headers, settings) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "this origin may not use the gateway's credentials".into(),
        ))
    }
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

pub async fn method_not_allowed() -> Response {
    let mut response =
        ApiError::BadRequest("this method is not allowed on this route".into()).into_response();
    *response.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str, proto: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().expect("host"));
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().expect("origin"));
        }
        if let Some(proto) = proto {
            headers.insert("x-forwarded-proto", proto.parse().expect("proto"));
        }
        headers
    }

    #[test]
    fn browsers_from_the_allowlist_or_the_gateway_itself_only_scheme_included() {
        let settings = GatewaySettings {
            cors_origins: vec!["https://dash.example.com".to_owned()],
            ..GatewaySettings::default()
        };
        let allowed =
            |origin, host, proto| origin_allowed(&headers(origin, host, proto), &settings);
        assert!(allowed(None, "gw:8080", None), "not a browser");
        assert!(allowed(Some("https://dash.example.com"), "gw:8080", None));
        assert!(
            allowed(Some("http://gw:8080"), "gw:8080", None),
            "same origin"
        );
        assert!(
            !allowed(Some("https://gw:8080"), "gw:8080", None),
            "another scheme is another origin"
        );
        assert!(!allowed(Some("https://evil.example.com"), "gw:8080", None));
        assert!(
            !allowed(Some("https://gw"), "gw", Some("https")),
            "X-Forwarded-Proto is not believed unless forwarding is trusted"
        );
        let behind_tls = GatewaySettings {
            trust_forwarded_for: true,
            ..GatewaySettings::default()
        };
        assert!(origin_allowed(
            &headers(Some("https://gw"), "gw", Some("https")),
            &behind_tls
        ));
        assert!(!origin_allowed(
            &headers(Some("http://gw"), "gw", Some("https")),
            &behind_tls
        ));
    }
}
