//! A fresh PostgreSQL database per test, dropped when the test ends.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool};

use crate::config::DatabaseSettings;
use crate::db::MIGRATOR;

/// Databases created by tests are named `flick_t_<unix seconds>_<random>`; ones older than this
/// are leftovers of killed test runs and are dropped by the next test that starts.
const STALE_AFTER_SECS: u64 = 3 * 3600;

/// A database of its own for one test, with the schema applied, on the server of `DATABASE_URL`
/// (default `postgres://postgres@127.0.0.1:5432/postgres`).
#[derive(Debug)]
pub struct TestDb {
    pub pool: PgPool,
    name: String,
    url: String,
}

impl TestDb {
    /// A new database with every migration applied.
    pub async fn new() -> Self {
        let db = Self::empty().await;
        MIGRATOR
            .run(&db.pool)
            .await
            .expect("apply the migrations to a test database");
        db
    }

    /// A new database with nothing in it (for testing the migrations themselves).
    pub async fn empty() -> Self {
        let admin_url = super::database_url();
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|err| panic!("cannot connect to PostgreSQL at {admin_url}: {err}"));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        drop_stale(&mut admin, now).await;
        let name = format!(
            "flick_t_{now}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create a test database");
        let url = with_database(&admin_url, &name);
        let pool = PgPool::connect(&url)
            .await
            .expect("connect to the test database");
        Self { pool, name, url }
    }

    /// Its URL, for a service under test.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: self.url.as_str().into(),
            ..DatabaseSettings::default()
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // FORCE ends the pool's connections (the pool belongs to the test's runtime and cannot
        // be closed from another one).
        with_admin_from_drop(|mut admin| async move {
            let _ = admin
                .execute(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await;
        });
    }
}

/// Runs `cleanup` on a connection to the test server's admin database and waits for it, for a
/// `Drop` that cleans up after a test: `Drop` may run inside the test's runtime, which must not
/// be blocked on, so this runs on a thread with a small runtime of its own. Nothing is done
/// when the server cannot be reached.
pub fn with_admin_from_drop<F, Fut>(cleanup: F)
where
    F: FnOnce(PgConnection) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(runtime) = runtime {
            runtime.block_on(async move {
                if let Ok(admin) = PgConnection::connect(&super::database_url()).await {
                    cleanup(admin).await;
                }
            });
        }
    })
    .join();
}

/// `url` with its database replaced by `database` (query parameters kept).
fn with_database(url: &str, database: &str) -> String {
    let (without_query, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let base = match without_query.rsplit_once('/') {
        Some((base, _)) if base.contains("://") && !base.ends_with('/') => base,
        _ => without_query.trim_end_matches('/'),
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

async fn drop_stale(admin: &mut PgConnection, now: u64) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'flick\\_t\\_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    for name in names {
        let created = name
            .split('_')
            .nth(2)
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|created| now.saturating_sub(created) > STALE_AFTER_SECS) {
            let _ = admin
                .execute(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_only_the_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t1"),
            "postgres://u:p@h/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h:5432", "t1"),
            "postgres://u@h:5432/t1"
        );
    }
}
