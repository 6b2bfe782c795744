//! `/auth`: register, login, refresh, logout, me.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::audit;
use crate::auth::tokens::{new_refresh_token, refresh_token_hash};
use crate::auth::{CurrentUser, Role, password};
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::{AppState, ClientIp};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// A session: a short-lived access token and the refresh token that renews it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
    pub user: User,
}

/// Trimmed and lower-cased; a plausible address (something@domain.tld), at most 254 bytes.
pub fn normalise_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(ApiError::unprocessable("email is not a valid address"))
    }
}

fn check_password(password: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if chars < password::MIN_LEN || password.len() > password::MAX_LEN {
        return Err(ApiError::unprocessable(format!(
            "password must be {} to {} characters long",
            password::MIN_LEN,
            password::MAX_LEN
        )));
    }
    Ok(())
}

type UserRow = (Uuid, String, String, String, DateTime<Utc>);

/// id, user, family, expires, used, revoked
type TokenRow = (
    Uuid,
    Uuid,
    Uuid,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

fn user_of(row: &UserRow) -> User {
    User {
        id: row.0,
        email: row.1.clone(),
        role: Role::parse(&row.3).unwrap_or(Role::User),
        created_at: row.4,
    }
}

/// Issues an access token and a refresh token in `family` (a new family at login).
async fn open_session(state: &AppState, user: User, family: Uuid) -> ApiResult<Session> {
    let (access_token, _) = state.jwt.issue(user.id, user.role)?;
    let refresh_token = new_refresh_token()?;
    let ttl =
        chrono::Duration::days(i64::try_from(state.settings.refresh_token_ttl_days).unwrap_or(30));
    sqlx::query(
        "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::new_v4())
    .bind(user.id)
    .bind(family)
    .bind(refresh_token_hash(&refresh_token))
    .bind(Utc::now() + ttl)
    .execute(&state.pool)
    .await?;
    Ok(Session {
        access_token,
        token_type: "Bearer",
        expires_in: state.jwt.ttl_secs(),
        refresh_token,
        user,
    })
}

/// Creates an account. The first account becomes admin; after it, registration is open or
/// closed by `gateway.registration_open`.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = Credentials,
    responses(
        (status = 201, description = "Account created, session opened", body = Session),
        (status = 400, body = ErrorBody), (status = 403, description = "Registration closed", body = ErrorBody),
        (status = 409, description = "Email taken", body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<(StatusCode, ApiJson<Session>)> {
    state.limits.check_auth(ip)?;
    let email = normalise_email(&body.email)?;
    check_password(&body.password)?;
    let hash = password::hash(body.password).await?;
    let mut tx = state.pool.begin().await?;
    // Serialises registrations so exactly one can be the first (admin).
    sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let first: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM users)")
        .fetch_one(&mut *tx)
        .await?;
    if !first && !state.settings.registration_open {
        return Err(ApiError::Forbidden(
            "registration is closed; ask an admin".into(),
        ));
    }
    let role = if first { Role::Admin } else { Role::User };
    let row: Option<UserRow> = sqlx::query_as(
        "INSERT INTO users (id, email, password_hash, role) VALUES ($1, $2, $3, $4)
         ON CONFLICT (email) DO NOTHING
         RETURNING id, email, password_hash, role, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(&email)
    .bind(&hash)
    .bind(role.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(ApiError::Conflict(
            "an account with this email exists".into(),
        ));
    };
    tx.commit().await?;
    audit::record(
        &state.pool,
        Some(row.0),
        "user_registered",
        Some(&email),
        Some(ip),
        serde_json::json!({ "role": role.as_str() }),
    )
    .await;
    let session = open_session(&state, user_of(&row), Uuid::new_v4()).await?;
    Ok((StatusCode::CREATED, ApiJson(session)))
}

/// Opens a session. An unknown email and a wrong password get the same answer, in the same time.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = Credentials,
    responses(
        (status = 200, body = Session), (status = 400, body = ErrorBody),
        (status = 401, description = "Unknown email or wrong password", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<ApiJson<Session>> {
    state.limits.check_auth(ip)?;
    let email = body.email.trim().to_lowercase();
    if body.password.len() > password::MAX_LEN {
        return Err(ApiError::unprocessable("password is too long"));
    }
    let row: Option<UserRow> = sqlx::query_as(
        "SELECT id, email, password_hash, role, created_at FROM users WHERE email = $1",
    )
    .bind(&email)
    .fetch_optional(&state.pool)
    .await?;
    let hash = match &row {
        Some(row) => row.2.clone(),
        None => password::dummy_hash().await,
    };
    let matches = password::verify(body.password, hash).await?;
    let (Some(row), true) = (row, matches) else {
        audit::record(
            &state.pool,
            None,
            "login_failed",
            Some(&email),
            Some(ip),
            serde_json::json!({}),
        )
        .await;
        return Err(ApiError::Unauthorized("invalid email or password".into()));
    };
    Ok(ApiJson(
        open_session(&state, user_of(&row), Uuid::new_v4()).await?,
    ))
}

/// Exchanges a refresh token for a new session. Each refresh token works once: presenting one
/// that was already used revokes every token of its family (a stolen token is detected).
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = Session), (status = 400, body = ErrorBody),
        (status = 401, description = "Unknown, expired, revoked or reused token", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<ApiJson<Session>> {
    let invalid = || ApiError::Unauthorized("invalid refresh token".into());
    let mut tx = state.pool.begin().await?;
    let token: Option<TokenRow> = sqlx::query_as(
        "SELECT id, user_id, family_id, expires_at, used_at, revoked_at FROM refresh_tokens
         WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(refresh_token_hash(&body.refresh_token))
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, user_id, family, expires_at, used_at, revoked_at)) = token else {
        return Err(invalid());
    };
    if used_at.is_some() && revoked_at.is_none() {
        sqlx::query("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL")
            .bind(family)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        audit::record(
            &state.pool,
            Some(user_id),
            "refresh_token_reused",
            None,
            None,
            serde_json::json!({ "family": family }),
        )
        .await;
        return Err(invalid());
    }
    if revoked_at.is_some() || used_at.is_some() || expires_at <= Utc::now() {
        return Err(invalid());
    }
    sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let row: UserRow = sqlx::query_as(
        "SELECT id, email, password_hash, role, created_at FROM users WHERE id = $1",
    )
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(invalid)?;
    tx.commit().await?;
    Ok(ApiJson(open_session(&state, user_of(&row), family).await?))
}

/// Ends a session: its refresh token family is revoked.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "Logged out (also for an unknown token)"), (status = 400, body = ErrorBody)))]
async fn logout(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<StatusCode> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now()
         WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1) AND revoked_at IS NULL",
    )
    .bind(refresh_token_hash(&body.refresh_token))
    .execute(&state.pool)
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's account.
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
async fn me(State(state): State<AppState>, user: CurrentUser) -> ApiResult<ApiJson<User>> {
    let row: UserRow = sqlx::query_as(
        "SELECT id, email, password_hash, role, created_at FROM users WHERE id = $1",
    )
    .bind(user.id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| ApiError::Unauthorized("the account no longer exists".into()))?;
    Ok(ApiJson(user_of(&row)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalise_email("  Ada@Example.COM ").ok(),
            Some("ada@example.com".into())
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@.com",
        ] {
            assert!(normalise_email(bad).is_err(), "{bad:?}");
        }
    }
}
