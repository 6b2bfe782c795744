//! One attempt to deliver a notice (FLick's webhook only, until every kind lands).

use flick_shared::outbound::{Destinations, Refused};

use super::notice::{Channel, Failure, Notice};

/// One attempt to deliver `notice` to `channel`. `attempt` counts from 1.
pub async fn attempt(
    http: &reqwest::Client,
    destinations: &Destinations,
    channel: &Channel,
    notice: &Notice,
    attempt: u32,
) -> Result<(), Failure> {
    if let Err(refused) = destinations.check_url(&channel.url).await {
        return Err(match refused {
            Refused::Unresolved { .. } => Failure::transient(refused.to_string()),
            _ => Failure::permanent(refused.to_string()),
        });
    }
    let body = match notice.events.as_slice() {
        [one] => serde_json::to_vec(one),
        events => serde_json::to_vec(&serde_json::json!({
            "noticeId": notice.id, "repeat": notice.repeat, "test": notice.test, "events": events,
        })),
    }
    .map_err(|err| Failure::permanent(err.to_string()))?;
    let timestamp = chrono::Utc::now().timestamp();
    let mut request = http
        .post(&channel.url)
        .header("content-type", "application/json")
        .header("x-flick-notice-id", notice.id.to_string())
        .header("x-flick-timestamp", timestamp.to_string())
        .header("x-flick-attempt", attempt.to_string());
    if let [one] = notice.events.as_slice() {
        request = request.header("x-flick-event-id", one.id.to_string());
    }
    if let Some(secret) = &channel.signing_secret {
        request = request.header(
            "x-flick-signature",
            super::signature(secret, timestamp, &body),
        );
    }
    for (name, value) in &channel.headers {
        request = request.header(name, value);
    }
    match request.body(body).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) if response.status().is_redirection() => Err(Failure::permanent(format!(
            "HTTP {}: redirects are not followed (point the channel at the final URL)",
            response.status()
        ))),
        Ok(response) => {
            let status = response.status();
            let retry =
                status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
            Err(Failure {
                retry,
                reason: format!("HTTP {status}"),
            })
        }
        Err(err) => Err(Failure::transient(err.to_string())),
    }
}

/// One line saying what the notice is about.
pub fn summary(notice: &Notice) -> String {
    if notice.test {
        return "FLick test notification".to_owned();
    }
    match notice.events.as_slice() {
        [one] => format!(
            "{} {:?} {:?} on {}",
            one.metric, one.severity, one.state, one.server_id
        ),
        events => format!("{} alert transitions", events.len()),
    }
}
