//! What every HTTP kind shares: the destination check, the channel's extra headers, and the
//! reading of an answer as delivered, worth retrying, or final.

use flick_shared::outbound::{Destinations, Refused};

use super::super::notice::{Channel, Failure};

/// The channel URL passes the destinations policy. A name that does not resolve may resolve
/// later (transient); a forbidden address or a malformed URL will not change (permanent).
pub async fn check(destinations: &Destinations, url: &str) -> Result<(), Failure> {
    match destinations.check_url(url).await {
        Ok(()) => Ok(()),
        Err(refused @ Refused::Unresolved { .. }) => Err(Failure::transient(refused.to_string())),
        // Its message repeats the URL, which may hold a token (Slack, Discord).
        Err(Refused::BadUrl(_)) => Err(Failure::permanent(
            "the channel URL is not an http:// or https:// URL with a host",
        )),
        Err(refused) => Err(Failure::permanent(refused.to_string())),
    }
}

/// The channel's extra headers (`Authorization`, …), after the kind's own.
pub fn with_channel_headers(
    mut request: reqwest::RequestBuilder,
    channel: &Channel,
) -> reqwest::RequestBuilder {
    for (name, value) in &channel.headers {
        request = request.header(name, value);
    }
    request
}

/// Sends `request` and reads a 2xx as delivered, anything else as a [`Failure`].
pub async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
    let response = request.send().await.map_err(network_failure)?;
    let status = response.status();
    if status.is_success() {
        Ok(response)
    } else {
        Err(status_failure(status))
    }
}

/// 3xx: final, redirects are not followed; 5xx, 408, 429: worth retrying; other 4xx: final.
pub fn status_failure(status: reqwest::StatusCode) -> Failure {
    let code = status.as_u16();
    if status.is_redirection() {
        Failure::permanent(format!(
            "HTTP {code}: redirects are not followed (point the channel at the final URL)"
        ))
    } else if status.is_server_error() || code == 408 || code == 429 {
        Failure::transient(format!("HTTP {code}"))
    } else {
        Failure::permanent(format!("HTTP {code}"))
    }
}

/// A request that got no answer. The URL is dropped from the error first: Slack and Discord
/// webhook URLs and Telegram's path are secrets.
pub fn network_failure(err: reqwest::Error) -> Failure {
    let err = err.without_url();
    if err.is_builder() {
        // An invalid header name or value: the channel's settings, not the network.
        return Failure::permanent(format!("the request cannot be built: {}", root_cause(&err)));
    }
    if err.is_timeout() {
        return Failure::transient("the request timed out");
    }
    if err.is_connect() {
        return Failure::transient(format!("cannot connect: {}", root_cause(&err)));
    }
    Failure::transient(format!("request failed: {}", root_cause(&err)))
}

/// The innermost error's message: "Connection refused (os error 111)" rather than reqwest's
/// "error sending request".
fn root_cause(err: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}
