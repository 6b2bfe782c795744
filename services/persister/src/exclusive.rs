//! What the retention sweep and the purge of deleted servers share: one replica at a time (a
//! session advisory lock on a connection of its own; the others skip that round), and deletes
//! in statements of bounded size, so no statement holds locks for long.

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgConnection, PgPool, Postgres};

/// A connection holding a session advisory lock. Call [`Exclusive::release`]; if it is dropped
/// instead (a panic), the connection is closed, which releases the lock too.
#[derive(Debug)]
pub struct Exclusive {
    conn: PoolConnection<Postgres>,
    key: i64,
    released: bool,
}

impl Exclusive {
    /// The lock `key`, or `None` when another replica holds it.
    pub async fn try_take(pool: &PgPool, key: i64) -> Result<Option<Self>, sqlx::Error> {
        let mut conn = pool.acquire().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
        Ok(locked.then_some(Self {
            conn,
            key,
            released: false,
        }))
    }

    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Releases the lock, returning the connection to the pool.
    pub async fn release(mut self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(self.key)
            .execute(&mut *self.conn)
            .await?;
        self.released = true;
        Ok(())
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        if !self.released {
            self.conn.close_on_drop();
        }
    }
}

/// Runs the statement `query()` makes (one removing at most `batch` rows) until one removes
/// fewer: the rows removed in all.
pub async fn in_batches<'q>(
    conn: &mut PgConnection,
    batch: i64,
    query: impl Fn() -> Query<'q, Postgres, PgArguments>,
) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let deleted = query().execute(&mut *conn).await?.rows_affected();
        total += deleted;
        if deleted < u64::try_from(batch).unwrap_or(0) {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}
