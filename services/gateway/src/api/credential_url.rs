//! Channel URLs that are themselves credentials. A Slack or Discord incoming-webhook URL lets
//! anyone who reads it post to the channel (the token is its last path segment), and any URL
//! with a password or a query string (but an e-mail URL's options) may carry a key. Such a URL is sealed like every other
//! channel secret; what is stored in the clear, listed and audited is a form with the
//! credential cut out, enough for an operator to tell the channels apart.

use url::Url;

/// The form of `url` to show, or `None` when it carries no credential and is shown as it is.
/// A URL that does not parse is shown as it is (the caller has already checked its scheme).
pub fn redacted(kind: &str, url: &str) -> Option<String> {
    let mut parsed = Url::parse(url).ok()?;
    let token_in_path = matches!(kind, "slack" | "discord");
    let has_password = parsed.password().is_some();
    // An e-mail URL's query holds options (`?tls=none`), never a key: the alerter refuses
    // credentials in an SMTP URL.
    let has_query = parsed.query().is_some() && kind != "email";
    if !token_in_path && !has_password && !has_query {
        return None;
    }
    if has_password {
        // Cannot fail for a URL that has a host, which every http(s)/smtp(s) URL here has.
        parsed.set_password(Some("…")).ok()?;
    }
    if token_in_path {
        let mut segments: Vec<&str> = parsed.path().split('/').collect();
        if let Some(last) = segments.iter_mut().rev().find(|s| !s.is_empty()) {
            *last = "…";
        }
        let path = segments.join("/");
        parsed.set_path(&path);
    }
    if has_query {
        parsed.set_query(Some("…"));
    }
    parsed.set_fragment(None);
    // `Url` percent-encodes the ellipsis; show it as typed.
    Some(parsed.as_str().replace("%E2%80%A6", "…"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slack_or_discord_webhook_shows_everything_but_its_token() {
        assert_eq!(
            redacted(
                "slack",
                "https://hooks.slack.com/services/T0001/B0002/XXXXXXXXXXXXXXXXXXXXXXXX"
            )
            .as_deref(),
            Some("https://hooks.slack.com/services/T0001/B0002/…")
        );
        assert_eq!(
            redacted(
                "discord",
                "https://discord.com/api/webhooks/123456789/abcDEF-token_value"
            )
            .as_deref(),
            Some("https://discord.com/api/webhooks/123456789/…")
        );
    }

    #[test]
    fn passwords_and_query_strings_are_cut_from_any_kind() {
        assert_eq!(
            redacted("email", "smtp://ops:hunter2@mail.example.com:587").as_deref(),
            Some("smtp://ops:…@mail.example.com:587")
        );
        assert_eq!(
            redacted("webhook", "https://hooks.example.com/flick?key=s3cr3t#x").as_deref(),
            Some("https://hooks.example.com/flick?…")
        );
    }

    #[test]
    fn a_url_without_a_credential_is_shown_as_it_is() {
        assert_eq!(redacted("webhook", "https://hooks.example.com/flick"), None);
        assert_eq!(redacted("ntfy", "https://ntfy.sh/flick-alerts"), None);
        assert_eq!(redacted("email", "smtp://ops@mail.example.com:587"), None);
        assert_eq!(redacted("email", "smtp://mail.lan:25?tls=none"), None);
    }
}
