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

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::time::Instant;
use uuid::Uuid;

use flick_shared::backoff::Backoff;
use flick_shared::shutdown::CancellationToken;
use flick_shared::wire::ServerId;

use super::Role;
use super::api_token::{self, Presented, Scopes};
use crate::error::ApiError;

/// The channel the triggers of the `sessions` migration notify.
pub const CHANNEL: &str = "flick_access";

/// The answers of one kind of check (sessions, API tokens), each kept for the cache period.
#[derive(Debug)]
struct Checks<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Copy + Eq + std::hash::Hash, V: Copy> Checks<K, V> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer for `key`: the cached one while younger than `ttl`, else `lookup`'s (kept);
    /// 503 naming `what` when the database cannot tell.
    async fn answer(
        &self,
        key: K,
        ttl: Duration,
        what: &str,
        lookup: impl Future<Output = Result<V, sqlx::Error>>,
    ) -> Result<V, ApiError> {
        let cached = self
            .lock()
            .get(&key)
            .filter(|(checked_at, _)| checked_at.elapsed() < ttl)
            .map(|(_, value)| *value);
        if let Some(value) = cached {
            return Ok(value);
        }
        let value = lookup.await.map_err(|err| {
            tracing::warn!(error = %err, "Cannot check a {what}");
            ApiError::Unavailable(format!("cannot check the {what} now; retry"))
        })?;
        self.lock().insert(key, (Instant::now(), value));
        Ok(value)
    }

    fn remove(&self, key: &K) {
        self.lock().remove(key);
    }

    fn clear(&self) {
        self.lock().clear();
    }

    fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.lock().retain(|key, (_, value)| keep(key, value));
    }

    /// Drops expired entries (bounded memory).
    fn sweep(&self, ttl: Duration) {
        self.lock()
            .retain(|_, (checked_at, _)| checked_at.elapsed() < ttl);
    }
}

/// What an API token grants, as its row and its owner's account say now.
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    pub user: Uuid,
    pub role: Role,
    pub scopes: Scopes,
    secret_hash: [u8; 32],
    pub expires_at: Option<DateTime<Utc>>,
    /// When the row last recorded a use (as far as this gateway knows).
    last_used_at: Option<DateTime<Utc>>,
}

/// How often a token's last use is written: a scraper every 15 s costs one UPDATE a minute.
const LAST_USE_EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// The cache of account, session and API token checks.
#[derive(Debug)]
pub struct Access {
    /// (account, session) → the account's role; `None`: refused (no such account or session,
    /// disabled, logged out).
    sessions: Checks<(Uuid, Uuid), Option<Role>>,
    /// Token id → what it grants; `None`: refused (no such token, revoked, owner disabled).
    tokens: Checks<Uuid, Option<Grant>>,
    ttl: Duration,
}

/// What a `flick_access` notification names.
#[derive(Debug, Default, Deserialize)]
pub struct Change {
    pub user: Option<Uuid>,
    pub session: Option<Uuid>,
    pub server: Option<String>,
    /// An API token revoked, re-scoped or deleted.
    pub token: Option<Uuid>,
}

impl Access {
    pub fn new(ttl: Duration) -> Self {
        Self {
            sessions: Checks::new(),
            tokens: Checks::new(),
            ttl,
        }
    }

    /// What the token `presented` grants: 401 if it is unknown, revoked, expired, its secret
    /// is wrong or its owner disabled; 503 if the database cannot tell. The row is cached as
    /// sessions are; the secret is checked against it on every request.
    pub async fn check_token(
        &self,
        pool: &PgPool,
        presented: &Presented,
    ) -> Result<Grant, ApiError> {
        let grant = self.token_standing(pool, presented.id).await?;
        if !api_token::same_hash(&grant.secret_hash, &presented.secret_hash) {
            return Err(refused_token());
        }
        Ok(grant)
    }

