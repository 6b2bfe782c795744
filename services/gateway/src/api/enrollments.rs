//! Enrolling hosts: a signed-in user creates a short-lived token (`/enrollments`); a host
//! presents it with the public key it generated (`/enroll`, no account needed: the token is the
//! authority) and receives its server id and its own NATS identity; `revoke-key` cuts a host
//! off.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use flick_shared::wire::ServerId;

use super::access::visible_server;
use super::servers::{check_name, check_tags};
use crate::audit;
use crate::auth::CurrentUser;
use crate::auth::tokens::{new_refresh_token, refresh_token_hash};
use crate::enrollment::{Registrar, is_user_key};
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::{AppState, ClientIp};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_enrollments, create_enrollment))
        .routes(routes!(delete_enrollment))
        .routes(routes!(enroll))
        .routes(routes!(hub_ca))
        .routes(routes!(revoke_key))
}

/// What every enrolment token starts with.
pub const ENROLLMENT_TOKEN_PREFIX: &str = "flick_enrol_";

/// The longest an enrolment token may live.
const MAX_TTL_SECS: u64 = 7 * 86_400;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewEnrollment {
    /// The enrolled server's name (default: the host's name).
    pub name: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Default 3600 (`enrollment.token_ttl_secs`), at most 604800.
    pub expires_in_secs: Option<u64>,
    /// How many hosts may enrol with it (default 1, at most 1000).
    pub uses: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Enrollment {
    pub id: Uuid,
    pub name: Option<String>,
    pub tags: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub uses_left: i32,
    pub created_at: DateTime<Utc>,
}

/// A new token: shown once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedEnrollment {
    #[serde(flatten)]
    pub enrollment: Enrollment,
    pub token: String,
    /// Run as root on the host: fetches `install.sh`, checks it against its SHA-256, and runs it
    /// (installs the collector as a systemd service, enrols and starts it).
    pub command: String,
    /// Only enrols (the collector already installed): `flick-collector enroll …`.
    pub enroll_command: String,
    /// `sha256:<hex>` of the hub's CA, which the host checks.
    pub ca_sha256: Option<String>,
    /// Where enrolled hosts will connect (`enrollment.nats_urls`): the dashboard warns when
    /// only this machine can reach them (`localhost`).
    pub nats_urls: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollRequest {
    pub token: String,
    /// The host's nkey public key (`U…`); its seed never leaves the host.
    pub public_key: String,
    pub hostname: Option<String>,
}

/// What a host needs to report: its server id and its NATS identity.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Enrolled {
    pub server_id: String,
    /// The user JWT for the host's key; with the host's seed it makes a `.creds` file.
    pub jwt: String,
    pub nats_urls: Vec<String>,
    /// The CA certificate (PEM) NATS's TLS certificate chains to.
    pub ca: Option<String>,
    pub prefix: String,
    /// The only inbox the host's user may read.
    pub inbox_prefix: String,
}

type TokenRow = (
    Uuid,
    Uuid,
    Option<String>,
    Vec<String>,
    DateTime<Utc>,
    i32,
    DateTime<Utc>,
);

fn enrollment_of(row: TokenRow) -> Enrollment {
    let (id, _owner, name, tags, expires_at, uses_left, created_at) = row;
    Enrollment {
        id,
        name,
        tags,
        expires_at,
        uses_left,
        created_at,
    }
}

fn registrar(state: &AppState) -> ApiResult<&Registrar> {
    state.registrar.as_deref().ok_or_else(|| {
        ApiError::Unavailable(
            "enrolment is not configured on this hub (its [enrollment] keys come from `flick init`)"
                .into(),
        )
    })
}

/// The hub's URL as the host should reach it.
fn hub_url(state: &AppState, registrar: &Registrar, headers: &HeaderMap) -> String {
    registrar
        .public_url
        .clone()
        .or_else(|| crate::http::own_origin(headers, &state.settings))
        .unwrap_or_else(|| "http://localhost:8080".into())
        .trim_end_matches('/')
        .to_owned()
}

/// Quotes `text` for a POSIX shell.
fn shell(text: &str) -> String {
    if text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:/=+@%,".contains(&b))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Creates an enrolment token owned by the caller: hosts enrolled with it are the caller's.
#[utoipa::path(post, path = "/enrollments", tag = "servers", security(("bearer" = [])), request_body = NewEnrollment,
    responses((status = 201, body = CreatedEnrollment), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, description = "Enrolment not configured", body = ErrorBody)))]
