//! `/tokens`: a user's API tokens, for scrapers, scripts and CI. A token is shown once, when it
//! is created; the list shows what it is for, its scopes and its last use. Revoking one takes
//! effect at once on every gateway (`flick_access`). Only a signed-in session manages tokens
//! (`auth::api_token::needed`). An administrator also sees and revokes every user's tokens: a
//! leaked token must be stoppable without waiting for, or disabling, its owner.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::auth::access::Change;
use crate::auth::api_token::{self, Scope, Scopes};
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::{AppState, ClientIp};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// Live tokens a user may hold: enough for every scraper and script, bounded per account.
const MAX_PER_USER: i64 = 50;

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ApiToken {
    pub id: Uuid,
    pub name: String,
    /// The account the token acts as.
    pub owner_id: Uuid,
    pub owner_email: String,
    /// Of `read`, `write`, `write:logs`, `metrics:scrape`.
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// `null`: until revoked.
    pub expires_at: Option<DateTime<Utc>>,
    /// Recorded at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
    /// The token's first characters (`flk_1a2b3c4d…`), to tell which one a script holds.
    #[sqlx(skip)]
    pub hint: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    /// The token itself, `flk_<id>_<secret>`: shown this once, stored only hashed.
    pub token: String,
    #[serde(flatten)]
    pub info: ApiToken,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for (`prometheus`, `backup script`): unique among your live tokens.
    pub name: String,
    /// At least one of `read`, `write`, `write:logs`, `metrics:scrape`.
    #[schema(value_type = Vec<Scope>)]
    pub scopes: Vec<String>,
    /// When it stops working; `null` or absent: until revoked.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Of `api_tokens t` joined with its owner `users u`.
const COLUMNS: &str = "t.id, t.name, t.user_id AS owner_id, u.email AS owner_email, t.scopes, \
     t.created_at, t.expires_at, t.last_used_at, t.last_used_ip";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// `all`: every user's live tokens (administrators only). Absent: your own.
    pub owner: Option<String>,
}

fn with_hint(mut token: ApiToken) -> ApiToken {
    token.hint = api_token::hint(token.id);
    token
}

/// The caller's live API tokens (revoked ones are gone), newest first; with `owner=all`, an
/// administrator's view of every user's.
#[utoipa::path(get, path = "/tokens", tag = "auth", security(("bearer" = [])), params(TokenQuery),
    responses((status = 200, body = [ApiToken]), (status = 401, body = ErrorBody),
        (status = 403, description = "Called with an API token, or `owner=all` by a user who is not an administrator", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn list_tokens(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<TokenQuery>,
) -> ApiResult<ApiJson<Vec<ApiToken>>> {
    let everyone = match query.owner.as_deref() {
        None => false,
        Some("all") if user.is_admin() => true,
        Some("all") => {
            return Err(ApiError::Forbidden(
                "owner=all: only an administrator sees every user's tokens".into(),
            ));
        }
        Some(_) => return Err(ApiError::unprocessable("owner: `all` or absent")),
    };
    let rows: Vec<ApiToken> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE (t.user_id = $1 OR $2) AND t.revoked_at IS NULL
         ORDER BY t.created_at DESC, t.id"
    )))
    .bind(user.id)
    .bind(everyone)
    .fetch_all(&state.pool)
    .instrument(tracing::info_span!("list_tokens", user = %user.id, everyone))
    .await?;
    Ok(ApiJson(rows.into_iter().map(with_hint).collect()))
}

/// Creates an API token for the caller; the answer holds the token, shown this once.
#[utoipa::path(post, path = "/tokens", tag = "auth", security(("bearer" = [])), request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "Called with an API token", body = ErrorBody),
        (status = 409, description = "A live token of yours has this name, or you hold 50", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_token(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, ApiJson<CreatedToken>)> {
    let name = body.name.trim().to_owned();
    ApiError::storable("name", &name)?;
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::unprocessable("name: 1 to 100 characters"));
    }
    let scopes = Scopes::parse(&body.scopes)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            let names: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::unprocessable(format!("scopes: one or more of {}", names.join(", ")))
        })?;
    if body.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(ApiError::unprocessable("expiresAt: in the future"));
    }
    let minted = api_token::mint()?;
    let span = tracing::info_span!("create_token", user = %user.id, token = %minted.id);
    let mut tx = state.pool.begin().instrument(span.clone()).await?;
    // One creation at a time per user, so the bound below holds under concurrent requests.
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
        .bind(user.id)
        .execute(&mut *tx)
        .instrument(span.clone())
        .await?;
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user.id)
    .fetch_one(&mut *tx)
    .instrument(span.clone())
    .await?;
    if held >= MAX_PER_USER {
        return Err(ApiError::Conflict(format!(
            "you hold {MAX_PER_USER} API tokens already; revoke one first"
        )));
    }
    let inserted: Result<ApiToken, sqlx::Error> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH t AS (
             INSERT INTO api_tokens (id, user_id, name, scopes, secret_hash, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING *
         )
         SELECT {COLUMNS} FROM t JOIN users u ON u.id = t.user_id"
    )))
    .bind(minted.id)
    .bind(user.id)
    .bind(&name)
    .bind(scopes.names())
    .bind(minted.secret_hash.as_slice())
    .bind(body.expires_at)
    .fetch_one(&mut *tx)
    .instrument(span.clone())
    .await;
    let token = match inserted {
        Ok(token) => token,
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            return Err(ApiError::Conflict(format!(
                "you have a live API token named {name:?} already"
            )));
        }
        Err(err) => return Err(err.into()),
    };
    tx.commit().instrument(span).await?;
    crate::audit::record(
        &state.pool,
        Some(user.id),
        "api_token_created",
        Some(&token.id.to_string()),
        Some(ip),
        serde_json::json!({ "name": token.name, "scopes": token.scopes, "expiresAt": token.expires_at }),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        ApiJson(CreatedToken {
            token: minted.text,
            info: with_hint(token),
        }),
    ))
}

/// Revokes one of the caller's API tokens (an administrator: anyone's): refused from the next
/// request on, on every gateway.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Token id")),
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 403, description = "Called with an API token", body = ErrorBody),
        (status = 404, description = "No live token of yours (of anyone's, for an administrator) has this id", body = ErrorBody)))]
async fn revoke_token(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("token"))?;
    let owner: Uuid = sqlx::query_scalar(
        "UPDATE api_tokens SET revoked_at = now()
         WHERE id = $1 AND (user_id = $2 OR $3) AND revoked_at IS NULL
         RETURNING user_id",
    )
    .bind(id)
    .bind(user.id)
    .bind(user.is_admin())
    .fetch_optional(&state.pool)
    .instrument(tracing::info_span!("revoke_token", user = %user.id, token = %id))
    .await?
    .ok_or(ApiError::NotFound("token"))?;
    // This gateway forgets it now; the others when the trigger's notification reaches them.
    state.access.forget(&Change {
        token: Some(id),
        ..Change::default()
    });
    crate::audit::record(
        &state.pool,
        Some(user.id),
        "api_token_revoked",
        Some(&id.to_string()),
        Some(ip),
        serde_json::json!({ "owner": owner }),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
