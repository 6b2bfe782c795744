//! `/auth`: register, login, refresh, logout, me.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::audit;
use crate::auth::tokens::{new_refresh_token, refresh_token_hash};
use crate::auth::{CurrentUser, Role, cookie, password};
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::http;
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Credentials {
    pub email: String,
    pub password: String,
    /// Where the refresh token goes: `body` (default, for scripts) or `cookie` (browsers: an
    /// `HttpOnly` cookie no script can read; the body then carries no refresh token).
    #[serde(default)]
    pub refresh_in: RefreshIn,
    /// With `refreshIn: cookie`: keep the cookie after the browser closes ("keep me signed
    /// in", the default) or only until then.
    #[serde(default = "keep")]
    pub remember: bool,
}

fn keep() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RefreshIn {
    #[default]
    Body,
    Cookie,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token; absent when it travels in the `flick_refresh` cookie.
    pub refresh_token: Option<String>,
    /// An id the client picks for this refresh (16 to 128 visible ASCII characters) and keeps
    /// until the answer arrives. When the answer is lost (a page reloaded mid-request), the
    /// same token presented again with the same id within 60 s gets new tokens, provided the
    /// ones issued the first time were never used; any other second use ends the session.
    pub attempt: Option<String>,
}

/// How long after a refresh its client may retry it (the answer was lost).
const RETRY_WITHIN: chrono::Duration = chrono::Duration::seconds(60);

impl RefreshRequest {
    fn attempt_hash(&self) -> ApiResult<Option<Vec<u8>>> {
        let Some(attempt) = &self.attempt else {
            return Ok(None);
        };
        if !(16..=128).contains(&attempt.len()) || !attempt.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::Unprocessable(
                "attempt: 16 to 128 visible ASCII characters".into(),
            ));
        }
        Ok(Some(refresh_token_hash(attempt)))
    }
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
    /// Absent when the refresh token was set as the `flick_refresh` cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub user: User,
}

/// Trimmed and lower-cased; a plausible address (something@domain.tld), at most 254 bytes, with
/// no control characters.
pub fn normalise_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim();
    if email.len() > 254 {
        return Err(ApiError::unprocessable("email is not a valid address"));
    }
    let email = email.to_lowercase();
    let valid = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
    }) && !email.chars().any(|c| c.is_whitespace() || c.is_control());
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

