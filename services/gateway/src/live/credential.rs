//! Who a live connection is: a session's access token, or an API token whose scopes allow
//! reading (a script streaming the fleet), from the upgrade's `Authorization` header or an
//! `auth` message.

use std::net::IpAddr;

use crate::auth::api_token::{self, Needs, Scope};
use crate::auth::user::token_caller;
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
/// 403 for an API token without `read`, 503 when the database cannot tell. A refused API token
/// spends the sign-in budget of `ip` (the upgrade's; an `auth` message has none to spend).
pub async fn authenticate(
    state: &AppState,
    token: &str,
    ip: Option<IpAddr>,
) -> Result<Authenticated, ApiError> {
    if let Some(presented) = api_token::parse(token) {
        let (user, grant) = token_caller(state, &presented, Needs::Scope(Scope::Read), ip).await?;
        return Ok(Authenticated {
            user,
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
