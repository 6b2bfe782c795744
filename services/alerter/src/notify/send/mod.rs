//! One delivery attempt of a notice to a channel, in the request shape of the channel's kind.
//!
//! Retrying, backing off and giving up belong to the caller: [`attempt`] makes exactly one try
//! and says with [`Failure::retry`] whether another could succeed (a network error, a 5xx,
//! 408 or 429, an SMTP 4xx) or not (any other answer, a destination the policy forbids).
//!
//! Every kind checks its destination against [`Destinations`] before it connects (HTTP kinds
//! with [`Destinations::check_url`], e-mail by resolving the SMTP host itself), so no channel
//! reaches loopback or link-local addresses unless `notify.allow_hosts` says so. Redirects are
//! never followed: the caller's client has `redirect(Policy::none())` and a 3xx is final, so a
//! receiver cannot forward secret headers, signatures or bot tokens to another host.
//!
//! Secrets never reach a `Failure` or a log line: webhook URLs of Slack and Discord and the
//! Telegram path carry tokens, so reasons are built from status codes and error kinds, never
//! from URLs (`reqwest::Error::without_url`).

mod discord;
mod email;
mod http;
mod ntfy;
mod slack;
mod standard_webhook;
mod telegram;
pub mod text;
mod webhook;

use tracing::Instrument as _;

use flick_shared::outbound::Destinations;

use super::notice::{Channel, Failure, Kind, Notice};

pub use standard_webhook::standard_signature;
pub use text::{body_text, summary};

/// One attempt to deliver `notice` to `channel`. `attempt` counts from 1.
pub async fn attempt(
    http: &reqwest::Client,
    destinations: &Destinations,
    channel: &Channel,
    notice: &Notice,
    attempt: u32,
) -> Result<(), Failure> {
    let span = tracing::info_span!(
        "notify_attempt",
        channel = %channel.name,
        kind = channel.kind.as_str(),
        notice = %notice.id,
        attempt,
    );
    async move {
        let outcome = match channel.kind {
            Kind::Webhook => webhook::send(http, destinations, channel, notice, attempt).await,
            Kind::StandardWebhook => {
                standard_webhook::send(http, destinations, channel, notice).await
            }
            Kind::Slack => slack::send(http, destinations, channel, notice).await,
            Kind::Discord => discord::send(http, destinations, channel, notice).await,
            Kind::Telegram => telegram::send(http, destinations, channel, notice).await,
            Kind::Ntfy => ntfy::send(http, destinations, channel, notice).await,
            Kind::Email => email::send(destinations, channel, notice).await,
        };
        match &outcome {
            Ok(()) => tracing::debug!("Notice delivered"),
            Err(failure) => {
                tracing::debug!(retry = failure.retry, reason = %failure.reason, "Notice not delivered")
            }
        }
        outcome
    }
    .instrument(span)
    .await
}
