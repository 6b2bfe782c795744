//! Keyset pagination: a page ends with an opaque cursor naming its last row (time and id), and
//! the next page starts strictly after it, so pages neither skip nor repeat rows while new ones
//! arrive.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

pub fn encode(at: DateTime<Utc>, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}|{id}", at.to_rfc3339()))
}

pub fn decode(cursor: &str) -> ApiResult<(DateTime<Utc>, String)> {
    let invalid = || ApiError::unprocessable("cursor is not one this API returned");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (at, id) = text.split_once('|').ok_or_else(invalid)?;
    let at = DateTime::parse_from_rfc3339(at)
        .map_err(|_| invalid())?
        .with_timezone(&Utc);
    Ok((at, id.to_owned()))
}

/// The position a `cursor` names, as query parameters (`None` without a cursor).
pub fn position(cursor: Option<&str>) -> ApiResult<(Option<DateTime<Utc>>, Option<Uuid>)> {
    let Some(cursor) = cursor else {
        return Ok((None, None));
    };
    let (at, id) = decode(cursor)?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::unprocessable("cursor is not one this API returned"))?;
    Ok((Some(at), Some(id)))
}

/// A page from up to `limit + 1` rows: the extra row only tells that there is a next page.
pub fn finish<T>(
    mut items: Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> (DateTime<Utc>, Uuid),
) -> Page<T> {
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(usize::try_from(limit).unwrap_or(0));
        items.last().map(|last| {
            let (at, id) = key(last);
            encode(at, &id.to_string())
        })
    } else {
        None
    };
    Page { items, next_cursor }
}

/// The page size: `limit` within 1..=MAX_LIMIT, default DEFAULT_LIMIT.
pub fn limit(limit: Option<i64>) -> ApiResult<i64> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::unprocessable(format!(
            "limit {n} is not in 1..={MAX_LIMIT}"
        ))),
    }
}

/// Optional RFC 3339 time of a query parameter.
pub fn time(name: &str, value: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::unprocessable(format!("{name} {v:?} is not an RFC 3339 time"))
                })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = Utc::now();
        let (back, id) = decode(&encode(at, "abc")).expect("decodes");
        assert_eq!(
            (back.timestamp_micros(), id.as_str()),
            (at.timestamp_micros(), "abc")
        );
        assert!(decode("not-a-cursor").is_err());
        assert!(limit(Some(0)).is_err() && limit(Some(501)).is_err());
        assert_eq!(limit(None).ok(), Some(DEFAULT_LIMIT));
    }
}
