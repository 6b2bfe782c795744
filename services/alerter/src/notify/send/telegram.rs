//! Telegram Bot API `sendMessage`: `POST <base>/bot<token>/sendMessage` with `{"chat_id",
//! "text", "disable_web_page_preview": true}`.
//!
//! The text is plain (no `parse_mode`): server names and messages need no escaping and cannot
//! break the request, which Telegram refuses outright when Markdown or HTML does not parse.
//! It is cut to Telegram's 4,096 characters (counted in UTF-16 units, as Telegram does).
//!
//! Errors come back as `{"ok": false, "error_code", "description", "parameters":
//! {"retry_after"}}`: 429 (flood control) and 5xx are worth retrying, the rest (a wrong chat,
//! a bot removed from it) are not. The bot token is in the path: it never appears in a reason
//! (reqwest errors lose their URL, and Telegram's description is scrubbed of it), and the
//! channel's extra headers are not sent (the Bot API has no use for them).

use serde::Deserialize;
use serde_json::json;

use flick_shared::outbound::Destinations;

use super::super::notice::{Channel, Failure, Notice};
use super::{http, text};

const TEXT_MAX: usize = 4096;
const DESCRIPTION_MAX: usize = 200;

#[derive(Debug, Default, Deserialize)]
struct Answer {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Debug, Default, Deserialize)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

pub fn message_text(channel: &Channel, notice: &Notice) -> String {
    let full = format!(
        "{}\n\n{}",
        text::summary_for(notice, Some(&channel.name)),
        text::body_text(notice).trim_end()
    );
    text::fit_lines(&full, TEXT_MAX, text::utf16_len)
}

/// `settings.chatId`: a number (`-1001234567890`) or a string (`@channel`, `"-100…"`).
fn chat_id(channel: &Channel) -> Result<serde_json::Value, Failure> {
    match channel.settings.get("chatId") {
        Some(id @ serde_json::Value::Number(_)) => Ok(id.clone()),
        Some(serde_json::Value::String(id)) if !id.trim().is_empty() => Ok(id.trim().into()),
        _ => Err(Failure::permanent(
            "a Telegram channel needs settings.chatId",
        )),
    }
}

pub async fn send(
    client: &reqwest::Client,
    destinations: &Destinations,
    channel: &Channel,
    notice: &Notice,
) -> Result<(), Failure> {
    let Some(token) = channel.secret.as_deref().filter(|t| !t.is_empty()) else {
        return Err(Failure::permanent("a Telegram channel needs a bot token"));
    };
    let chat_id = chat_id(channel)?;
    http::check(destinations, &channel.url).await?;
    let url = format!(
        "{}/bot{token}/sendMessage",
        channel.url.trim_end_matches('/')
    );
    let body = json!({
        "chat_id": chat_id,
        "text": message_text(channel, notice),
        "disable_web_page_preview": true,
    });
    let response = client
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(http::network_failure)?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    if status.is_redirection() {
        return Err(http::status_failure(status));
    }
    // A body that is not Telegram's error object still has a status worth reporting.
    let answer: Answer = response.json().await.unwrap_or_default();
    let code = status.as_u16();
    let mut reason = format!("Telegram {code}");
    if let Some(description) = answer.description.filter(|d| !d.is_empty()) {
        let description = text::single_line(&description).replace(token, "<bot token>");
        reason.push_str(": ");
        reason.push_str(&text::truncate_chars(&description, DESCRIPTION_MAX));
    }
    let retry_after = answer.parameters.and_then(|p| p.retry_after);
    if let Some(seconds) = retry_after {
        reason.push_str(&format!(" (retry after {seconds} s)"));
    }
    if code == 429 || code == 408 || status.is_server_error() {
        Err(Failure::transient(reason))
    } else {
        Err(Failure::permanent(reason))
    }
}
