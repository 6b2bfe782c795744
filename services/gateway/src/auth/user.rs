//! The caller, from `Authorization: Bearer <access token>`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

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
/// that the account and the session still stand (the role is the account's current one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentUser {
    pub id: Uuid,
    pub role: Role,
    /// The session the token belongs to.
    pub session: Uuid,
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
            session: claims.sid,
        })
    }
}
