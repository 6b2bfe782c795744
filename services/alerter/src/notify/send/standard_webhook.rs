//! Standard Webhooks (<https://www.standardwebhooks.com/>): the group body, `webhook-id` (the
//! notice id, the same on every retry so a receiver drops repeats), `webhook-timestamp` (unix
//! seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, so any of
//! the standard's receiver libraries verifies it with the channel's `whsec_…` secret.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use flick_shared::outbound::Destinations;

use super::super::notice::{Channel, Failure, Notice};
use super::http;
use super::webhook::GroupBody;

/// `v1,<base64 of HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`; `secret` is the decoded
/// part of `whsec_<base64>`.
pub fn standard_signature(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .expect("HMAC-SHA256 takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

pub async fn send(
    client: &reqwest::Client,
    destinations: &Destinations,
    channel: &Channel,
    notice: &Notice,
) -> Result<(), Failure> {
    let Some(secret) = channel.signing_secret.as_deref().filter(|s| !s.is_empty()) else {
        return Err(Failure::permanent(
            "a Standard Webhooks channel needs a signing secret (whsec_…)",
        ));
    };
    http::check(destinations, &channel.url).await?;
    let body = GroupBody::new(notice, channel).to_json()?;
    let id = notice.id.to_string();
    let timestamp = chrono::Utc::now().timestamp();
    let request = client
        .post(&channel.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            standard_signature(secret, &id, timestamp, &body),
        );
    http::send(http::with_channel_headers(request, channel).body(body)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    #[test]
    fn the_signature_matches_the_standard_webhooks_test_vector() {
        // The vector of the Standard Webhooks reference libraries (svix's `sign` test:
        // secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, id msg_p5jXN8AQM9LWM0D4loKWxJek,
        // timestamp 1614265330, body {"test": 2432232314}); checked independently with
        // Python: base64(hmac.new(b64decode(secret), b"msg_….1614265330.{…}", sha256)).
        let secret = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .expect("valid base64");
        assert_eq!(
            standard_signature(
                &secret,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
