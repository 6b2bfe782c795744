//! Who may see what: a user sees their own servers, an admin sees every server. A server the
//! caller may not see and a server that does not exist give the same 404.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use flick_shared::wire::ServerId;

use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// One `servers` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServerRow {
    pub id: String,
    pub name: String,
    pub hostname: Option<String>,
    pub owner_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub has_credentials: bool,
    /// `registered`, `enrolled` or `discovered`.
    pub origin: String,
}

/// The server `id` if the caller may see it.
pub async fn visible_server(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
) -> ApiResult<ServerRow> {
    let Ok(id) = ServerId::parse(id) else {
        return Err(ApiError::NotFound("server"));
    };
    let row: Option<ServerRow> = sqlx::query_as(
        "SELECT id, name, hostname, owner_id, tags, created_at, updated_at, last_seen_at,
                credentials IS NOT NULL AS has_credentials, origin
         FROM servers WHERE id = $1 AND ($2 OR owner_id = $3)",
    )
    .bind(id.as_str())
    .bind(user.is_admin())
    .bind(user.id)
    .fetch_optional(&state.pool)
    .await?;
    row.ok_or(ApiError::NotFound("server"))
}

/// For PATCH bodies: tells "absent" (`None`) from "null" (`Some(None)`).
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
