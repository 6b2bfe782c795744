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
use crate::config::{AlertDefaults, GatewaySettings};
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
    pub defaults: Arc<AlertDefaults>,
    pub limits: Arc<Limits>,
    /// TimescaleDB's aggregates serve long history ranges when present.
    pub timescale: bool,
    /// Live WebSocket fan-out.
    pub hub: Arc<crate::live::Hub>,
    /// Cancelled when the gateway stops: live connections close with "going away".
    pub shutdown: flick_shared::shutdown::CancellationToken,
}

/// The client's IP: the peer address, or the first `X-Forwarded-For` hop when the gateway is
/// configured to trust its reverse proxy.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.settings.trust_forwarded_for
            && let Some(ip) = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok())
        {
            return Ok(ClientIp(ip));
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(ClientIp(peer))
    }
}