/// id, email, password hash, role, created, disabled
type UserRow = (
    Uuid,
    String,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

/// The columns of a [`UserRow`], for `concat!` into static queries.
macro_rules! user_columns {
    () => {
        "id, email, password_hash, role, created_at, disabled_at"
    };
}

/// id, user, session, expires, used, revoked
type TokenRow = (
    Uuid,
    Uuid,
    Uuid,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<Vec<u8>>,
);

fn user_of(row: &UserRow) -> User {
    User {
        id: row.0,
        email: row.1.clone(),
        role: Role::parse(&row.3).unwrap_or(Role::User),
        created_at: row.4,
    }
}

/// A session's tokens, and how the answer carries the refresh token.
struct Issued {
    session: Session,
    cookie: Option<HeaderValue>,
}

impl IntoResponse for Issued {
    fn into_response(self) -> Response {
        let mut response = ApiJson(self.session).into_response();
        if let Some(cookie) = self.cookie {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }
}

/// Issues an access token for `session` and a new refresh token in it, inside `tx`: the new
/// refresh token exists exactly when the transaction that consumed the old one commits, so a
/// concurrent reuse that revokes the session revokes it too.
async fn issue(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    user: User,
    session: Uuid,
    refresh_in: RefreshIn,
    persistent: bool,
) -> ApiResult<Issued> {
    let (access_token, _) = state.jwt.issue(user.id, session, user.role)?;
    let refresh_token = new_refresh_token()?;
    let ttl_days = state.settings.refresh_token_ttl_days;
    let ttl = chrono::Duration::days(i64::try_from(ttl_days).unwrap_or(30));
    sqlx::query(
        "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::new_v4())
    .bind(user.id)
    .bind(session)
    .bind(refresh_token_hash(&refresh_token))
    .bind(Utc::now() + ttl)
    .execute(&mut *tx)
    .await?;
    let (refresh_token, cookie) = match refresh_in {
        RefreshIn::Body => (Some(refresh_token), None),
        RefreshIn::Cookie => (
            None,
            cookie::set(
                &refresh_token,
                persistent.then_some(ttl_days * 86_400),
                state.settings.cookie_secure,
            ),
        ),
    };
    Ok(Issued {
        session: Session {
            access_token,
            token_type: "Bearer",
            expires_in: state.jwt.ttl_secs(),
            refresh_token,
            user,
        },
        cookie,
    })
}

/// Opens a new session for `user` inside `tx`, as `credentials` ask.
async fn open_session(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    user: User,
    credentials: &Credentials,
) -> ApiResult<Issued> {
    let session = Uuid::new_v4();
    sqlx::query("INSERT INTO sessions (id, user_id, persistent) VALUES ($1, $2, $3)")
        .bind(session)
        .bind(user.id)
        .bind(credentials.remember)
        .execute(&mut *tx)
        .await?;
    issue(
        state,
        tx,
        user,
        session,
        credentials.refresh_in,
        credentials.remember,
    )
    .await
}

/// Creates an account. The first account becomes admin; after it, registration is open or
/// closed by `gateway.registration_open`.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = Credentials,
    responses(
        (status = 201, description = "Account created, session opened", body = Session),
        (status = 400, body = ErrorBody), (status = 403, description = "Registration closed", body = ErrorBody),
        (status = 409, description = "Email taken", body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, description = "Too busy hashing passwords", body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<(StatusCode, Issued)> {
    state.limits.check_auth(ip)?;
    let email = normalise_email(&body.email)?;
    check_password(&body.password)?;
    let hash = state.hasher.hash(body.password.clone()).await?;
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
    let row: Option<UserRow> = sqlx::query_as(concat!(
        "INSERT INTO users (id, email, password_hash, role) VALUES ($1, $2, $3, $4)
         ON CONFLICT (email) DO NOTHING
         RETURNING ",
        user_columns!(),
        ""
    ))
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
    let issued = open_session(&state, &mut tx, user_of(&row), &body).await?;
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
    Ok((StatusCode::CREATED, issued))
}

/// Opens a session. An unknown email, a disabled account and a wrong password get the same
/// answer, in the same time.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = Credentials,
    responses(
        (status = 200, body = Session), (status = 400, body = ErrorBody),
        (status = 401, description = "Unknown email or wrong password", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, description = "Too busy hashing passwords", body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Issued> {
    state.limits.check_auth(ip)?;
    // An address that could never have been registered cannot match either.
    let email = normalise_email(&body.email)?;
    if body.password.len() > password::MAX_LEN {
        return Err(ApiError::unprocessable("password is too long"));
    }
    let row: Option<UserRow> = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE email = $1"
    ))
    .bind(&email)
    .fetch_optional(&state.pool)
    .await?;
    let hash = match &row {
        Some(row) => row.2.clone(),
        None => state.hasher.dummy_hash().await?,
    };
    let matches = state.hasher.verify(body.password.clone(), hash).await?;
    let row = row.filter(|row| matches && row.5.is_none());
    let Some(row) = row else {
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
    let mut tx = state.pool.begin().await?;
    let issued = open_session(&state, &mut tx, user_of(&row), &body).await?;
    tx.commit().await?;
    Ok(issued)
}

/// The refresh token of a request: the body's, else the cookie's; and where the new one goes.
fn presented(headers: &HeaderMap, body: &RefreshRequest) -> Option<(String, RefreshIn)> {
    match &body.refresh_token {
        Some(token) => Some((token.clone(), RefreshIn::Body)),
        None => cookie::read(headers).map(|token| (token, RefreshIn::Cookie)),
    }
}

/// Exchanges a refresh token for a new session. Each refresh token works once: presenting one
/// that was already used ends its session (a stolen token is detected), and with it every
/// access token of that session.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = Session), (status = 400, body = ErrorBody),
        (status = 401, description = "Unknown, expired, revoked or reused token", body = ErrorBody),
        (status = 403, description = "Cookie sent from a page of another origin", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn refresh(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<Issued> {
    state.limits.check_refresh(ip)?;
    let invalid = || ApiError::Unauthorized("invalid refresh token".into());
    let attempt = body.attempt_hash()?;
    let (token, refresh_in) = presented(&headers, &body).ok_or_else(invalid)?;
    if refresh_in == RefreshIn::Cookie {
        http::require_own_origin(&headers, &state.settings)?;
    }
    let mut tx = state.pool.begin().await?;
    let row: Option<TokenRow> = sqlx::query_as(
        "SELECT id, user_id, family_id, expires_at, used_at, revoked_at, used_by_attempt
         FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(refresh_token_hash(&token))
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, user_id, session, expires_at, used_at, revoked_at, used_by)) = row else {
        return Err(invalid());
    };
    if revoked_at.is_some() {
        return Err(invalid());
    }
    let retry = match used_at {
        None => false,
        Some(used_at) => {
            let retry = attempt.is_some()
                && attempt == used_by
                && used_at > Utc::now() - RETRY_WITHIN
                && successor_unused(&mut tx, session, used_at).await?;
            if !retry {
                end_session(&mut tx, session).await?;
                tx.commit().await?;
                audit::record(
                    &state.pool,
                    Some(user_id),
                    "refresh_token_reused",
                    None,
                    Some(ip),
                    serde_json::json!({ "session": session }),
                )
                .await;
                return Err(invalid());
            }
            true
        }
    };
    if expires_at <= Utc::now() {
        return Err(invalid());
    }
    let row: UserRow = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users u WHERE id = $1 AND disabled_at IS NULL
           AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = $2 AND s.revoked_at IS NULL)"
    ))
    .bind(user_id)
    .bind(session)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(invalid)?;
    let persistent: bool = sqlx::query_scalar("SELECT persistent FROM sessions WHERE id = $1")
        .bind(session)
        .fetch_one(&mut *tx)
        .await?;
    if retry {
        // The tokens the lost answer carried: nobody holds them, and only one may live.
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = now()
             WHERE family_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(session)
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query(
            "UPDATE refresh_tokens SET used_at = now(), used_by_attempt = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(&attempt)
        .execute(&mut *tx)
        .await?;
    }
    let issued = issue(
        &state,
        &mut tx,
        user_of(&row),
        session,
        refresh_in,
        persistent,
    )
    .await?;
    tx.commit().await?;
    Ok(issued)
}

/// Whether no refresh token of `session` was used after `used_at`: the token issued by that
/// refresh was never presented, so a retry of it takes nothing from anyone.
async fn successor_unused(
    tx: &mut sqlx::PgConnection,
    session: Uuid,
    used_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = $1 AND used_at > $2)",
    )
    .bind(session)
    .bind(used_at)
    .fetch_one(&mut *tx)
    .await
}

/// Revokes a session and every refresh token of it.
async fn end_session(tx: &mut sqlx::PgConnection, session: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
        .bind(session)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(session)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Ends a session, named by its refresh token (body or cookie) or by the bearer access token:
/// its access tokens stop working within seconds and its refresh tokens at once. The cookie is
/// cleared.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "Logged out (also for an unknown token)"), (status = 400, body = ErrorBody)))]
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<Response> {
    let bearer = crate::auth::user::bearer_header(&headers)
        .and_then(|token| state.jwt.verify(token))
        .map(|claims| claims.sid);
    let by_refresh = match presented(&headers, &body) {
        Some((token, _)) => {
            sqlx::query_scalar("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
                .bind(refresh_token_hash(&token))
                .fetch_optional(&state.pool)
                .await?
        }
        None => None,
    };
    let mut tx = state.pool.begin().await?;
    for session in by_refresh.into_iter().chain(bearer) {
        end_session(&mut tx, session).await?;
    }
    tx.commit().await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(clear) = cookie::clear(state.settings.cookie_secure) {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    Ok(response)
}

/// The caller's account.
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
async fn me(State(state): State<AppState>, user: CurrentUser) -> ApiResult<ApiJson<User>> {
    let row: UserRow = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE id = $1"
    ))
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
            "ada\u{0}@example.com",
            &format!("{}@example.com", "a".repeat(60_000)),
        ] {
            assert!(normalise_email(bad).is_err(), "{bad:?}");
        }
    }
}
