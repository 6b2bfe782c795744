//! Slack incoming webhook: `{"text": summary, "blocks": [section (mrkdwn)]}`. `text` is what
//! notifications and old clients show; the section holds the summary in bold and one line per
//! transition, cut to the section's 3,000 characters.
//!
//! `&`, `<` and `>` are escaped as Slack asks: a server named `<!channel>` would otherwise ping
//! everyone, and `<url|label>` would make a link.

use serde_json::json;

use flick_shared::outbound::Destinations;

use super::super::notice::{Channel, Failure, Notice};
use super::{http, text};

/// Slack's limit for a section block's text.
const SECTION_MAX: usize = 3000;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn payload(channel: &Channel, notice: &Notice) -> serde_json::Value {
    let summary = escape(&text::summary_for(notice, Some(&channel.name)));
    let section = format!("*{summary}*\n{}", escape(&text::body_text(notice)));
    json!({
        "text": summary,
        "blocks": [{
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": text::fit_lines(section.trim_end(), SECTION_MAX, text::utf16_len),
            },
        }],
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
