//! Heavy queries (metric history): bounded per user and overall, and cancelled in PostgreSQL
//! when their request goes away.
//!
//! One user's 30 concurrent 30-day history requests once filled the whole pool: other users'
//! requests timed out and 11 queries kept running after their requests had ended. Now a user may
//! run `gateway.history_per_user` at once (429 beyond), all users together
//! `gateway.history_concurrency` (half the pool by default, so the other half always serves
//! everything else; a request waits briefly for a slot, then 503), each query is bounded by
//! `statement_timeout`, and a query whose request is dropped (client gone, request time limit)
//! has its connection closed: PostgreSQL notices within `client_connection_check_interval`
//! and stops it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Postgres};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// How long a heavy query waits for one of the shared slots before 503.
const SLOT_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Gate {
    per_user: Arc<Mutex<HashMap<Uuid, usize>>>,
    max_per_user: usize,
    slots: Arc<Semaphore>,
}

/// A heavy query's place: released when dropped.
#[derive(Debug)]
pub struct Admission {
    per_user: Arc<Mutex<HashMap<Uuid, usize>>>,
    user: Uuid,
    /// `None` while waiting for a shared slot (the user's count already includes it).
    slot: Option<OwnedSemaphorePermit>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut per_user = self.per_user.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = per_user.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                per_user.remove(&self.user);
            }
        }
    }
}

impl Gate {
    /// `concurrency` 0 means half of `pool_size` (at least 1).
    pub fn new(max_per_user: usize, concurrency: usize, pool_size: u32) -> Self {
        let concurrency = if concurrency == 0 {
            usize::try_from(pool_size / 2).unwrap_or(1).max(1)
        } else {
            concurrency
        };
        Self {
            per_user: Arc::new(Mutex::new(HashMap::new())),
            max_per_user,
            slots: Arc::new(Semaphore::new(concurrency)),
        }
    }

    /// A place for one heavy query of `user`: 429 when the user already runs their share, 503
    /// when every shared slot stays taken for a while.
    pub async fn admit(&self, user: Uuid) -> ApiResult<Admission> {
        {
            let mut per_user = self.per_user.lock().unwrap_or_else(|p| p.into_inner());
            let count = per_user.entry(user).or_default();
            if *count >= self.max_per_user {
                metrics::counter!("flick_gateway_heavy_refused_total", "reason" => "per_user")
                    .increment(1);
                return Err(ApiError::RateLimited {
                    retry_after_secs: 1,
                });
            }
            *count += 1;
        }
        // Counted before waiting, so a user's queued requests count against their share too;
        // dropping the admission (also half-way) gives the place back.
        let mut admission = Admission {
            per_user: self.per_user.clone(),
            user,
            slot: None,
        };
        let slot = tokio::time::timeout(SLOT_WAIT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| {
                metrics::counter!("flick_gateway_heavy_refused_total", "reason" => "busy")
                    .increment(1);
                ApiError::Busy {
                    message: "too many history queries at once; retry shortly".into(),
                    retry_after_secs: 2,
                }
            })?
            .map_err(|err| ApiError::Internal(err.into()))?;
        admission.slot = Some(slot);
        Ok(admission)
    }
}

/// A connection that is closed, not returned to the pool, if its query is abandoned (the
/// request dropped, the query failed): PostgreSQL then stops the query, and no half-read
/// result or open transaction reaches another request. [`Cancellable::finish`] returns it.
#[derive(Debug)]
pub struct Cancellable {
    connection: Option<PoolConnection<Postgres>>,
}

impl Cancellable {
    pub async fn acquire(pool: &PgPool) -> ApiResult<Self> {
        Ok(Self {
            connection: Some(pool.acquire().await?),
        })
    }

    pub fn get(&mut self) -> ApiResult<&mut PgConnection> {
        self.connection
            .as_deref_mut()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("connection taken")))
    }

    /// Finished: back to the pool as usual.
    pub fn finish(mut self) {
        drop(self.connection.take());
    }
}

impl Drop for Cancellable {
    fn drop(&mut self) {
        if let Some(mut connection) = self.connection.take() {
            connection.close_on_drop();
        }
    }
}

/// Runs `query` on a connection of its own; if the caller stops waiting (the request is
/// dropped), the connection is closed and PostgreSQL stops the query.
pub async fn fetch_all<'q>(
    pool: &PgPool,
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
) -> ApiResult<Vec<PgRow>> {
    let mut connection = Cancellable::acquire(pool).await?;
    let rows = query.fetch_all(connection.get()?).await?;
    connection.finish();
    Ok(rows)
}

/// Like [`fetch_all`], but hands each row to `each` as it arrives instead of collecting them,
/// so a long replay (the threshold preview) holds one row at a time. Returns the rows seen;
/// `each` may stop the query early by failing.
pub async fn for_each_row<'q>(
    pool: &PgPool,
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    mut each: impl FnMut(PgRow) -> ApiResult<()>,
) -> ApiResult<u64> {
    use futures::TryStreamExt as _;
    let mut connection = Cancellable::acquire(pool).await?;
    let mut seen = 0u64;
    {
        let mut rows = query.fetch(connection.get()?);
        while let Some(row) = rows.try_next().await? {
            seen += 1;
            each(row)?;
        }
    }
    connection.finish();
    Ok(seen)
}
