//! ntfy: `POST <server>/<topic>` with the body as the message and `Title`, `Priority`, `Tags`
//! headers (<https://docs.ntfy.sh/publish/>), `Authorization: Bearer <token>` with an access
//! token.
//!
//! HTTP header values are ASCII: a title with other characters (a server named `café-01`) is
//! sent as an RFC 2047 encoded-word (`=?UTF-8?B?…?=`), which ntfy decodes since 2.4; control
//! characters become spaces. Priority is 5 for a critical alert firing, 4 for a warning, 3 for
//! resolutions and tests, unless `settings.priority` (1-5 or ntfy's `min`, `low`, `default`,
//! `high`, `max`, `urgent`) fixes it for the channel. The body is cut to 4,000 bytes: beyond
//! 4,096 ntfy turns a message into an attachment.

use base64::Engine as _;

use flick_shared::outbound::Destinations;

use super::super::notice::{Channel, Failure, Notice};
use super::http;
use super::text::{self, Tone};

const BODY_MAX_BYTES: usize = 4000;
const TITLE_MAX_CHARS: usize = 250;

/// A header value that is plain ASCII, or one RFC 2047 encoded-word.
pub fn header_value(value: &str) -> String {
    let value = text::single_line(value);
    if value.is_ascii() {
        value
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value.as_bytes())
        )
    }
}

/// ntfy's priority for the notice, or the channel's fixed one.
pub fn priority(channel: &Channel, notice: &Notice) -> Result<String, Failure> {
    match channel.settings.get("priority") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Number(n)) => match n.as_u64() {
            Some(p @ 1..=5) => return Ok(p.to_string()),
            _ => return Err(bad_priority()),
        },
        Some(serde_json::Value::String(s)) => {
            let s = s.trim().to_ascii_lowercase();
            let known = [
                "1", "2", "3", "4", "5", "min", "low", "default", "high", "max", "urgent",
            ];
            return if known.contains(&s.as_str()) {
                Ok(s)
            } else {
                Err(bad_priority())
            };
        }
        Some(_) => return Err(bad_priority()),
    }
    let priority = match (notice.test, text::tone(notice)) {
        (true, _) | (false, Tone::Resolved) => 3,
        (false, Tone::Warning) => 4,
        (false, Tone::Critical) => 5,
    };
    Ok(priority.to_string())
}

fn bad_priority() -> Failure {
    Failure::permanent("settings.priority must be 1-5 or min, low, default, high, max, urgent")
}

/// An emoji short code ntfy shows before the title.
pub fn tags(notice: &Notice) -> &'static str {
    match (notice.test, text::tone(notice)) {
        (true, _) => "test_tube",
        (false, Tone::Critical) => "rotating_light",
        (false, Tone::Warning) => "warning",
        (false, Tone::Resolved) => "white_check_mark",
    }
}

pub async fn send(
    client: &reqwest::Client,
    destinations: &Destinations,
    channel: &Channel,
    notice: &Notice,
) -> Result<(), Failure> {
    let priority = priority(channel, notice)?;
    http::check(destinations, &channel.url).await?;
    let title = text::truncate_chars(
        &text::summary_for(notice, Some(&channel.name)),
        TITLE_MAX_CHARS,
    );
    let body = text::fit_lines(text::body_text(notice).trim_end(), BODY_MAX_BYTES, str::len);
    let mut request = client
        .post(&channel.url)
        .header("content-type", "text/plain; charset=utf-8")
        .header("title", header_value(&title))
        .header("priority", priority)
        .header("tags", tags(notice));
    let has_authorization = channel
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
    if let Some(token) = channel.secret.as_deref().filter(|t| !t.is_empty())
        && !has_authorization
    {
        request = request.bearer_auth(token);
    }
    http::send(http::with_channel_headers(request, channel).body(body)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_titles_become_one_encoded_word() {
        assert_eq!(header_value("web-01 is offline"), "web-01 is offline");
        assert_eq!(header_value("a\nb"), "a b");
        let encoded = header_value("café-01 is offline");
        assert!(encoded.starts_with("=?UTF-8?B?") && encoded.ends_with("?="));
        let inner = &encoded["=?UTF-8?B?".len()..encoded.len() - 2];
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(inner)
            .expect("base64");
        assert_eq!(decoded, "café-01 is offline".as_bytes());
    }
}
