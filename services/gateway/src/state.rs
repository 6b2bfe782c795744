//! What every handler shares: one cheap-to-clone context.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_nats::jetstream;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use sqlx::PgPool;

use flick_shared::Subjects;
use flick_shared::crypto::KeyRing;

use crate::auth::tokens::JwtKeys;
use crate::config::GatewaySettings;
use crate::limits::Limits;

#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub subjects: Subjects,
    pub jwt: Arc<JwtKeys>,
    pub keys: Arc<KeyRing>,
    pub settings: Arc<GatewaySettings>,
    pub limits: Arc<Limits>,
    /// Account and session checks, cached for a few seconds.
    pub access: Arc<crate::auth::access::Access>,
    /// Password hashing on a bounded number of workers.
    pub hasher: Arc<crate::auth::password::Hasher>,
    /// Issues and revokes enrolled hosts' NATS identities; `None` without `[enrollment]` keys.
    pub registrar: Option<Arc<crate::enrollment::Registrar>>,
    /// The collector binaries `/downloads` serves.
    pub downloads: Arc<crate::api::install::Downloads>,
    /// Default lifetime of an enrolment token.
    pub enrollment_ttl_secs: u64,
    /// Where notification channels may point.
    pub destinations: Arc<flick_shared::outbound::Destinations>,
    /// History queries in flight, per user and overall.
    pub history: Arc<crate::heavy::Gate>,
    /// TimescaleDB's aggregates serve long history ranges when present.
    pub timescale: bool,
    /// Live WebSocket fan-out.
    pub hub: Arc<crate::live::Hub>,
    /// Cancelled when the gateway stops: live connections close with "going away".
    pub shutdown: flick_shared::shutdown::CancellationToken,
}

/// The client's IP: the peer address or, when the gateway trusts its reverse proxies
/// (`gateway.trust_forwarded_for`), the `X-Forwarded-For` entry `gateway.trusted_proxies` from
/// the right. Each proxy appends the address it was connected from, so entries to the left of
/// those are whatever the client wrote and are never believed.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// The client of a request that came through `proxies` trusted proxies, from its
/// `X-Forwarded-For` values (several headers count as one list, in order).
pub fn forwarded_client<'a>(
    values: impl Iterator<Item = &'a str>,
    proxies: usize,
) -> Option<IpAddr> {
    let hops: Vec<&str> = values
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .collect();
    // Fewer entries than proxies: every one was written by a trusted proxy; take the first.
    let index = hops.len().saturating_sub(proxies);
    hops.get(index).and_then(|hop| parse_hop(hop))
}

/// `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]:443` or `192.0.2.1:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.settings.trust_forwarded_for {
            let values = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok());
            if let Some(ip) = forwarded_client(values, state.settings.trusted_proxies) {
                return Ok(ClientIp(ip));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(ClientIp(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_counted_from_the_right_past_the_trusted_proxies() {
        let one = |header: &str, proxies| forwarded_client(std::iter::once(header), proxies);
        let ip = |text: &str| text.parse::<IpAddr>().ok();
        // The client wrote 6.6.6.6 itself; the proxy appended what it saw.
        assert_eq!(one("6.6.6.6, 203.0.113.7", 1), ip("203.0.113.7"));
        assert_eq!(one("6.6.6.6, 203.0.113.7, 10.0.0.2", 2), ip("203.0.113.7"));
        assert_eq!(one("203.0.113.7", 2), ip("203.0.113.7"));
        assert_eq!(one("[2001:db8::1]:443", 1), ip("2001:db8::1"));
        assert_eq!(one("garbage", 1), None);
        assert_eq!(
            forwarded_client(["6.6.6.6", "203.0.113.8"].into_iter(), 1),
            ip("203.0.113.8")
        );
    }
}
