//! Notification channels from `notification_channels`, their secrets opened with the key ring.

use uuid::Uuid;

use flick_shared::crypto::KeyRing;

use crate::store::Store;

/// A webhook ready to be called: secrets decrypted, held only in memory.
#[derive(Clone)]
pub struct Channel {
    pub id: Uuid,
    pub name: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub signing_secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("url", &self.url)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

type ChannelRow = (Uuid, String, String, Option<Vec<u8>>, Option<Vec<u8>>);

/// The enabled webhook channels. A channel whose secrets cannot be opened (no key configured,
/// wrong key, tampered ciphertext) is left out with an error naming it.
pub async fn load(store: &Store, keys: Option<&KeyRing>) -> Result<Vec<Channel>, sqlx::Error> {
    let rows: Vec<ChannelRow> = sqlx::query_as(
        "SELECT id, name, url, secret_headers, signing_secret FROM notification_channels
         WHERE enabled AND kind = 'webhook' ORDER BY created_at",
    )
    .fetch_all(store.pool())
    .await?;
    let mut channels = Vec::with_capacity(rows.len());
    for (id, name, url, sealed_headers, sealed_secret) in rows {
        match open(
            keys,
            id,
            sealed_headers.as_deref(),
            sealed_secret.as_deref(),
        ) {
            Ok((headers, signing_secret)) => channels.push(Channel {
                id,
                name,
                url,
                headers,
                signing_secret,
            }),
            Err(reason) => {
                tracing::error!(channel = %name, %id, reason, "Notification channel skipped: its secrets cannot be opened");
            }
        }
    }
    Ok(channels)
}

type Opened = (Vec<(String, String)>, Option<Vec<u8>>);

fn open(
    keys: Option<&KeyRing>,
    id: Uuid,
    headers: Option<&[u8]>,
    secret: Option<&[u8]>,
) -> Result<Opened, String> {
    if headers.is_none() && secret.is_none() {
        return Ok((Vec::new(), None));
    }
    let keys = keys.ok_or("no encryption key is configured (ENCRYPTION_KEY)")?;
    let aad = id.as_bytes();
    let headers = match headers {
        Some(sealed) => {
            let plain = keys.open(aad, sealed).map_err(|err| err.to_string())?;
            let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&plain)
                .map_err(|err| format!("secret headers are not a JSON object: {err}"))?;
            map.into_iter()
                .filter_map(|(name, value)| Some((name, value.as_str()?.to_owned())))
                .collect()
        }
        None => Vec::new(),
    };
    let secret = match secret {
        Some(sealed) => Some(keys.open(aad, sealed).map_err(|err| err.to_string())?),
        None => None,
    };
    Ok((headers, secret))
}