    /// What token `id` grants now, if it still stands (not revoked or expired, its owner
    /// enabled): for a connection that proved the secret when it authenticated.
    pub async fn token_standing(&self, pool: &PgPool, id: Uuid) -> Result<Grant, ApiError> {
        let grant = self
            .tokens
            .answer(id, self.ttl, "token", lookup_token(pool, id))
            .await?;
        let grant = grant.ok_or_else(refused_token)?;
        if grant.expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(refused_token());
        }
        Ok(grant)
    }

    /// Whether this use of token `id` should be written down (none written for a minute);
    /// counts it as written.
    pub fn note_token_use(&self, id: Uuid) -> bool {
        let now = Utc::now();
        let mut tokens = self.tokens.lock();
        let Some(grant) = tokens.get_mut(&id).and_then(|(_, grant)| grant.as_mut()) else {
            return false;
        };
        let due = grant
            .last_used_at
            .is_none_or(|at| now - at >= LAST_USE_EVERY);
        if due {
            grant.last_used_at = Some(now);
        }
        due
    }

    /// The role of `user` if the account exists, is enabled and `session` is open: 401 if not,
    /// 503 if the database cannot tell.
    pub async fn check(&self, pool: &PgPool, user: Uuid, session: Uuid) -> Result<Role, ApiError> {
        let role = self
            .sessions
            .answer(
                (user, session),
                self.ttl,
                "session",
                lookup(pool, user, session),
            )
            .await?;
        role.ok_or_else(|| {
            ApiError::Unauthorized("the session has ended or the account is disabled".into())
        })
    }

    /// Forgets what is cached about what `change` names.
    pub fn forget(&self, change: &Change) {
        if let Some(token) = change.token {
            // `user` names the owner so that live connections re-check; sessions are unchanged.
            self.tokens.remove(&token);
            return;
        }
        match (change.user, change.session) {
            (_, Some(session)) => self.sessions.retain(|(_, s), _| *s != session),
            (Some(user), None) => {
                self.sessions.retain(|(u, _), _| *u != user);
                // A disabled or demoted owner: their tokens change with them.
                self.tokens
                    .retain(|_, grant| grant.is_none_or(|g| g.user != user));
            }
            (None, None) => {}
        }
    }

    /// Forgets everything (notifications may have been missed).
    pub fn forget_all(&self) {
        self.sessions.clear();
        self.tokens.clear();
    }

    /// Drops expired entries (bounded memory).
    pub fn sweep(&self) {
        self.sessions.sweep(self.ttl);
        self.tokens.sweep(self.ttl);
    }
}

fn refused_token() -> ApiError {
    ApiError::Unauthorized("invalid, expired or revoked API token".into())
}

async fn lookup_token(pool: &PgPool, id: Uuid) -> Result<Option<Grant>, sqlx::Error> {
    type Row = (
        Uuid,
        String,
        Vec<String>,
        Vec<u8>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT t.user_id, u.role, t.scopes, t.secret_hash, t.expires_at, t.last_used_at
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.id = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(
        row.and_then(|(user, role, scopes, hash, expires_at, last_used_at)| {
            Some(Grant {
                user,
                role: Role::parse(&role)?,
                scopes: Scopes::parse(&scopes)?,
                secret_hash: hash.try_into().ok()?,
                expires_at,
                last_used_at,
            })
        }),
    )
}

/// Writes down that token `id` was used now from `ip` (at most once a minute, whichever
/// gateway saw the use); a failure is logged, never the request's.
pub async fn record_token_use(pool: PgPool, id: Uuid, ip: Option<std::net::IpAddr>) {
    let result = sqlx::query(
        "UPDATE api_tokens SET last_used_at = now(), last_used_ip = coalesce($2, last_used_ip)
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind(id)
    .bind(ip.map(|ip| ip.to_string()))
    .execute(&pool)
    .await;
    if let Err(err) = result {
        tracing::warn!(error = %err, token = %id, "Cannot record an API token's use");
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
