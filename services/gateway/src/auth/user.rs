//! The caller, from `Authorization: Bearer <access token>` (a session's JWT) or
//! `Authorization: Bearer flk_…` (an API token, narrowed to the route's scope).

use std::net::IpAddr;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::access;
use super::api_token::{self, Needs, Presented};
use crate::error::ApiError;
use crate::state::{AppState, ClientIp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

/// An authenticated caller. Extracting it checks the token, the caller's request budget, then
/// that the account and the session (or the API token) still stand: the role is the
/// account's current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentUser {
    pub id: Uuid,
    pub role: Role,
    pub via: Via,
}

/// What the caller authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A signed-in session's access token.
    Session(Uuid),
    /// An API token, allowed the request's scope.
    Token(Uuid),
}

impl CurrentUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Admins only; others get 403.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this needs an admin account".into()))
        }
    }
}

/// The token of `Authorization: Bearer <token>`, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    bearer_header(&parts.headers)
}

/// The token of an `Authorization: Bearer <token>` header, if any.
pub fn bearer_header(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token =
            bearer(parts).ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
        if let Some(presented) = api_token::parse(token) {
            return Box::pin(from_api_token(parts, state, presented)).await;
        }
        let claims = state
            .jwt
            .verify(token)
            .ok_or_else(|| ApiError::Unauthorized("invalid or expired token".into()))?;
        state.limits.check_user(claims.sub)?;
        let role = state
            .access
            .check(&state.pool, claims.sub, claims.sid)
            .await?;
        Ok(CurrentUser {
            id: claims.sub,
            role,
            via: Via::Session(claims.sid),
        })
    }
}

/// The owner of API token `presented`, if it stands and its scopes allow this request.
async fn from_api_token(
    parts: &mut Parts,
    state: &AppState,
    presented: Presented,
) -> Result<CurrentUser, ApiError> {
    let ClientIp(ip) = match ClientIp::from_request_parts(parts, state).await {
        Ok(ip) => ip,
        Err(never) => match never {},
    };
    let path = parts
        .extensions
        .get::<MatchedPath>()
        .map_or_else(|| parts.uri.path(), MatchedPath::as_str);
    let needs = api_token::needed(&parts.method, path);
    let (user, _) = token_caller(state, &presented, needs, Some(ip)).await?;
    state.limits.check_user(user.id)?;
    Ok(user)
}

/// The owner of API token `presented` and what it grants, if it stands and allows `needs`
/// (REST and the live socket alike). A refused token spends the sign-in budget of `ip`, as a
/// wrong password does; a use is written down at most once a minute.
pub async fn token_caller(
    state: &AppState,
    presented: &Presented,
    needs: Needs,
    ip: Option<IpAddr>,
) -> Result<(CurrentUser, access::Grant), ApiError> {
    let grant = match state.access.check_token(&state.pool, presented).await {
        Ok(grant) => grant,
        Err(err @ ApiError::Unauthorized(_)) => {
            if let Some(ip) = ip {
                state.limits.check_refused_token(ip)?;
            }
            return Err(err);
        }
        Err(err) => return Err(err),
    };
    match needs {
        Needs::Session => {
            return Err(ApiError::Forbidden(
                "an API token cannot manage tokens or sign-ins; sign in to do this".into(),
            ));
        }
        Needs::Scope(scope) if !grant.scopes.allow(scope) => {
            return Err(ApiError::Forbidden(format!(
                "this API token's scopes ({}) do not allow this request: it needs `{}`",
                grant.scopes.names().join(", "),
                scope.as_str()
            )));
        }
        Needs::Scope(_) => {}
    }
    if state.access.note_token_use(presented.id) {
        tokio::spawn(access::record_token_use(
            state.pool.clone(),
            presented.id,
            ip,
        ));
    }
    let user = CurrentUser {
        id: grant.user,
        role: grant.role,
        via: Via::Token(presented.id),
    };
    Ok((user, grant))
}
