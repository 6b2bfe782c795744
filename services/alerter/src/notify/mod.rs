//! Webhook notifications: every alert transition is POSTed as JSON to each enabled channel.
//!
//! The body is the `AlertEvent` exactly as published on NATS. With a signing secret, the
//! request carries `X-Flick-Timestamp` (unix seconds) and `X-Flick-Signature:
//! sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, so a receiver can check both origin and
//! freshness. Each delivery runs on its own task: a slow or dead receiver never delays
//! evaluation. A failed delivery (network error, 5xx, 408, 429) is retried with exponential
//! backoff until `notify_give_up_secs`, then given up and logged; other 4xx answers are final.
//!
//! Deliveries never reach loopback, link-local or other internal addresses unless
//! `notify.allow_hosts` allows them (`flick_shared::outbound`): the URL is checked before each
//! attempt, and the HTTP client resolves names through the same policy, so a name that
//! re-resolves to a forbidden address between the check and the connection is refused too.
//! Redirects are never followed (a 3xx is a final failure): a receiver cannot send the secret
//! headers and the signature on to another host.

mod channels;
pub mod notice;
pub mod send;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use flick_shared::backoff::Backoff;
use flick_shared::wire::AlertEvent;

pub use channels::{Channel, load as load_channels};

use flick_shared::outbound::{Destinations, Refused};

/// Name resolution for the webhook client through the destinations policy.
struct PolicyResolver(Arc<Destinations>);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let destinations = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<std::net::IpAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|address| address.ip())
                .collect();
            let allowed = destinations.filter(&host, addresses)?;
            let addrs: reqwest::dns::Addrs = Box::new(
                allowed
                    .into_iter()
                    .map(|ip| std::net::SocketAddr::new(ip, 0))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            Ok(addrs)
        })
    }
}

/// Deliveries in flight at once; beyond it new ones are dropped and counted.
const MAX_IN_FLIGHT: usize = 256;

#[derive(Debug, Clone)]
pub struct Notifier {
    http: reqwest::Client,
    destinations: Arc<Destinations>,
    channels: Arc<RwLock<Vec<Channel>>>,
    in_flight: Arc<Semaphore>,
    give_up_after: Duration,
}

/// `sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>.<body>").
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| {
        // HMAC accepts keys of any length; this branch cannot be taken.
        <Hmac<Sha256> as KeyInit>::new_from_slice(&[0]).expect("a one-byte key is valid")
    });
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Notifier {
    pub fn new(
        timeout: Duration,
        give_up_after: Duration,
        destinations: Destinations,
    ) -> Result<Self, reqwest::Error> {
        let destinations = Arc::new(destinations);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("flick-alerter/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(PolicyResolver(destinations.clone()))
            .no_proxy()
            .build()?;
        Ok(Self {
            http,
            destinations,
            channels: Arc::new(RwLock::new(Vec::new())),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            give_up_after,
        })
    }

    pub fn set_channels(&self, channels: Vec<Channel>) {
        *self.channels.write().unwrap_or_else(|p| p.into_inner()) = channels;
    }

    /// Starts delivering `event` to every enabled channel; returns at once.
    pub fn notify(&self, event: &AlertEvent) {
        let channels = self
            .channels
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if channels.is_empty() {
            return;
        }
        let Ok(body) = serde_json::to_vec(event) else {
            return;
        };
        let body = bytes::Bytes::from(body);
        for channel in channels {
            let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
                metrics::counter!("flick_alerter_notifications_total", "outcome" => "dropped")
                    .increment(1);
                tracing::warn!(channel = %channel.name, "Too many notifications in flight; one dropped");
                continue;
            };
            let this = self.clone();
            let body = body.clone();
            let event_id = event.id;
            tokio::spawn(async move {
                this.deliver(&channel, event_id, body).await;
                drop(permit);
            });
        }
    }

    #[tracing::instrument(skip_all, fields(channel = %channel.name, event = %event_id))]
    async fn deliver(&self, channel: &Channel, event_id: uuid::Uuid, body: bytes::Bytes) {
        let give_up_at = Instant::now() + self.give_up_after;
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if let Err(refused) = self.destinations.check_url(&channel.url).await {
                let unresolved = matches!(refused, Refused::Unresolved { .. });
                let delay = backoff.next_delay();
                // A name that does not resolve may come back; a forbidden address will not.
                if unresolved && Instant::now() + delay <= give_up_at {
                    tracing::warn!(attempt, reason = %refused, "Notification not sent; retrying");
                    tokio::time::sleep(delay).await;
                    continue;
                }
                metrics::counter!("flick_alerter_notifications_total", "outcome" => "refused")
                    .increment(1);
                tracing::error!(reason = %refused, "Notification refused: its destination is not allowed");
                return;
            }
            let timestamp = chrono::Utc::now().timestamp();
            let mut request = self
                .http
                .post(&channel.url)
                .header("content-type", "application/json")
                .header("x-flick-event-id", event_id.to_string())
                .header("x-flick-timestamp", timestamp.to_string())
                .header("x-flick-attempt", attempt.to_string());
            if let Some(secret) = &channel.signing_secret {
                request = request.header("x-flick-signature", signature(secret, timestamp, &body));
            }
            for (name, value) in &channel.headers {
                request = request.header(name, value);
            }
            let outcome = request.body(body.clone()).send().await;
            let retry = match &outcome {
                Ok(response) if response.status().is_redirection() => false,
                Ok(response) if response.status().is_success() => {
                    metrics::counter!("flick_alerter_notifications_total", "outcome" => "delivered").increment(1);
                    tracing::debug!(attempt, "Notification delivered");
                    return;
                }
                Ok(response) => {
                    let status = response.status();
                    status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429
                }
                Err(_) => true,
            };
            let reason = match outcome {
                Ok(response) if response.status().is_redirection() => format!(
                    "HTTP {}: redirects are not followed (point the channel at the final URL)",
                    response.status()
                ),
                Ok(response) => format!("HTTP {}", response.status()),
                Err(err) => err.to_string(),
            };
            metrics::counter!("flick_alerter_notification_failures_total").increment(1);
            let delay = backoff.next_delay();
            if !retry || Instant::now() + delay > give_up_at {
                metrics::counter!("flick_alerter_notifications_total", "outcome" => "given_up")
                    .increment(1);
                tracing::error!(attempt, reason, "Notification given up");
                return;
            }
            tracing::warn!(
                attempt,
                reason,
                retry_in_ms = delay.as_millis() as u64,
                "Notification failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 style check against an independently computed value.
        let sig = signature(b"key", 1_700_000_000, b"{}");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert_eq!(sig, signature(b"key", 1_700_000_000, b"{}"));
        assert_ne!(
            sig,
            signature(b"key", 1_700_000_001, b"{}"),
            "the timestamp is signed"
        );
        assert_ne!(sig, signature(b"other", 1_700_000_000, b"{}"));
    }
}
