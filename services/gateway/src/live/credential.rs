//! Who a live connection is: a session's access token, or an API token whose scopes allow
//! reading (a script streaming the fleet), from the upgrade's `Authorization` header or an
//! `auth` message.

use std::net::IpAddr;

use crate::auth::access;
use crate::auth::api_token::{self, Scope};
use crate::auth::{CurrentUser, Via};
use crate::error::ApiError;
use crate::state::AppState;

/// The expiry of an API token made without one (2100-01-01): far enough to never end a
/// connection, near enough for the deadline timer's arithmetic.
const NO_EXPIRY: i64 = 4_102_444_800;

/// An authenticated connection's user, and when its credential ends (Unix seconds).
#[derive(Debug, Clone, Copy)]
pub struct Authenticated {
    pub user: CurrentUser,
    pub expires_at: i64,
    /// Whether the credential has an end at all (an API token may not): told to the client.
    pub expires: bool,
}

/// The caller of `token`; 401 for anything invalid, expired, revoked or of a disabled account,
/// 403 for an API token without `read`, 503 when the database cannot tell.
pub async fn authenticate(
    state: &AppState,
    token: &str,
    ip: Option<IpAddr>,
) -> Result<Authenticated, ApiError> {
    if let Some(presented) = api_token::parse(token) {
        let grant = state.access.check_token(&state.pool, &presented).await?;
        if !grant.scopes.allow(Scope::Read) {
            return Err(ApiError::Forbidden(format!(
                "this API token's scopes ({}) do not allow the live stream: it needs `read`",
                grant.scopes.names().join(", ")
            )));
        }
        if let Some(ip) = ip
            && state.access.note_token_use(presented.id)
        {
            tokio::spawn(access::record_token_use(
                state.pool.clone(),
                presented.id,
                ip,
            ));
        }
        return Ok(Authenticated {
            user: CurrentUser {
                id: grant.user,
                role: grant.role,
                via: Via::Token(presented.id),
            },
            expires_at: grant.expires_at.map_or(NO_EXPIRY, |at| at.timestamp()),
            expires: grant.expires_at.is_some(),
        });
    }
    let claims = state
        .jwt
        .verify(token)
        .ok_or_else(|| ApiError::Unauthorized("invalid or expired token".into()))?;
    let role = state
        .access
        .check(&state.pool, claims.sub, claims.sid)
        .await?;
    Ok(Authenticated {
        user: CurrentUser {
            id: claims.sub,
            role,
            via: Via::Session(claims.sid),
        },
        expires_at: claims.exp,
        expires: true,
    })
}