async fn create_enrollment(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewEnrollment>,
) -> ApiResult<(StatusCode, ApiJson<CreatedEnrollment>)> {
    let registrar = registrar(&state)?;
    let name = body.name.as_deref().map(check_name).transpose()?;
    let tags = check_tags(body.tags)?;
    let ttl = body.expires_in_secs.unwrap_or(state.enrollment_ttl_secs);
    if !(60..=MAX_TTL_SECS).contains(&ttl) {
        return Err(ApiError::unprocessable(format!(
            "expiresInSecs must be 60 to {MAX_TTL_SECS}"
        )));
    }
    let uses = body.uses.unwrap_or(1);
    if !(1..=1_000).contains(&uses) {
        return Err(ApiError::unprocessable("uses must be 1 to 1000"));
    }
    // A prefix of its own: recognisable (secret scanners, logs), and never starting with `-`,
    // which a command line would read as an option.
    let token = format!("{ENROLLMENT_TOKEN_PREFIX}{}", new_refresh_token()?);
    let row: TokenRow = sqlx::query_as(
        "INSERT INTO enrollment_tokens (id, token_hash, owner_id, name, tags, expires_at, uses_left)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6), $7)
         RETURNING id, owner_id, name, tags, expires_at, uses_left, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(refresh_token_hash(&token))
    .bind(user.id)
    .bind(&name)
    .bind(&tags)
    .bind(ttl as f64)
    .bind(i32::try_from(uses).unwrap_or(1))
    .fetch_one(&state.pool)
    .await?;
    let url = hub_url(&state, registrar, &headers);
    let fingerprint = registrar.ca_fingerprint.clone();
    let pin = fingerprint
        .as_deref()
        .map(|fp| format!(" --ca-sha256 {fp}"))
        .unwrap_or_default();
    let args = format!("--gateway {} --token {}{pin}", shell(&url), shell(&token));
    // The script is checked against the checksum shown here before it runs, so a hub whose
    // certificate the host does not trust yet (its own CA) is fetched with -k.
    let insecure = if url.starts_with("https://") { "k" } else { "" };
    let command = format!(
        "curl -fsSL{insecure} {}/install.sh -o flick-install.sh && echo '{}  flick-install.sh' | sha256sum -c - && sudo sh flick-install.sh {args}",
        shell(&url),
        state.downloads.installer_sha256
    );
    Ok((
        StatusCode::CREATED,
        ApiJson(CreatedEnrollment {
            enrollment: enrollment_of(row),
            command,
            enroll_command: format!("flick-collector enroll {args}"),
            ca_sha256: fingerprint,
            nats_urls: registrar.nats_urls.clone(),
            token,
        }),
    ))
}

/// The caller's enrolment tokens that can still be used (never the tokens themselves).
#[utoipa::path(get, path = "/enrollments", tag = "servers", security(("bearer" = [])),
    responses((status = 200, body = Vec<Enrollment>), (status = 401, body = ErrorBody)))]
