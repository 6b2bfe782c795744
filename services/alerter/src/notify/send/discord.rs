//! Discord webhook: `{"content": summary, "embeds": [{title, description, color, timestamp}],
//! "allowed_mentions": {"parse": []}}`. The empty `parse` list means no `@everyone`, role or
//! user mention in a server name or message pings anyone. Content is cut to Discord's 2,000
//! characters, the description (one line per transition) to 4,096, the title to 256.

use serde_json::json;

use flick_shared::outbound::Destinations;

use super::super::notice::{Channel, Failure, Notice};
use super::http;
use super::text::{self, Tone};

const CONTENT_MAX: usize = 2000;
const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 4096;

/// Red for critical, orange for warning, green for resolved, grey for a test.
pub fn color(notice: &Notice) -> u32 {
    if notice.test {
        return 0x607D8B;
    }
    match text::tone(notice) {
        Tone::Critical => 0xD32F2F,
        Tone::Warning => 0xF57C00,
        Tone::Resolved => 0x388E3C,
    }
}

fn title(notice: &Notice) -> &'static str {
    let many = notice.events.len() > 1;
    match (notice.test, text::tone(notice), many) {
        (true, _, _) => "FLick test notification",
        (false, Tone::Critical, false) => "Critical alert",
        (false, Tone::Critical, true) => "Critical alerts",
        (false, Tone::Warning, false) => "Warning alert",
        (false, Tone::Warning, true) => "Warning alerts",
        (false, Tone::Resolved, false) => "Resolved",
        (false, Tone::Resolved, true) => "All resolved",
    }
}

pub fn payload(channel: &Channel, notice: &Notice) -> serde_json::Value {
    let summary = text::summary_for(notice, Some(&channel.name));
    let mut embed = json!({
        "title": text::truncate_by(title(notice), TITLE_MAX, text::utf16_len),
        "description": text::fit_lines(
            text::body_text(notice).trim_end(),
            DESCRIPTION_MAX,
            text::utf16_len,
        ),
        "color": color(notice),
    });
    if let Some(at) = text::latest_at(notice) {
        embed["timestamp"] = at.to_rfc3339().into();
    }
    json!({
        "content": text::truncate_by(&summary, CONTENT_MAX, text::utf16_len),
        "embeds": [embed],
        "allowed_mentions": { "parse": [] },
    })
}

pub async fn send(
    client: &reqwest::Client,
    destinations: &Destinations,
    channel: &Channel,
    notice: &Notice,
) -> Result<(), Failure> {
    http::check(destinations, &channel.url).await?;
    let request = client.post(&channel.url).json(&payload(channel, notice));
    http::send(http::with_channel_headers(request, channel)).await?;
    Ok(())
}
