//! `/servers`: the fleet, each server's detail, its sealed credentials, its owner.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use flick_shared::wire::ServerId;

use super::access::{ServerRow, double_option, visible_server};
use crate::audit;
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::{AppState, ClientIp};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_servers, create_server))
        .routes(routes!(get_server, update_server, delete_server))
        .routes(routes!(get_credentials))
        .routes(routes!(assign_owner))
}

/// Longest stored credentials object (JSON bytes).
const MAX_CREDENTIALS_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A sample arrived within `gateway.offline_after_secs`.
    Online,
    Offline,
    /// Never reported.
    Unknown,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Server {
    pub id: String,
    pub name: String,
    pub hostname: Option<String>,
    /// `null`: discovered by the persister, visible to admins only until assigned.
    pub owner_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub status: Status,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Whether credentials are stored (they are only returned by `/servers/{id}/credentials`).
    pub has_credentials: bool,
    /// `registered` (created with POST /servers), `enrolled` (a host enrolled with a token) or
    /// `discovered` (samples arrived from a service identity or an integration; admins only).
    pub origin: String,
}

/// The newest stored sample of a server.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct LatestSample {
    pub timestamp: DateTime<Utc>,
    pub cpu_usage: f32,
    pub memory_usage: f32,
    pub disk_usage: f32,
    pub network_usage: i64,
    pub network_rx: Option<i64>,
    pub network_tx: Option<i64>,
    pub load1: Option<f32>,
    pub load5: Option<f32>,
    pub load15: Option<f32>,
    pub memory_used: Option<i64>,
    pub memory_total: Option<i64>,
    pub swap_used: Option<i64>,
    pub swap_total: Option<i64>,
    pub disk_read: Option<i64>,
    pub disk_write: Option<i64>,
    pub uptime_secs: Option<i64>,
    pub processes: Option<i32>,
    pub cpu_cores: Option<Vec<f32>>,
    #[schema(value_type = Option<Object>)]
    pub mounts: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub interfaces: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerDetail {
    #[serde(flatten)]
    pub server: Server,
    pub latest: Option<LatestSample>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewServer {
    /// The id its collector uses (`FLICK_SERVER_ID`); a random UUID when absent.
    pub id: Option<String>,
    pub name: String,
    pub hostname: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Any JSON object (SSH user, API token, …), sealed at rest.
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerChanges {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub hostname: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    /// An object replaces the credentials; `null` removes them.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<Option<serde_json::Value>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    #[schema(value_type = Object)]
    pub credentials: serde_json::Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OwnerChange {
    /// The new owner; `null` makes the server unassigned (admins only).
    pub owner_id: Option<Uuid>,
}

fn status_of(last_seen: Option<DateTime<Utc>>, offline_after_secs: u64) -> Status {
    match last_seen {
        None => Status::Unknown,
        Some(at)
            if Utc::now() - at
                <= chrono::Duration::seconds(i64::try_from(offline_after_secs).unwrap_or(30)) =>
        {
            Status::Online
        }
        Some(_) => Status::Offline,
    }
}

pub fn server_of(row: ServerRow, offline_after_secs: u64) -> Server {
    Server {
        status: status_of(row.last_seen_at, offline_after_secs),
        id: row.id,
        name: row.name,
        hostname: row.hostname,
        owner_id: row.owner_id,
        tags: row.tags,
        last_seen_at: row.last_seen_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
        has_credentials: row.has_credentials,
        origin: row.origin,
    }
}

pub(crate) fn check_name(name: &str) -> ApiResult<String> {
    ApiError::storable("name", name)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::unprocessable("name must be 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

fn check_hostname(hostname: Option<String>) -> ApiResult<Option<String>> {
    if let Some(hostname) = &hostname {
        ApiError::storable("hostname", hostname)?;
    }
    match hostname.map(|h| h.trim().to_owned()) {
        Some(h) if h.is_empty() => Ok(None),
        Some(h) if h.len() > 253 => Err(ApiError::unprocessable(
            "hostname must be at most 253 characters",
        )),
        other => Ok(other),
    }
}

pub(crate) fn check_tags(tags: Vec<String>) -> ApiResult<Vec<String>> {
    if tags.len() > 20 {
        return Err(ApiError::unprocessable("at most 20 tags"));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        ApiError::storable("tags", &tag)?;
        let tag = tag.trim().to_owned();
        if tag.is_empty() || tag.chars().count() > 50 {
            return Err(ApiError::unprocessable(
                "each tag must be 1 to 50 characters",
            ));
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

/// Seals a credentials object with the server id as associated data.
fn seal_credentials(
    state: &AppState,
    id: &str,
    credentials: &serde_json::Value,
) -> ApiResult<Vec<u8>> {
    if !credentials.is_object() {
        return Err(ApiError::unprocessable("credentials must be a JSON object"));
    }
    let plain = serde_json::to_vec(credentials).map_err(|err| ApiError::Internal(err.into()))?;
    if plain.len() > MAX_CREDENTIALS_BYTES {
        return Err(ApiError::unprocessable(format!(
            "credentials must be at most {MAX_CREDENTIALS_BYTES} bytes"
        )));
    }
    state
        .keys
        .seal(id.as_bytes(), &plain)
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("seal credentials: {err}")))
}

/// The one answer for an id the caller may not take, whatever the reason (someone else's
/// server, a discovered one, one deleted by another owner, data stored under it): it says the id
/// is taken, which any refusal must, and nothing about whose or why.
fn unavailable(id: &ServerId) -> ApiError {
    ApiError::Conflict(format!(
        "server id {id} is not available; choose another, or leave id out for a random one"
    ))
}

/// Whether `user` may create a server under the id they chose. Server ids are one namespace
/// shared with the collectors (`FLICK_SERVER_ID`), so an id that carries data or belonged to
/// another owner must not be taken over: its new owner would read the old owner's history, or
/// receive a live stream that is not theirs.
async fn claimable(state: &AppState, user: &CurrentUser, id: &ServerId) -> ApiResult<()> {
    // `Some(owner)`: a row exists (owner `None`: discovered / deleted while discovered).
    let current: Option<Option<Uuid>> =
        sqlx::query_scalar("SELECT owner_id FROM servers WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&state.pool)
            .await?;
    if let Some(owner) = current {
        return Err(match owner {
            Some(owner) if owner == user.id => {
                ApiError::Conflict(format!("you already have a server with id {id}"))
            }
            None if user.is_admin() => ApiError::Conflict(format!(
                "a discovered server has id {id}: give it an owner with PUT /servers/{id}/owner"
            )),
            _ => unavailable(id),
        });
    }
    let deleted: Option<Option<Uuid>> =
        sqlx::query_scalar("SELECT owner_id FROM server_tombstones WHERE server_id = $1")
            .bind(id.as_str())
            .fetch_optional(&state.pool)
            .await?;
    match deleted {
        // Deleted by its owner, who may take it again (what is left of it is theirs).
        Some(Some(previous)) if previous == user.id => return Ok(()),
        Some(_) => return Err(unavailable(id)),
        None => {}
    }
    let has_data: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM metrics WHERE server_id = $1)
             OR EXISTS (SELECT 1 FROM logs WHERE server_id = $1)
             OR EXISTS (SELECT 1 FROM alerts WHERE server_id = $1)",
    )
    .bind(id.as_str())
    .fetch_one(&state.pool)
    .await?;
    if has_data {
        Err(unavailable(id))
    } else {
        Ok(())
    }
}

/// The servers the caller may see: their own; an admin sees all, including discovered ones.
#[utoipa::path(get, path = "/servers", tag = "servers", security(("bearer" = [])),
    responses((status = 200, body = Vec<Server>), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn list_servers(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<ApiJson<Vec<Server>>> {
    Ok(ApiJson(visible_servers(&state, &user).await?))
}

/// The servers `user` may see, by name: the list of `GET /servers` and of a live fleet
/// subscription.
pub async fn visible_servers(
    state: &AppState,
    user: &CurrentUser,
) -> Result<Vec<Server>, sqlx::Error> {
    let rows: Vec<ServerRow> = sqlx::query_as(
        "SELECT id, name, hostname, owner_id, tags, created_at, updated_at, last_seen_at,
                credentials IS NOT NULL AS has_credentials, origin
         FROM servers WHERE $1 OR owner_id = $2 ORDER BY name, id",
    )
    .bind(user.is_admin())
    .bind(user.id)
    .fetch_all(&state.pool)
    .await?;
    let offline_after = state.settings.offline_after_secs;
    Ok(rows
        .into_iter()
        .map(|row| server_of(row, offline_after))
        .collect())
}

/// Registers a server owned by the caller.
#[utoipa::path(post, path = "/servers", tag = "servers", security(("bearer" = [])), request_body = NewServer,
    responses((status = 201, body = Server), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "The id is not available (taken, discovered, deleted by another owner, or carrying data)", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_server(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<NewServer>,
) -> ApiResult<(StatusCode, ApiJson<Server>)> {
    let chosen = body.id.is_some();
    let id = match body.id {
        Some(id) => ServerId::parse(id).map_err(|err| ApiError::unprocessable(err.to_string()))?,
        None => ServerId::parse(Uuid::new_v4().to_string())
            .map_err(|err| ApiError::Internal(err.into()))?,
    };
    let name = check_name(&body.name)?;
    let hostname = check_hostname(body.hostname)?;
    let tags = check_tags(body.tags)?;
    let credentials = body
        .credentials
        .filter(|c| !c.is_null())
        .map(|c| seal_credentials(&state, id.as_str(), &c))
        .transpose()?;
    if chosen {
        claimable(&state, &user, &id).await?;
    }
    let row: Option<ServerRow> = sqlx::query_as(
        "INSERT INTO servers (id, name, hostname, owner_id, tags, credentials, origin) VALUES ($1, $2, $3, $4, $5, $6, 'registered')
         ON CONFLICT (id) DO NOTHING
         RETURNING id, name, hostname, owner_id, tags, created_at, updated_at, last_seen_at,
                   credentials IS NOT NULL AS has_credentials, origin",
    )
    .bind(id.as_str())
    .bind(&name)
    .bind(&hostname)
    .bind(user.id)
    .bind(&tags)
    .bind(credentials)
    .fetch_optional(&state.pool)
    .await?;
    // Taken meanwhile (a collector's first sample, another request): the same refusal.
    let row = row.ok_or_else(|| unavailable(&id))?;
    audit::record(
        &state.pool,
        Some(user.id),
        "server_created",
        Some(id.as_str()),
        Some(ip),
        serde_json::json!({ "name": name }),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        ApiJson(server_of(row, state.settings.offline_after_secs)),
    ))
}

/// One server, with its status and newest sample.
#[utoipa::path(get, path = "/servers/{id}", tag = "servers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Server id")),
    responses((status = 200, body = ServerDetail), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_server(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<ServerDetail>> {
    let row = visible_server(&state, &user, &id).await?;
    let latest: Option<LatestSample> = sqlx::query_as(
        "SELECT ts AS timestamp, cpu AS cpu_usage, memory AS memory_usage, disk AS disk_usage,
                network AS network_usage, network_rx, network_tx, load1, load5, load15, memory_used,
                memory_total, swap_used, swap_total, disk_read, disk_write, uptime_secs, processes,
                cpu_cores, mounts::jsonb AS mounts, interfaces::jsonb AS interfaces
         FROM metrics WHERE server_id = $1 ORDER BY ts DESC LIMIT 1",
    )
    .bind(&row.id)
    .fetch_optional(&state.pool)
    .await?;
    Ok(ApiJson(ServerDetail {
        server: server_of(row, state.settings.offline_after_secs),
        latest,
    }))
}

/// Changes a server's name, host name, tags or credentials.
#[utoipa::path(patch, path = "/servers/{id}", tag = "servers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Server id")), request_body = ServerChanges,
    responses((status = 200, body = Server), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_server(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ServerChanges>,
) -> ApiResult<ApiJson<Server>> {
    let current = visible_server(&state, &user, &id).await?;
    let name = body
        .name
        .as_deref()
        .map(check_name)
        .transpose()?
        .unwrap_or(current.name);
    let hostname = match body.hostname {
        Some(hostname) => check_hostname(hostname)?,
        None => current.hostname,
    };
    let tags = body
        .tags
        .map(check_tags)
        .transpose()?
        .unwrap_or(current.tags);
    let (set_credentials, credentials) = match &body.credentials {
        None => (false, None),
        Some(None) => (true, None),
        Some(Some(value)) => (true, Some(seal_credentials(&state, &current.id, value)?)),
    };
    let row: ServerRow = sqlx::query_as(
        "UPDATE servers SET name = $2, hostname = $3, tags = $4,
                credentials = CASE WHEN $5 THEN $6 ELSE credentials END, updated_at = now()
         WHERE id = $1
         RETURNING id, name, hostname, owner_id, tags, created_at, updated_at, last_seen_at,
                   credentials IS NOT NULL AS has_credentials, origin",
    )
    .bind(&current.id)
    .bind(&name)
    .bind(&hostname)
    .bind(&tags)
    .bind(set_credentials)
    .bind(credentials)
    .fetch_one(&state.pool)
    .await?;
    if set_credentials {
        audit::record(
            &state.pool,
            Some(user.id),
            "credentials_changed",
            Some(&current.id),
            Some(ip),
            serde_json::json!({}),
        )
        .await;
    }
    Ok(ApiJson(server_of(row, state.settings.offline_after_secs)))
}

/// Deletes a server with its alert rules at once; its samples, aggregates, alerts and logs
/// are removed in the background by the persister (bounded batches). The id stays reserved for
/// its owner: nobody else can create a server under it. A collector still reporting under this
/// id makes it reappear as a discovered server (without the old data).
#[utoipa::path(delete, path = "/servers/{id}", tag = "servers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Server id")),
    responses((status = 204, description = "Deleted; its data is being removed"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_server(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let server = visible_server(&state, &user, &id).await?;
    let mut tx = state.pool.begin().await?;
    sqlx::query("DELETE FROM alert_rules WHERE server_id = $1")
        .bind(&server.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM servers WHERE id = $1")
        .bind(&server.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO server_tombstones (server_id, owner_id, deleted_by) VALUES ($1, $2, $3)
         ON CONFLICT (server_id) DO UPDATE SET owner_id = EXCLUDED.owner_id,
             deleted_by = EXCLUDED.deleted_by, deleted_at = now(), purged_at = NULL",
    )
    .bind(&server.id)
    .bind(server.owner_id)
    .bind(user.id)
    .execute(&mut *tx)
    .await?;
    // An enrolled host loses its NATS identity with its server.
    let revoked = super::enrollments::revoke_keys(&mut tx, &server.id).await?;
    tx.commit().await?;
    if revoked > 0
        && let Some(registrar) = &state.registrar
    {
        registrar.revoked();
    }
    audit::record(
        &state.pool,
        Some(user.id),
        "server_deleted",
        Some(&server.id),
        Some(ip),
        serde_json::json!({ "name": server.name }),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The server's credentials, decrypted, for its owner or an admin. Every read is audited.
#[utoipa::path(get, path = "/servers/{id}/credentials", tag = "servers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Server id")),
    responses((status = 200, body = Credentials), (status = 401, body = ErrorBody),
        (status = 404, description = "No such server, or no credentials stored", body = ErrorBody)))]
async fn get_credentials(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<Credentials>> {
    let server = visible_server(&state, &user, &id).await?;
    let sealed: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT credentials FROM servers WHERE id = $1")
            .bind(&server.id)
            .fetch_one(&state.pool)
            .await?;
    let sealed = sealed.ok_or(ApiError::NotFound("credentials"))?;
    let plain = state
        .keys
        .open(server.id.as_bytes(), &sealed)
        .map_err(|err| {
            ApiError::Internal(anyhow::anyhow!(
                "credentials of server {}: {err}",
                server.id
            ))
        })?;
    let credentials = serde_json::from_slice(&plain).map_err(|err| {
        ApiError::Internal(anyhow::anyhow!(
            "credentials of server {} are not JSON: {err}",
            server.id
        ))
    })?;
    audit::record(
        &state.pool,
        Some(user.id),
        "credentials_read",
        Some(&server.id),
        Some(ip),
        serde_json::json!({}),
    )
    .await;
    Ok(ApiJson(Credentials { credentials }))
}

/// Gives a server to a user, or takes it back (admins only).
#[utoipa::path(put, path = "/servers/{id}/owner", tag = "servers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Server id")), request_body = OwnerChange,
    responses((status = 200, body = Server), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, description = "No such user", body = ErrorBody)))]
async fn assign_owner(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<OwnerChange>,
) -> ApiResult<ApiJson<Server>> {
    // Visibility first: a server the caller cannot see is 404 even to the forbidden.
    let server = visible_server(&state, &user, &id).await?;
    user.require_admin()?;
    if let Some(owner) = body.owner_id {
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
            .bind(owner)
            .fetch_one(&state.pool)
            .await?;
        if !exists {
            return Err(ApiError::unprocessable("ownerId is not a user"));
        }
    }
    let row: ServerRow = sqlx::query_as(
        "UPDATE servers SET owner_id = $2, updated_at = now() WHERE id = $1
         RETURNING id, name, hostname, owner_id, tags, created_at, updated_at, last_seen_at,
                   credentials IS NOT NULL AS has_credentials, origin",
    )
    .bind(&server.id)
    .bind(body.owner_id)
    .fetch_one(&state.pool)
    .await?;
    audit::record(
        &state.pool,
        Some(user.id),
        "owner_assigned",
        Some(&server.id),
        Some(ip),
        serde_json::json!({ "owner": body.owner_id }),
    )
    .await;
    Ok(ApiJson(server_of(row, state.settings.offline_after_secs)))
}
