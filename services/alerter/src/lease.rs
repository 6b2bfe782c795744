//! Leadership: exactly one alerter replica evaluates at a time.
//!
//! The leader holds a PostgreSQL session advisory lock on a connection of its own. If the
//! process dies, its connection closes and PostgreSQL releases the lock at once; a standby,
//! polling `pg_try_advisory_lock`, takes over within a poll interval. A leader that loses its
//! connection steps down as soon as its next health check fails, and the fencing epoch in
//! `alerter_progress` stops it from committing anything meanwhile.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use flick_shared::shutdown::CancellationToken;

/// A held lease: the connection that holds the advisory lock.
#[derive(Debug)]
pub struct Lease {
    conn: PgConnection,
}

const LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended('flick-alerter:' || $1, 0))";

/// Waits until this replica holds the lease for `stream`, or `shutdown` (then `None`).
pub async fn acquire(
    options: &PgConnectOptions,
    stream: &str,
    poll: Duration,
    shutdown: &CancellationToken,
) -> Option<Lease> {
    let mut announced = false;
    loop {
        match try_acquire(options, stream).await {
            Ok(Some(lease)) => return Some(lease),
            Ok(None) => {
                if !announced {
                    tracing::info!("Standing by: another alerter replica holds the lease");
                    announced = true;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "Cannot reach PostgreSQL to take the lease; retrying")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(poll) => {}
        }
    }
}

async fn try_acquire(
    options: &PgConnectOptions,
    stream: &str,
) -> Result<Option<Lease>, sqlx::Error> {
    let mut conn = options
        .clone()
        .application_name("flick-alerter-lease")
        .connect()
        .await?;
    let held: bool = sqlx::query_scalar(LOCK)
        .bind(stream)
        .fetch_one(&mut conn)
        .await?;
    if held {
        Ok(Some(Lease { conn }))
    } else {
        conn.close().await?;
        Ok(None)
    }
}

impl Lease {
    /// Whether the lock is still ours: its connection still answers.
    pub async fn holds(&mut self) -> bool {
        matches!(
            tokio::time::timeout(Duration::from_secs(2), self.conn.ping()).await,
            Ok(Ok(()))
        )
    }

    /// Gives the lease up (closing the connection releases the lock).
    pub async fn release(self) {
        let _ = self.conn.close().await;
    }
}
