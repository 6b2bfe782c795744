//! What a channel is sent: a notice, the alert transitions grouped for one channel over its
//! window, and the channel as the alerter holds it (secrets opened, in memory only).

use uuid::Uuid;

use flick_shared::wire::AlertEvent;

/// One message for one channel.
#[derive(Debug, Clone)]
pub struct Notice {
    /// Stable across the retries of this notice: the `webhook-id` of Standard Webhooks, the
    /// e-mail's Message-ID, `X-Flick-Notice-Id`. A receiver drops a repeat by it.
    pub id: Uuid,
    /// The transitions, in the order they were decided; at least one.
    pub events: Vec<AlertEvent>,
    /// A reminder that an incident still fires (nothing changed since the last notice).
    pub repeat: bool,
    /// Sent by the "send test" action, not by an alert.
    pub test: bool,
}

/// Which service a channel talks to, and so the shape of its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// FLick's own signed webhook (`X-Flick-Signature`), the body an `AlertEvent` or a group.
    Webhook,
    /// <https://www.standardwebhooks.com/>: `webhook-id`, `webhook-timestamp`,
    /// `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
    StandardWebhook,
    /// Slack incoming webhook (`{"text": …, "blocks": …}`).
    Slack,
    /// Discord webhook (`{"content": …, "embeds": …}`).
    Discord,
    /// Telegram Bot API `sendMessage`.
    Telegram,
    /// ntfy topic (`POST <server>/<topic>`, title/priority/tags headers).
    Ntfy,
    /// E-mail over SMTP (`lettre`): `smtp://` with STARTTLS, `smtps://` with TLS.
    Email,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Webhook,
        Kind::StandardWebhook,
        Kind::Slack,
        Kind::Discord,
        Kind::Telegram,
        Kind::Ntfy,
        Kind::Email,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::StandardWebhook => "standard_webhook",
            Kind::Slack => "slack",
            Kind::Discord => "discord",
            Kind::Telegram => "telegram",
            Kind::Ntfy => "ntfy",
            Kind::Email => "email",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// A channel ready to be sent to.
#[derive(Clone)]
pub struct Channel {
    pub id: Uuid,
    pub name: String,
    pub kind: Kind,
    /// Where requests go: the webhook URL (webhook, standard_webhook, slack, discord), the
    /// topic URL (ntfy: `https://ntfy.sh/flick-alerts`), the Bot API base (telegram:
    /// `https://api.telegram.org`), or the SMTP server (email: `smtp://host:587` for STARTTLS,
    /// `smtps://host:465` for TLS, `smtp://host:25?tls=none` for a relay on a trusted network).
    pub url: String,
    /// Extra HTTP headers (`Authorization`, …).
    pub headers: Vec<(String, String)>,
    /// webhook: the HMAC key; standard_webhook: the secret's bytes (`whsec_<base64>` decoded).
    pub signing_secret: Option<Vec<u8>>,
    /// telegram: the bot token; email: the SMTP password; ntfy: an access token.
    pub secret: Option<String>,
    /// Non-secret settings of the kind: telegram `chatId`; email `from`, `to` (list),
    /// `username`; ntfy `priority`.
    pub settings: serde_json::Value,
    pub route: Route,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field(
                "headers",
                &self.headers.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

/// Which notices a channel takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Route {
    /// Only transitions of critical alerts (and `offline`, which is critical).
    pub critical_only: bool,
    /// Only servers carrying at least one of these tags; empty: every server.
    pub tags: Vec<String>,
}

/// Why one delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Failure {
    /// Worth trying again (network error, 5xx, 408, 429, SMTP 4xx).
    pub retry: bool,
    pub reason: String,
}

impl Failure {
    pub fn transient(reason: impl Into<String>) -> Self {
        Self {
            retry: true,
            reason: reason.into(),
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            retry: false,
            reason: reason.into(),
        }
    }
}
