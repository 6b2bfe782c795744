//! FLick's own webhook: the body an `AlertEvent` exactly as before groups existed (so existing
//! receivers keep working) or, for a group, `{"noticeId", "summary", "repeat", "test",
//! "events"}`; signed with `X-Flick-Signature: sha256=<hex HMAC of "timestamp.body">`.
//!
//! A test notice always has the group shape, even with one event: its `"test": true` is what
//! keeps a receiver from taking the example transition for a real alert.

use serde::Serialize;
use uuid::Uuid;

use flick_shared::outbound::Destinations;
use flick_shared::wire::AlertEvent;

use super::super::notice::{Channel, Failure, Notice};
use super::{http, text};

/// The body of a group: the same for `webhook` and `standard_webhook`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupBody<'a> {
    pub notice_id: Uuid,
    pub summary: String,
    pub repeat: bool,
    pub test: bool,
    pub events: &'a [AlertEvent],
}

impl<'a> GroupBody<'a> {
    pub fn new(notice: &'a Notice, channel: &Channel) -> Self {
        Self {
            notice_id: notice.id,
            summary: text::summary_for(notice, Some(&channel.name)),
            repeat: notice.repeat,
            test: notice.test,
            events: &notice.events,
        }
    }

    pub fn to_json(&self) -> Result<Vec<u8>, Failure> {
        serde_json::to_vec(self)
            .map_err(|err| Failure::permanent(format!("the notice cannot be encoded: {err}")))
    }
}

/// The single event a notice is sent as, when it is one real transition.
fn single(notice: &Notice) -> Option<&AlertEvent> {
    match notice.events.as_slice() {
        [event] if !notice.test => Some(event),
        _ => None,
    }
}

pub async fn send(
    client: &reqwest::Client,
    destinations: &Destinations,
    channel: &Channel,
    notice: &Notice,
    attempt: u32,
) -> Result<(), Failure> {
    http::check(destinations, &channel.url).await?;
    let event = single(notice);
    let body = match event {
        Some(event) => serde_json::to_vec(event)
            .map_err(|err| Failure::permanent(format!("the event cannot be encoded: {err}")))?,
        None => GroupBody::new(notice, channel).to_json()?,
    };
    let timestamp = chrono::Utc::now().timestamp();
    let mut request = client
        .post(&channel.url)
        .header("content-type", "application/json")
        .header("x-flick-notice-id", notice.id.to_string())
        .header("x-flick-timestamp", timestamp.to_string())
        .header("x-flick-attempt", attempt.to_string());
    if let Some(event) = event {
        request = request.header("x-flick-event-id", event.id.to_string());
    }
    if let Some(secret) = &channel.signing_secret {
        request = request.header(
            "x-flick-signature",
            crate::notify::signature(secret, timestamp, &body),
        );
    }
    http::send(http::with_channel_headers(request, channel).body(body)).await?;
    Ok(())
}
