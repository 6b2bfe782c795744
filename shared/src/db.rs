//! Connecting to PostgreSQL the way every service should: bounded pool, bounded wait, and an
//! error that says where it tried to connect without printing the password.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

use crate::config::DatabaseSettings;

/// The schema, from `migrations/` at the repository's top level, embedded in every binary that
/// applies it. sqlx takes a lock while migrating, so replicas starting together are safe.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbConnectError {
    #[error("database.url is not a valid PostgreSQL URL: {0}")]
    BadUrl(#[source] sqlx::Error),
    #[error("cannot connect to PostgreSQL at {target}")]
    Connect {
        target: String,
        #[source]
        source: sqlx::Error,
    },
}

/// `host:port/database` of the URL: enough to say where, without the credentials.
pub fn describe(options: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    )
}

/// Connects, creating the database first if the server has no database of that name (a new
/// installation), then applies the migrations.
pub async fn connect_and_migrate(
    settings: &DatabaseSettings,
    application: &str,
) -> anyhow::Result<PgPool> {
    use anyhow::Context as _;
    use sqlx::migrate::MigrateDatabase as _;
    let url = settings.url.expose();
    if !sqlx::Postgres::database_exists(url).await.unwrap_or(true) {
        tracing::info!("Creating the database");
        if let Err(err) = sqlx::Postgres::create_database(url).await {
            // Another replica may have created it meanwhile; connecting below tells.
            tracing::debug!(error = %err, "Cannot create the database");
        }
    }
    let pool = connect(settings, application).await?;
    MIGRATOR
        .run(&pool)
        .await
        .context("apply the database migrations")?;
    Ok(pool)
}

/// Applies the migrations on a short-lived pool, then connects the pool a service serves
/// with, each connection starting with `parameters`: limits meant for the service's own
/// queries (a `statement_timeout`) must not cut a long migration short.
pub async fn migrate_then_connect(
    settings: &DatabaseSettings,
    application: &str,
    parameters: &[(&str, String)],
) -> anyhow::Result<PgPool> {
    let migrations = DatabaseSettings {
        max_connections: 1,
        ..settings.clone()
    };
    connect_and_migrate(&migrations, application)
        .await?
        .close()
        .await;
    Ok(connect_with(settings, application, parameters).await?)
}

/// Whether TimescaleDB is installed in this database (the migrations install it when the server
/// preloads it).
pub async fn has_timescaledb(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
        .fetch_one(pool)
        .await
}

/// A pool of at most `max_connections`, connected once to prove the settings work.
pub async fn connect(
    settings: &DatabaseSettings,
    application: &str,
) -> Result<PgPool, DbConnectError> {
    connect_with(settings, application, &[]).await
}

/// Like [`connect`], every connection starting with the run-time `parameters` set
/// (`statement_timeout`, …).
pub async fn connect_with(
    settings: &DatabaseSettings,
    application: &str,
    parameters: &[(&str, String)],
) -> Result<PgPool, DbConnectError> {
    let options: PgConnectOptions = settings
        .url
        .expose()
        .parse()
        .map_err(DbConnectError::BadUrl)?;
    let options = options
        .options(
            parameters
                .iter()
                .map(|(name, value)| (*name, value.as_str())),
        )
        .application_name(application)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
    let target = describe(&options);
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .connect_with(options)
        .await
        .map_err(|source| DbConnectError::Connect { target, source })
}
