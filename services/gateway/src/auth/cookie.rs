//! The refresh token as a cookie, for browsers: `HttpOnly` (no script can read it, so an XSS
//! cannot steal a 30-day credential), `Secure`, `SameSite=Strict` (never sent on a request
//! another site starts) and `Path=/api/v1/auth` (sent only to refresh and logout, never with the
//! API's other requests). The short-lived access token stays in the page's memory.

use axum::http::{HeaderMap, HeaderValue, header};

/// The cookie's name.
pub const NAME: &str = "flick_refresh";
/// The only path the browser sends it to.
pub const PATH: &str = "/api/v1/auth";

/// `Set-Cookie` carrying `token` for `max_age_secs`, or until the browser closes (`None`).
pub fn set(token: &str, max_age_secs: Option<u64>, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    let max_age = max_age_secs
        .map(|secs| format!("; Max-Age={secs}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{NAME}={token}{max_age}; Path={PATH}; HttpOnly{secure}; SameSite=Strict"
    ))
    .ok()
}

/// `Set-Cookie` removing it.
pub fn clear(secure: bool) -> Option<HeaderValue> {
    set("", Some(0), secure)
}

/// The refresh token of the request's cookie, if it carries one.
pub fn read(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == NAME)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped_to_auth() {
        let cookie = set("abc", Some(60), true).expect("valid");
        let text = cookie.to_str().expect("text");
        for part in [
            "flick_refresh=abc",
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/api/v1/auth",
            "Max-Age=60",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
        let until_closed = set("abc", None, false).expect("valid");
        assert!(!until_closed.to_str().expect("text").contains("Max-Age"));
        assert!(!until_closed.to_str().expect("text").contains("Secure"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; flick_refresh=xyz; b=2"),
        );
        assert_eq!(read(&headers).as_deref(), Some("xyz"));
        assert_eq!(read(&HeaderMap::new()), None);
    }
}
