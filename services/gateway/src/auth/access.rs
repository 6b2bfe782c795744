//! Whether a valid token's account and session still stand, and the account's role now.
//!
//! A signature proves only that this gateway issued the token: the account may have been
//! deleted, disabled or demoted since, and the session logged out or revoked by a reused refresh
//! token. Each request therefore checks its (account, session) against the database, with the
//! answer cached for `gateway.access_cache_ms` (2 s) so a busy client costs one query per
//! period. Every gateway also listens on PostgreSQL's `flick_access` channel (triggers on
//! `users`, `sessions` and `servers`, so a change made by hand counts too) and forgets a cached
//! answer the moment it changes; the cache period bounds staleness when that listener is down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::time::Instant;
use uuid::Uuid;

use flick_shared::backoff::Backoff;
use flick_shared::shutdown::CancellationToken;
use flick_shared::wire::ServerId;

use super::Role;
use crate::error::ApiError;

/// The channel the triggers of the `sessions` migration notify.
pub const CHANNEL: &str = "flick_access";

#[derive(Debug, Clone, Copy)]
struct Entry {
    checked_at: Instant,
    /// `None`: refused (no such account or session, disabled, logged out).
    role: Option<Role>,
}

/// The cache of account and session checks.
#[derive(Debug)]
pub struct Access {
    entries: Mutex<HashMap<(Uuid, Uuid), Entry>>,
    ttl: Duration,
}

/// What a `flick_access` notification names.
#[derive(Debug, Deserialize)]
pub struct Change {
    pub user: Option<Uuid>,
    pub session: Option<Uuid>,
    pub server: Option<String>,
}

impl Access {
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, Uuid), Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The role of `user` if the account exists, is enabled and `session` is open: 401 if not,
    /// 503 if the database cannot tell.
    pub async fn check(&self, pool: &PgPool, user: Uuid, session: Uuid) -> Result<Role, ApiError> {
        let cached = self
            .lock()
            .get(&(user, session))
            .copied()
            .filter(|entry| entry.checked_at.elapsed() < self.ttl);
        let role = match cached {
            Some(entry) => entry.role,
            None => {
                let role = lookup(pool, user, session).await.map_err(|err| {
                    tracing::warn!(error = %err, "Cannot check a session");
                    ApiError::Unavailable("cannot check the session now; retry".into())
                })?;
                self.lock().insert(
                    (user, session),
                    Entry {
                        checked_at: Instant::now(),
                        role,
                    },
                );
                role
            }
        };
        role.ok_or_else(|| {
            ApiError::Unauthorized("the session has ended or the account is disabled".into())
        })
    }

    /// Forgets what is cached about what `change` names.
    pub fn forget(&self, change: &Change) {
        let mut entries = self.lock();
        match (change.user, change.session) {
            (_, Some(session)) => entries.retain(|(_, s), _| *s != session),
            (Some(user), None) => entries.retain(|(u, _), _| *u != user),
            (None, None) => {}
        }
    }

    /// Forgets everything (notifications may have been missed).
    pub fn forget_all(&self) {
        self.lock().clear();
    }

    /// Drops expired entries (bounded memory).
    pub fn sweep(&self) {
        let ttl = self.ttl;
        self.lock()
            .retain(|_, entry| entry.checked_at.elapsed() < ttl);
    }
}

async fn lookup(pool: &PgPool, user: Uuid, session: Uuid) -> Result<Option<Role>, sqlx::Error> {
    let row: Option<(String, bool)> = sqlx::query_as(
        "SELECT u.role, u.disabled_at IS NULL AND s.revoked_at IS NULL
         FROM users u JOIN sessions s ON s.user_id = u.id
         WHERE u.id = $1 AND s.id = $2",
    )
    .bind(user)
    .bind(session)
    .fetch_optional(pool)
    .await?;
    Ok(row
        .filter(|(_, active)| *active)
        .and_then(|(role, _)| Role::parse(&role)))
}

/// Where `flick_access` notifications go besides the cache: the live connections.
pub trait OnChange: Send + Sync + 'static {
    fn user_changed(&self, user: Uuid);
    fn server_changed(&self, server: &ServerId);
    /// Notifications may have been missed: re-check what depends on them.
    fn missed(&self);
}

/// Listens on `flick_access` until `shutdown`, reconnecting with backoff.
pub async fn listen(
    pool: PgPool,
    access: Arc<Access>,
    on_change: Arc<dyn OnChange>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    while !shutdown.is_cancelled() {
        let mut listener = match connect(&pool).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "Cannot listen for session changes; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff.next_delay()) => continue,
                }
            }
        };
        backoff.reset();
        // Changes made while nobody listened are unknown: start from nothing.
        access.forget_all();
        on_change.missed();
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return,
                next = listener.try_recv() => next,
            };
            match next {
                Ok(Some(notification)) => {
                    match serde_json::from_str::<Change>(notification.payload()) {
                        Ok(change) => {
                            access.forget(&change);
                            if let Some(user) = change.user {
                                on_change.user_changed(user);
                            }
                            if let Some(server) =
                                change.server.and_then(|id| ServerId::parse(id).ok())
                            {
                                on_change.server_changed(&server);
                            }
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "Unreadable session change notification");
                        }
                    }
                }
                // The connection was lost; `try_recv` reconnects on the next call.
                Ok(None) => {
                    access.forget_all();
                    on_change.missed();
                }
                Err(err) => {
                    tracing::warn!(error = %err, "Lost the session change listener; reconnecting");
                    break;
                }
            }
        }
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
