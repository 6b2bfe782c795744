//! Notification channels from `notification_channels`, their secrets opened with the key ring.

use uuid::Uuid;

use flick_shared::crypto::KeyRing;

use super::notice::{Channel, Kind, Route};
use crate::store::Store;

/// A channel and how often it repeats a still-firing incident.
#[derive(Debug, Clone)]
pub struct Entry {
    pub channel: Channel,
    pub repeat_every: Option<chrono::Duration>,
}

#[derive(sqlx::FromRow)]
struct ChannelRow {
    id: Uuid,
    name: String,
    kind: String,
    url: String,
    url_sealed: Option<Vec<u8>>,
    secret_headers: Option<Vec<u8>>,
    signing_secret: Option<Vec<u8>>,
    secret: Option<Vec<u8>>,
    settings: serde_json::Value,
    critical_only: bool,
    tags: Vec<String>,
    repeat_secs: Option<i32>,
}

/// The enabled channels. A channel whose secrets cannot be opened (no key configured, wrong
/// key, tampered ciphertext) is left out with an error naming it.
pub async fn load(store: &Store, keys: Option<&KeyRing>) -> Result<Vec<Entry>, sqlx::Error> {
    let rows: Vec<ChannelRow> = sqlx::query_as(
        "SELECT id, name, kind, url, url_sealed, secret_headers, signing_secret, secret, settings,
                critical_only, tags, repeat_secs
         FROM notification_channels WHERE enabled ORDER BY created_at, id",
    )
    .fetch_all(store.pool())
    .await?;
    let mut channels = Vec::with_capacity(rows.len());
    for row in rows {
        let (id, name) = (row.id, row.name.clone());
        let Some(kind) = Kind::parse(&row.kind) else {
            tracing::error!(channel = %name, %id, kind = row.kind, "Notification channel skipped: unknown kind");
            continue;
        };
        let opened = open(
            keys,
            id,
            row.secret_headers.as_deref(),
            row.signing_secret.as_deref(),
        )
        .and_then(|(headers, signing_secret)| {
            let secret = open_text(keys, id, row.secret.as_deref(), "secret")?;
            // A URL that is a credential (Slack, Discord, …) is called as sealed; `url` is
            // then only its shown form.
            let url = open_text(keys, id, row.url_sealed.as_deref(), "URL")?
                .unwrap_or_else(|| row.url.clone());
            Ok((headers, signing_secret, secret, url))
        });
        match opened {
            Ok((headers, signing_secret, secret, url)) => channels.push(Entry {
                channel: Channel {
                    id,
                    name,
                    kind,
                    url,
                    headers,
                    signing_secret,
                    secret,
                    settings: row.settings,
                    route: Route {
                        critical_only: row.critical_only,
                        tags: row.tags,
                    },
                },
                repeat_every: row
                    .repeat_secs
                    .map(|secs| chrono::Duration::seconds(i64::from(secs))),
            }),
            Err(reason) => {
                tracing::error!(channel = %name, %id, reason, "Notification channel skipped: its secrets cannot be opened");
            }
        }
    }
    Ok(channels)
}

/// A sealed column, opened: the one place that needs the key ring and says it is missing.
fn open_bytes(
    keys: Option<&KeyRing>,
    id: Uuid,
    sealed: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, String> {
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let keys = keys.ok_or("no encryption key is configured (ENCRYPTION_KEY)")?;
    keys.open(id.as_bytes(), sealed)
        .map(Some)
        .map_err(|err| err.to_string())
}

/// A sealed text column, opened.
fn open_text(
    keys: Option<&KeyRing>,
    id: Uuid,
    sealed: Option<&[u8]>,
    what: &str,
) -> Result<Option<String>, String> {
    open_bytes(keys, id, sealed)?
        .map(|plain| String::from_utf8(plain).map_err(|_| format!("the {what} is not UTF-8")))
        .transpose()
}

type Opened = (Vec<(String, String)>, Option<Vec<u8>>);

fn open(
    keys: Option<&KeyRing>,
    id: Uuid,
    headers: Option<&[u8]>,
    secret: Option<&[u8]>,
) -> Result<Opened, String> {
    let headers = match open_bytes(keys, id, headers)? {
        Some(plain) => {
            let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&plain)
                .map_err(|err| format!("secret headers are not a JSON object: {err}"))?;
            map.into_iter()
                .filter_map(|(name, value)| Some((name, value.as_str()?.to_owned())))
                .collect()
        }
        None => Vec::new(),
    };
    Ok((headers, open_bytes(keys, id, secret)?))
}