async fn list_enrollments(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<ApiJson<Vec<Enrollment>>> {
    let rows: Vec<TokenRow> = sqlx::query_as(
        "SELECT id, owner_id, name, tags, expires_at, uses_left, created_at FROM enrollment_tokens
         WHERE owner_id = $1 AND uses_left > 0 AND expires_at > now() ORDER BY created_at DESC",
    )
    .bind(user.id)
    .fetch_all(&state.pool)
    .await?;
    Ok(ApiJson(rows.into_iter().map(enrollment_of).collect()))
}

/// Withdraws an enrolment token.
#[utoipa::path(delete, path = "/enrollments/{id}", tag = "servers", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Enrolment id")),
    responses((status = 204, description = "Withdrawn"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_enrollment(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("enrollment"))?;
    let deleted = sqlx::query("DELETE FROM enrollment_tokens WHERE id = $1 AND owner_id = $2")
        .bind(id)
        .bind(user.id)
        .execute(&state.pool)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(ApiError::NotFound("enrollment"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The hub's CA certificate (PEM): what NATS's certificate (and, behind the stack's front door,
/// the HTTPS one) chains to. Public, and fetched without trusting the connection: a host checks
/// it against the `--ca-sha256` of its install command, then trusts it for the enrolment.
#[utoipa::path(get, path = "/enroll/ca", tag = "servers",
    responses((status = 200, description = "The CA certificate", content_type = "application/x-pem-file"),
        (status = 404, description = "No CA configured", body = ErrorBody)))]
async fn hub_ca(State(state): State<AppState>) -> Response {
    match state.registrar.as_deref().and_then(|r| r.ca.clone()) {
        Some(pem) => ([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response(),
        None => ApiError::NotFound("CA").into_response(),
    }
}

/// A host enrols: with a valid token and its public key it gets its server id (the same again
/// while it stays enrolled) and a NATS identity for that server only.
#[utoipa::path(post, path = "/enroll", tag = "servers", request_body = EnrollRequest,
    responses((status = 200, body = Enrolled), (status = 400, body = ErrorBody),
        (status = 401, description = "Unknown, expired or used-up token", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, description = "Enrolment not configured", body = ErrorBody)))]
async fn enroll(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<EnrollRequest>,
) -> ApiResult<ApiJson<Enrolled>> {
    state.limits.check_enroll(ip)?;
    let registrar = registrar(&state)?;
    if !is_user_key(&body.public_key) {
        return Err(ApiError::unprocessable(
            "publicKey is not an nkey user public key (U…)",
        ));
    }
    let hostname = match body.hostname {
        Some(h) => {
            ApiError::storable("hostname", &h)?;
            Some(h.trim().chars().take(253).collect::<String>()).filter(|h| !h.is_empty())
        }
        None => None,
    };
    let mut tx = state.pool.begin().await?;
    let token: Option<TokenRow> = sqlx::query_as(
        "SELECT id, owner_id, name, tags, expires_at, uses_left, created_at FROM enrollment_tokens
             WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(refresh_token_hash(&body.token))
    .fetch_optional(&mut *tx)
    .await?;
    let Some((token_id, owner, name, tags, expires_at, uses_left, _)) = token else {
        return Err(ApiError::Unauthorized("unknown enrolment token".into()));
    };
    if expires_at <= Utc::now() {
        return Err(ApiError::Unauthorized(
            "this enrolment token has expired; create a new one".into(),
        ));
    }
    if uses_left <= 0 {
        return Err(ApiError::Unauthorized(
            "this enrolment token has been used; create a new one".into(),
        ));
    }
    // The same host (key) still enrolled for a server of this owner keeps its server.
    let existing: Option<String> = sqlx::query_scalar(
        "SELECT k.server_id FROM host_keys k JOIN servers s ON s.id = k.server_id
         WHERE k.public_key = $1 AND k.revoked_at IS NULL AND s.owner_id = $2
         ORDER BY k.enrolled_at DESC LIMIT 1",
    )
    .bind(&body.public_key)
    .bind(owner)
    .fetch_optional(&mut *tx)
    .await?;
    let server_id = match existing {
        Some(id) => ServerId::parse(id).map_err(|err| ApiError::Internal(err.into()))?,
        None => {
            // A key enrolled elsewhere before (another owner, or revoked) starts afresh: its
            // other enrolments end, so one host key is one server.
            let moved = sqlx::query(
                "UPDATE host_keys SET revoked_at = now()
                 WHERE public_key = $1 AND revoked_at IS NULL",
            )
            .bind(&body.public_key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved > 0 {
                registrar.revoked();
            }
            let id = ServerId::parse(Uuid::new_v4().to_string())
                .map_err(|err| ApiError::Internal(err.into()))?;
            let display = name
                .clone()
                .or_else(|| hostname.clone())
                .unwrap_or_else(|| id.to_string());
            sqlx::query(
                "INSERT INTO servers (id, name, hostname, owner_id, tags, origin)
                 VALUES ($1, $2, $3, $4, $5, 'enrolled')",
            )
            .bind(id.as_str())
            .bind(&display)
            .bind(&hostname)
            .bind(owner)
            .bind(&tags)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO host_keys (id, public_key, server_id) VALUES ($1, $2, $3)")
                .bind(Uuid::new_v4())
                .bind(&body.public_key)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            id
        }
    };
    let revoked_before: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT max(revoked_at) FROM host_keys WHERE public_key = $1")
            .bind(&body.public_key)
            .fetch_one(&mut *tx)
            .await?;
    sqlx::query("UPDATE enrollment_tokens SET uses_left = uses_left - 1 WHERE id = $1")
        .bind(token_id)
        .execute(&mut *tx)
        .await?;
    let jwt = registrar
        .host_jwt(&body.public_key, &server_id, revoked_before)
        .map_err(ApiError::Internal)?;
    tx.commit().await?;
    audit::record(
        &state.pool,
        Some(owner),
        "host_enrolled",
        Some(server_id.as_str()),
        Some(ip),
        serde_json::json!({ "publicKey": body.public_key, "hostname": hostname }),
    )
    .await;
    Ok(ApiJson(Enrolled {
        server_id: server_id.to_string(),
        jwt,
        nats_urls: registrar.nats_urls.clone(),
        ca: registrar.ca.clone(),
        prefix: registrar.subjects().prefix().to_owned(),
        inbox_prefix: flick_shared::natsauth::roles::host_inbox_prefix(&server_id),
    }))
}

/// Revokes every key enrolled for the server `server`, in `tx`; how many.
pub async fn revoke_keys(tx: &mut sqlx::PgConnection, server: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE host_keys SET revoked_at = now() WHERE server_id = $1 AND revoked_at IS NULL",
    )
    .bind(server)
    .execute(&mut *tx)
    .await?
    .rows_affected())
}

/// Cuts the server's host off: its NATS identity is revoked (its connection closes at once and
/// cannot be made again). The server and its data stay; enrol the host again with a new token.
#[utoipa::path(post, path = "/servers/{id}/revoke-key", tag = "servers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Server id")),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_key(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let server = visible_server(&state, &user, &id).await?;
    let mut tx = state.pool.begin().await?;
    let revoked = revoke_keys(&mut tx, &server.id).await?;
    tx.commit().await?;
    if revoked > 0
        && let Some(registrar) = &state.registrar
    {
        registrar.revoked();
    }
    audit::record(
        &state.pool,
        Some(user.id),
        "host_key_revoked",
        Some(&server.id),
        Some(ip),
        serde_json::json!({ "keys": revoked }),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
