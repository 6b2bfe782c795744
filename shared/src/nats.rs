//! Connecting to NATS the way every service should: named, authenticated, reconnecting forever,
//! and failing loudly only when the very first connection cannot be made.

use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};

use crate::config::NatsSettings;

#[derive(Debug, thiserror::Error)]
#[error("cannot connect to NATS at {url} as {who}")]
pub struct NatsConnectError {
    pub url: String,
    pub who: String,
    #[source]
    pub source: async_nats::ConnectError,
}

/// The inbox prefix of a role. `nats.conf` lets each role subscribe only to its own inboxes, so
/// one service cannot read the replies (JetStream acks, API answers) meant for another.
pub fn inbox_prefix(role: &str) -> String {
    format!("_INBOX.{role}")
}

/// Connects as `role` (collector, persister, alerter, gateway, …).
///
/// The connection is named `flick-<role>@<host>` so `nats server report connections` shows who
/// is who. After the first success the client reconnects forever with capped backoff; callers
/// see errors only on the operations they attempt while disconnected.
pub async fn connect(settings: &NatsSettings, role: &str) -> Result<Client, NatsConnectError> {
    let host = sysname();
    let mut options = ConnectOptions::new()
        .name(format!("flick-{role}@{host}"))
        .custom_inbox_prefix(inbox_prefix(role))
        .max_reconnects(None)
        .connection_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .request_timeout(Some(Duration::from_millis(settings.request_timeout_ms)))
        .event_callback(move |event| async move { log_event(&event) });
    let who = match (&settings.user, &settings.password) {
        (Some(user), Some(password)) => {
            options = options.user_and_password(user.clone(), password.expose().to_owned());
            format!("user {user:?}")
        }
        _ => "anonymous".to_owned(),
    };
    let url = settings.url.clone();
    options
        .connect(url.as_str())
        .await
        .map_err(|source| NatsConnectError { url, who, source })
}

fn log_event(event: &Event) {
    match event {
        Event::Connected => tracing::info!("Connected to NATS"),
        Event::Disconnected => tracing::warn!("Disconnected from NATS; reconnecting"),
        Event::LameDuckMode => tracing::warn!("NATS server entering lame duck mode"),
        Event::SlowConsumer(sid) => tracing::warn!(sid, "NATS slow consumer: messages dropped"),
        Event::ServerError(err) => tracing::error!(error = %err, "NATS server error"),
        Event::ClientError(err) => tracing::error!(error = %err, "NATS client error"),
        Event::Draining | Event::Closed => tracing::debug!(event = %event, "NATS connection"),
    }
}

/// This host's name, for connection names and samples; `unknown` when it cannot be read.
pub fn sysname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}
