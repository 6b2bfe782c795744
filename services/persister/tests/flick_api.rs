//! The `flick_api` schema Grafana reads (migrations/20261203000050_flick_api.sql): what its
//! views show of samples and alerts the real persister stored from JetStream, and the promise
//! of the role `flick_api_reader`: it can select from every view of the schema and cannot
//! write anything, nor read a table.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, Row};
use uuid::Uuid;

use common::{Harness, samples_ending};
use flick_shared::db::MIGRATOR;
use flick_shared::shutdown::CancellationToken;
use flick_shared::testkit::{self, TestDb};
use flick_shared::wire::{AlertEvent, AlertSeverity, AlertState, MetricSample, ServerId};

/// Every view the migration creates; the tests also cover any view added to the schema later.
const VIEWS: [&str; 6] = [
    "alert_events",
    "alerts",
    "samples",
    "samples_1h",
    "samples_1m",
    "servers",
];

/// SQLSTATE insufficient_privilege.
const DENIED: &str = "42501";
/// SQLSTATE object_not_in_prerequisite_state: a write into a view that is not automatically
/// updatable, refused to everyone before privileges are looked at.
const NOT_UPDATABLE: &str = "55000";

#[tokio::test]
async fn the_read_only_role_reads_every_view_and_cannot_write_anything() {
    let harness = Harness::new().await;
    let mut config = harness.config();
    // The test runs the purge itself, when it chooses.
    config.retention.purge_interval_secs = 3600;
    let persister = harness.start(config);
    // Two servers, two whole minutes of one-second samples each, within one hour, so every
    // one-minute bucket holds 60 samples and the hour's bucket 120.
    let end = Utc::now()
        .duration_trunc(TimeDelta::hours(1))
        .expect("an hour")
        - minutes(30);
    let mut published = samples_ending(2, 120, end);
    let host = published[0].server_id.clone();
    let other = published[1].server_id.clone();
    let host_alert = alert(
        &host,
        None,
        AlertState::Firing,
        end - minutes(1),
        end - minutes(1),
    );
    let container_firing = alert(
        &other,
        Some("db"),
        AlertState::Firing,
        end - minutes(2),
        end - minutes(2),
    );
    let container_resolved = AlertEvent {
        id: Uuid::new_v4(),
        state: AlertState::Resolved,
        at: end - minutes(2) + TimeDelta::seconds(30),
        ..container_firing.clone()
    };
    harness.publish(&published).await;
    for event in [&host_alert, &container_firing, &container_resolved] {
        harness
            .publish_raw(
                harness.subjects.alerts(&event.server_id),
                serde_json::to_vec(event).expect("json"),
            )
            .await;
    }
    harness
        .wait_for_rows("metrics", 240, Duration::from_secs(60))
        .await;
    harness
        .wait_for_rows("alert_events", 3, Duration::from_secs(30))
        .await;
    harness
        .wait_for_rows("servers", 2, Duration::from_secs(30))
        .await;

    // What no view may show (an account with its password hash and a session, a server's
    // sealed credentials), and what the views do show of it (the owner's id, an
    // acknowledgement).
    let user = Uuid::new_v4();
    setup(
        &harness.db,
        &[
            &format!(
                "INSERT INTO users (id, email, password_hash, role)
                 VALUES ('{user}', 'grafana-test@example.com', '$argon2id$v=19$secret', 'user')"
            ),
            &format!(
                "INSERT INTO sessions (id, user_id) VALUES ('{}', '{user}')",
                Uuid::new_v4()
            ),
            &format!(
                "UPDATE servers SET owner_id = '{user}', credentials = '\\x0102'::bytea
                 WHERE id = '{}'",
                host.as_str()
            ),
            &format!(
                "UPDATE alerts SET acknowledged_at = now(), acknowledged_by = '{user}'
                 WHERE id = '{}'",
                host_alert.alert_id
            ),
        ],
    )
    .await;

    let reader = LoginRole::create("IN ROLE flick_api_reader").await;
    let mut conn = reader.connect(&harness.db).await;

    let views = views(&harness.db).await;
    for expected in VIEWS {
        assert!(
            views.iter().any(|v| v.name == expected),
            "flick_api.{expected} exists (views: {views:?})"
        );
    }
    for view in &views {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT * FROM flick_api.{}",
            view.quoted
        )))
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|err| panic!("the reader selects from flick_api.{}: {err}", view.name));
        assert!(!rows.is_empty(), "flick_api.{} shows rows", view.name);
    }

    published.sort_by(|a, b| {
        (a.server_id.as_str(), a.timestamp).cmp(&(b.server_id.as_str(), b.timestamp))
    });
    assert_samples(&mut conn, &published).await;
    let sums = if flick_shared::db::has_timescaledb(&harness.db.pool)
        .await
        .expect("whether TimescaleDB is installed")
    {
        Sums::Real
    } else {
        Sums::Exact
    };
    assert_buckets(
        &mut conn,
        "samples_1m",
        &published,
        TimeDelta::minutes(1),
        4,
        sums,
    )
    .await;
    assert_buckets(
        &mut conn,
        "samples_1h",
        &published,
        TimeDelta::hours(1),
        2,
        sums,
    )
    .await;
    assert_servers(&mut conn, &published, &host, user).await;
    assert_alerts(&mut conn, &host_alert, &container_resolved, user).await;

    let mut wrong = writes_refused(&harness.db, &mut conn, &views).await;
    wrong.extend(tables_refused(&harness.db, &mut conn).await);
    wrong.extend(statements_refused(&mut conn).await);
    assert!(
        wrong.is_empty(),
        "not refused as expected:\n{}",
        wrong.join("\n")
    );

    deleted_and_back(&harness, &mut conn, &views, &host, &other, user).await;
    conn.close().await.expect("close");
    persister.stop().await;
}

/// A server deleted the way `DELETE /servers/{id}` deletes it: its data is gone from every view
/// at once, though the purge has not run; a collector still reporting under its id brings it
/// back without its old data; the bucket the deletion fell in is shown once the purge is done.
async fn deleted_and_back(
    harness: &Harness,
    conn: &mut PgConnection,
    views: &[View],
    kept: &ServerId,
    deleted: &ServerId,
    user: Uuid,
) {
    setup(
        &harness.db,
        &[
            &format!("DELETE FROM servers WHERE id = '{}'", deleted.as_str()),
            &format!(
                "INSERT INTO server_tombstones (server_id, deleted_by) VALUES ('{}', '{user}')",
                deleted.as_str()
            ),
        ],
    )
    .await;
    let stored = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM metrics WHERE server_id = $1")
            .bind(deleted.as_str())
            .fetch_one(&harness.db.pool)
            .await
            .expect("count")
    };
    assert_eq!(stored().await, 120, "the samples wait for the purge");
    for view in views {
        let left: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT DISTINCT {} FROM flick_api.{}",
            if view.name == "servers" {
                "id"
            } else {
                "server_id"
            },
            view.quoted
        )))
        .fetch_all(&mut *conn)
        .await
        .expect("select");
        assert_eq!(
            left,
            [kept.as_str()],
            "flick_api.{} shows only the server that was not deleted",
            view.name
        );
    }

    let mut again = samples_ending(2, 1, Utc::now() + TimeDelta::seconds(2));
    let back = again.remove(1);
    assert_eq!(back.server_id, *deleted);
    harness.publish(std::slice::from_ref(&back)).await;
    harness
        .wait_for_rows("servers", 2, Duration::from_secs(30))
        .await;
    assert_eq!(stored().await, 121);
    let deleted_at: DateTime<Utc> =
        sqlx::query_scalar("SELECT deleted_at FROM server_tombstones WHERE server_id = $1")
            .bind(deleted.as_str())
            .fetch_one(&harness.db.pool)
            .await
            .expect("the tombstone");
    assert_eq!(
        times(conn, "samples", deleted).await,
        [back.timestamp],
        "only the sample sent since"
    );
    for view in ["samples_1m", "samples_1h"] {
        let shown = times(conn, view, deleted).await;
        assert!(
            shown.iter().all(|&t| t > deleted_at),
            "{view} shows no bucket begun before the deletion at {deleted_at}: {shown:?}"
        );
    }

    // The purge, as the persister runs it: the first pass removes the old rows, the second
    // finds nothing and marks the server purged.
    let settings = flick_persister::config::RetentionSettings {
        purge_settle_secs: 0,
        ..Default::default()
    };
    let timescale = flick_shared::db::has_timescaledb(&harness.db.pool)
        .await
        .expect("whether TimescaleDB is installed");
    for _ in 0..2 {
        flick_persister::purge::purge(
            &harness.db.pool,
            &settings,
            timescale,
            &CancellationToken::new(),
        )
        .await
        .expect("a purge pass");
    }
    assert_eq!(stored().await, 1, "the purge kept the sample sent since");
    let purged: bool = sqlx::query_scalar(
        "SELECT purged_at IS NOT NULL FROM server_tombstones WHERE server_id = $1",
    )
    .bind(deleted.as_str())
    .fetch_one(&harness.db.pool)
    .await
    .expect("the tombstone");
    assert!(purged, "the second pass marks the server purged");
    for (view, width) in [
        ("samples_1m", TimeDelta::minutes(1)),
        ("samples_1h", TimeDelta::hours(1)),
    ] {
        let rows: Vec<(DateTime<Utc>, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT time, samples FROM flick_api.{view} WHERE server_id = $1"
        )))
        .bind(deleted.as_str())
        .fetch_all(&mut *conn)
        .await
        .expect("select");
        assert_eq!(
            rows,
            [(back.timestamp.duration_trunc(width).expect("a bucket"), 1)],
            "{view}: the bucket of the one sample sent since the deletion"
        );
    }
}

/// The `time` of every row of `view` for `server`, in order.
async fn times(conn: &mut PgConnection, view: &str, server: &ServerId) -> Vec<DateTime<Utc>> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT time FROM flick_api.{view} WHERE server_id = $1 ORDER BY time"
    )))
    .bind(server.as_str())
    .fetch_all(conn)
    .await
    .expect("select")
}

#[tokio::test]
async fn no_view_has_a_column_named_like_a_secret_and_every_time_is_a_timestamptz() {
    let db = TestDb::new().await;
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod)
         FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'flick_api' AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY c.relname, a.attnum",
    )
    .fetch_all(&db.pool)
    .await
    .expect("the views' columns");
    let servers: Vec<&str> = columns
        .iter()
        .filter(|(view, _, _)| view == "servers")
        .map(|(_, column, _)| column.as_str())
        .collect();
    assert_eq!(
        servers,
        [
            "id",
            "name",
            "hostname",
            "owner_id",
            "tags",
            "created_at",
            "last_seen_at"
        ],
        "the columns of flick_api.servers"
    );
    for (view, column, _) in &columns {
        for word in [
            "password",
            "hash",
            "key",
            "secret",
            "seal",
            "token",
            "credential",
        ] {
            assert!(
                !column.contains(word),
                "flick_api.{view}.{column} looks like a secret ({word})"
            );
        }
    }
    // Grafana's time series and $__timeFilter need a `time` of type timestamptz.
    for view in VIEWS.iter().filter(|&&v| v != "servers") {
        let time = columns
            .iter()
            .find(|(v, column, _)| v == view && column == "time");
        assert_eq!(
            time.map(|(_, _, kind)| kind.as_str()),
            Some("timestamp with time zone"),
            "flick_api.{view}.time"
        );
    }
}

#[tokio::test]
async fn the_migrations_apply_for_a_database_owner_that_may_not_create_roles() {
    // The role belongs to the cluster: it exists once any database has migrated.
    drop(TestDb::new().await);
    // Reading shared_preload_libraries (the TimescaleDB migration) needs pg_read_all_settings.
    let owner = LoginRole::create("NOSUPERUSER NOCREATEROLE IN ROLE pg_read_all_settings").await;
    let db = TestDb::empty().await;
    setup(
        &db,
        &[&format!(
            "ALTER DATABASE {} OWNER TO {}",
            db.name(),
            owner.name
        )],
    )
    .await;
    let mut conn = owner.connect(&db).await;
    MIGRATOR
        .run(&mut conn)
        .await
        .expect("the owner applies every migration");
    conn.close().await.expect("close");

    let views = views(&db).await;
    assert_eq!(views.len(), VIEWS.len(), "every view is there: {views:?}");
    let (usage, selectable): (bool, i64) = sqlx::query_as(
        "SELECT has_schema_privilege('flick_api_reader', 'flick_api', 'USAGE'),
                count(*) FILTER (WHERE has_table_privilege('flick_api_reader', c.oid, 'SELECT'))
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'flick_api'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("privileges");
    assert!(usage, "the reader may use schema flick_api");
    assert_eq!(
        selectable,
        i64::try_from(views.len()).expect("few"),
        "the reader may select from every view"
    );
}

/// A view of schema `flick_api`, found in the catalog.
#[derive(Debug)]
struct View {
    name: String,
    /// The name quoted for SQL.
    quoted: String,
    /// Its first column, quoted, for an UPDATE.
    first_column: String,
    /// `pg_relation_is_updatable`: 4 UPDATE, 8 INSERT, 16 DELETE.
    updatable: i32,
}

async fn views(db: &TestDb) -> Vec<View> {
    let rows: Vec<(String, String, String, i32)> = sqlx::query_as(
        "SELECT c.relname::text, quote_ident(c.relname),
                (SELECT quote_ident(a.attname) FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum LIMIT 1),
                pg_relation_is_updatable(c.oid, false)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'flick_api' AND c.relkind IN ('v', 'm')
         ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .expect("the views of flick_api");
    rows.into_iter()
        .map(|(name, quoted, first_column, updatable)| View {
            name,
            quoted,
            first_column,
            updatable,
        })
        .collect()
}

/// INSERT, UPDATE and DELETE on every view: denied (42501) where the view is automatically
/// updatable (the reader has only SELECT), and refused to everyone (55000) where it is not.
/// One view at least must be updatable, so the privilege is what refuses some of them.
async fn writes_refused(db: &TestDb, conn: &mut PgConnection, views: &[View]) -> Vec<String> {
    assert!(
        views
            .iter()
            .any(|v| v.name == "servers" && v.updatable == 4 | 8 | 16),
        "flick_api.servers is automatically updatable: the reader's privileges are what keeps it read-only"
    );
    let unprivileged: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'flick_api'
           AND has_table_privilege('flick_api_reader', c.oid,
                                   'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')",
    )
    .fetch_all(&db.pool)
    .await
    .expect("privileges");
    let mut wrong: Vec<String> = unprivileged
        .into_iter()
        .map(|view| format!("the reader holds a privilege beyond SELECT on flick_api.{view}"))
        .collect();
    for view in views {
        let v = &view.quoted;
        let c = &view.first_column;
        for (bit, sql) in [
            (8, format!("INSERT INTO flick_api.{v} DEFAULT VALUES")),
            (4, format!("UPDATE flick_api.{v} SET {c} = {c}")),
            (16, format!("DELETE FROM flick_api.{v}")),
        ] {
            let expected = if view.updatable & bit != 0 {
                DENIED
            } else {
                NOT_UPDATABLE
            };
            wrong.extend(expect_code(conn, &sql, expected).await);
        }
        wrong.extend(expect_code(conn, &format!("DROP VIEW flick_api.{v}"), DENIED).await);
    }
    wrong
}

/// SELECT, INSERT, UPDATE, DELETE, TRUNCATE and DROP on every table of schema public (users,
/// sessions, metrics, servers, … and any added later), and every sequence: all denied.
async fn tables_refused(db: &TestDb, conn: &mut PgConnection) -> Vec<String> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT format('%I.%I', n.nspname, c.relname),
                (SELECT quote_ident(a.attname) FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum LIMIT 1)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
         ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .expect("the tables of public");
    for name in ["users", "sessions", "metrics", "servers", "refresh_tokens"] {
        assert!(
            tables.iter().any(|(t, _)| t == &format!("public.{name}")),
            "public.{name} is among the tables tried"
        );
    }
    let sequences: Vec<String> = sqlx::query_scalar(
        "SELECT format('%I.%I', n.nspname, c.relname)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind = 'S'",
    )
    .fetch_all(&db.pool)
    .await
    .expect("the sequences of public");
    assert!(!sequences.is_empty(), "public has sequences to try");
    let mut wrong = Vec::new();
    for (t, c) in &tables {
        for sql in [
            format!("SELECT * FROM {t} LIMIT 1"),
            format!("INSERT INTO {t} DEFAULT VALUES"),
            format!("UPDATE {t} SET {c} = {c}"),
            format!("DELETE FROM {t}"),
            format!("TRUNCATE {t}"),
            format!("DROP TABLE {t}"),
        ] {
            wrong.extend(expect_code(conn, &sql, DENIED).await);
        }
    }
    for s in &sequences {
        for sql in [
            format!("SELECT nextval('{s}')"),
            format!("SELECT setval('{s}', 1)"),
        ] {
            wrong.extend(expect_code(conn, &sql, DENIED).await);
        }
    }
    wrong
}

/// Creating anything: tables and views in either schema, a schema, a role.
async fn statements_refused(conn: &mut PgConnection) -> Vec<String> {
    let mut wrong = Vec::new();
    for sql in [
        "CREATE TABLE flick_api.t (x int)",
        "CREATE VIEW flick_api.v AS SELECT 1 AS x",
        "CREATE TABLE public.t (x int)",
        "CREATE VIEW public.v AS SELECT 1 AS x",
        "CREATE SCHEMA grafana_owned",
        "CREATE ROLE grafana_made",
        "ALTER VIEW flick_api.servers RENAME TO hosts",
    ] {
        wrong.extend(expect_code(conn, sql, DENIED).await);
    }
    wrong
}

/// `None` when `sql` fails with SQLSTATE `expected` for the connected role, otherwise what
/// happened instead.
async fn expect_code(conn: &mut PgConnection, sql: &str, expected: &str) -> Option<String> {
    let code = match conn.execute(AssertSqlSafe(sql.to_owned())).await {
        Ok(_) => "success".to_owned(),
        Err(sqlx::Error::Database(err)) => {
            format!("{} ({})", err.code().unwrap_or_default(), err.message())
        }
        Err(other) => format!("{other}"),
    };
    (!code.starts_with(&format!("{expected} "))).then(|| format!("{sql}: {code}, not {expected}"))
}

/// Every sample's row in `flick_api.samples`, figure by figure, in its unit.
async fn assert_samples(conn: &mut PgConnection, published: &[MetricSample]) {
    let rows = sqlx::query("SELECT * FROM flick_api.samples ORDER BY server_id, time")
        .fetch_all(&mut *conn)
        .await
        .expect("samples");
    assert_eq!(rows.len(), published.len(), "one row per sample");
    let big = |v: u64| i64::try_from(v).expect("fits");
    for (row, s) in rows.iter().zip(published) {
        let at = format!("{} {}", s.server_id.as_str(), s.timestamp);
        assert_eq!(row.get::<DateTime<Utc>, _>("time"), s.timestamp, "{at}");
        assert_eq!(row.get::<String, _>("server_id"), s.server_id.as_str());
        assert_eq!(row.get::<f32, _>("cpu_percent"), s.cpu_usage as f32, "{at}");
        assert_eq!(row.get::<f32, _>("memory_percent"), s.memory_usage as f32);
        assert_eq!(row.get::<f32, _>("disk_percent"), s.disk_usage as f32);
        assert_eq!(
            row.get::<i64, _>("network_bytes_per_second"),
            big(s.network_usage)
        );
        let network = s.network.expect("simulated rates");
        let load = s.load_average.expect("simulated load");
        let memory = s.memory.expect("simulated memory");
        let swap = s.swap.expect("simulated swap");
        let disk_io = s.disk_io.expect("simulated disk I/O");
        let int = |name: &str| row.get::<Option<i64>, _>(name);
        let real = |name: &str| row.get::<Option<f32>, _>(name);
        assert_eq!(
            int("network_rx_bytes_per_second"),
            Some(big(network.rx_bytes_per_sec))
        );
        assert_eq!(
            int("network_tx_bytes_per_second"),
            Some(big(network.tx_bytes_per_sec))
        );
        assert_eq!(real("load1"), Some(load.one as f32));
        assert_eq!(real("load5"), Some(load.five as f32));
        assert_eq!(real("load15"), Some(load.fifteen as f32));
        assert_eq!(int("memory_used_bytes"), Some(big(memory.used_bytes)));
        assert_eq!(int("memory_total_bytes"), Some(big(memory.total_bytes)));
        assert_eq!(int("swap_used_bytes"), Some(big(swap.used_bytes)));
        assert_eq!(int("swap_total_bytes"), Some(big(swap.total_bytes)));
        assert_eq!(
            int("disk_read_bytes_per_second"),
            Some(big(disk_io.read_bytes_per_sec))
        );
        assert_eq!(
            int("disk_write_bytes_per_second"),
            Some(big(disk_io.write_bytes_per_sec))
        );
        assert_eq!(int("uptime_seconds"), s.uptime_secs.map(big));
        assert_eq!(
            row.get::<Option<i32>, _>("processes"),
            s.process_count.map(|n| i32::try_from(n).expect("fits"))
        );
        assert_eq!(
            row.get::<Option<f64>, _>("temperature_max_celsius"),
            flick_shared::wire::hottest_celsius(&s.temperatures),
            "{at}"
        );
    }
}

/// A bucket's figures worked out from the samples themselves (as stored: real columns hold
/// f32).
#[derive(Debug, Default)]
struct Bucket {
    samples: i64,
    cpu: Vec<f64>,
    memory: Vec<f64>,
    disk: Vec<f64>,
    network: Vec<i64>,
    rx: Vec<f64>,
    tx: Vec<f64>,
    load1: Vec<f64>,
}

/// How the means of the `real` columns (cpu, memory, disk, load1) were added up.
#[derive(Debug, Clone, Copy)]
enum Sums {
    /// In double precision (avg of a real column on plain PostgreSQL): equal but for the order
    /// of the additions.
    Exact,
    /// In single precision: TimescaleDB's aggregates (metrics_1m, metrics_1h) keep sum(real),
    /// which is real, so a mean of n samples may be off by up to n·ε(f32) of itself (measured:
    /// at most 6e-7 for minutes and hours of one-second samples). Counts, minima, maxima and
    /// the bigint figures' means stay exact.
    Real,
}

/// Every row of a bucket view equals the buckets of `width` computed here: counts, true means,
/// minima and maxima.
async fn assert_buckets(
    conn: &mut PgConnection,
    view: &str,
    published: &[MetricSample],
    width: TimeDelta,
    expected_rows: usize,
    sums: Sums,
) {
    let mut buckets: BTreeMap<(String, DateTime<Utc>), Bucket> = BTreeMap::new();
    for s in published {
        let start = s.timestamp.duration_trunc(width).expect("a bucket");
        let b = buckets
            .entry((s.server_id.as_str().to_owned(), start))
            .or_default();
        let network = s.network.expect("simulated rates");
        b.samples += 1;
        b.cpu.push(f64::from(s.cpu_usage as f32));
        b.memory.push(f64::from(s.memory_usage as f32));
        b.disk.push(f64::from(s.disk_usage as f32));
        b.network
            .push(i64::try_from(s.network_usage).expect("fits"));
        b.rx.push(network.rx_bytes_per_sec as f64);
        b.tx.push(network.tx_bytes_per_sec as f64);
        b.load1.push(f64::from(
            s.load_average.expect("simulated load").one as f32,
        ));
    }
    assert_eq!(buckets.len(), expected_rows, "buckets of the samples");
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT * FROM flick_api.{view} ORDER BY server_id, time"
    )))
    .fetch_all(&mut *conn)
    .await
    .expect("buckets");
    assert_eq!(rows.len(), buckets.len(), "{view}: one row per bucket");
    for (row, ((server, start), b)) in rows.iter().zip(&buckets) {
        let at = format!("{view} {server} {start}");
        assert_eq!(row.get::<String, _>("server_id"), *server, "{at}");
        assert_eq!(row.get::<DateTime<Utc>, _>("time"), *start, "{at}");
        assert_eq!(row.get::<i64, _>("samples"), b.samples, "{at}");
        let real_tolerance = match sums {
            Sums::Exact => EXACT,
            Sums::Real => f64::from(f32::EPSILON) * b.samples as f64,
        };
        for (figure, values) in [
            ("cpu_percent", &b.cpu),
            ("memory_percent", &b.memory),
            ("disk_percent", &b.disk),
        ] {
            assert_close(
                row,
                &format!("{figure}_avg"),
                mean(values),
                real_tolerance,
                &at,
            );
            assert_eq!(
                row.get::<f64, _>(format!("{figure}_min").as_str()),
                values.iter().copied().fold(f64::INFINITY, f64::min),
                "{at} {figure}_min"
            );
            assert_eq!(
                row.get::<f64, _>(format!("{figure}_max").as_str()),
                values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                "{at} {figure}_max"
            );
        }
        let network: Vec<f64> = b.network.iter().map(|&n| n as f64).collect();
        assert_close(
            row,
            "network_bytes_per_second_avg",
            mean(&network),
            EXACT,
            &at,
        );
        assert_eq!(
            row.get::<i64, _>("network_bytes_per_second_min"),
            b.network.iter().copied().min().expect("samples")
        );
        assert_eq!(
            row.get::<i64, _>("network_bytes_per_second_max"),
            b.network.iter().copied().max().expect("samples")
        );
        assert_close(
            row,
            "network_rx_bytes_per_second_avg",
            mean(&b.rx),
            EXACT,
            &at,
        );
        assert_close(
            row,
            "network_tx_bytes_per_second_avg",
            mean(&b.tx),
            EXACT,
            &at,
        );
        assert_close(row, "load1_avg", mean(&b.load1), real_tolerance, &at);
        assert_eq!(
            row.get::<f64, _>("load1_max"),
            b.load1.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            "{at} load1_max"
        );
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The relative tolerance of a mean added up in double precision (or exactly, in numeric):
/// equal but for the order of the additions.
const EXACT: f64 = 1e-9;

/// `column` is `expected` within `tolerance` of it (relative).
fn assert_close(row: &PgRow, column: &str, expected: f64, tolerance: f64, at: &str) {
    let got: f64 = row.get(column);
    assert!(
        (got - expected).abs() <= tolerance * expected.abs().max(1.0),
        "{at} {column}: {got}, expected {expected} (relative tolerance {tolerance:e})"
    );
}

async fn assert_servers(
    conn: &mut PgConnection,
    published: &[MetricSample],
    owned: &ServerId,
    owner: Uuid,
) {
    type ServerRow = (
        String,
        String,
        Option<String>,
        Option<Uuid>,
        Vec<String>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<ServerRow> = sqlx::query_as(
        "SELECT id, name, hostname, owner_id, tags, last_seen_at FROM flick_api.servers ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("servers");
    assert_eq!(rows.len(), 2, "the two servers seen");
    for (id, name, hostname, owner_id, tags, last_seen_at) in &rows {
        let newest = published
            .iter()
            .rfind(|s| s.server_id.as_str() == id)
            .expect("a server that sent samples");
        assert_eq!(hostname, &newest.hostname, "{id}");
        assert_eq!(
            Some(name),
            newest.hostname.as_ref(),
            "a discovered server is named after its host"
        );
        assert_eq!(*owner_id, (id == owned.as_str()).then_some(owner), "{id}");
        assert!(tags.is_empty());
        // The persister moves last_seen_at at most every LAST_SEEN_RESOLUTION (10 s).
        assert!(
            last_seen_at.is_some_and(|seen| seen <= newest.timestamp
                && newest.timestamp - seen <= TimeDelta::seconds(10)),
            "{id} last seen {last_seen_at:?}, its newest sample at {}",
            newest.timestamp
        );
    }
}

async fn assert_alerts(
    conn: &mut PgConnection,
    host_alert: &AlertEvent,
    container_resolved: &AlertEvent,
    acknowledger: Uuid,
) {
    let rows = sqlx::query("SELECT * FROM flick_api.alerts")
        .fetch_all(&mut *conn)
        .await
        .expect("alerts");
    assert_eq!(rows.len(), 2, "two alerts");
    let row = |id: Uuid| {
        rows.iter()
            .find(|row| row.get::<Uuid, _>("id") == id)
            .unwrap_or_else(|| panic!("alert {id} in flick_api.alerts"))
    };

    let host = row(host_alert.alert_id);
    let text = |row: &PgRow, name: &str| row.get::<Option<String>, _>(name);
    assert_eq!(
        host.get::<DateTime<Utc>, _>("time"),
        host_alert.started_at,
        "time is when it started"
    );
    assert_eq!(
        host.get::<DateTime<Utc>, _>("started_at"),
        host_alert.started_at
    );
    assert_eq!(
        text(host, "server_id").as_deref(),
        Some(host_alert.server_id.as_str())
    );
    assert_eq!(
        text(host, "container"),
        None,
        "a host's alert has no container"
    );
    assert_eq!(text(host, "metric").as_deref(), Some("cpu"));
    assert_eq!(text(host, "severity").as_deref(), Some("critical"));
    assert_eq!(text(host, "state").as_deref(), Some("firing"));
    assert_eq!(host.get::<Option<f64>, _>("value"), host_alert.value);
    assert_eq!(
        host.get::<Option<f64>, _>("threshold"),
        host_alert.threshold
    );
    assert_eq!(host.get::<Option<DateTime<Utc>>, _>("resolved_at"), None);
    let duration: f64 = host.get("duration_seconds");
    let firing_for = (Utc::now() - host_alert.started_at).num_seconds() as f64;
    assert!(
        (duration - firing_for).abs() < 60.0,
        "a firing alert's duration runs on: {duration} s, about {firing_for} s"
    );
    assert_eq!(text(host, "message"), host_alert.message);
    assert!(host.get::<bool, _>("acknowledged"));
    assert!(
        host.get::<Option<DateTime<Utc>>, _>("acknowledged_at")
            .is_some()
    );
    assert_eq!(
        host.get::<Option<Uuid>, _>("acknowledged_by"),
        Some(acknowledger)
    );

    let container = row(container_resolved.alert_id);
    assert_eq!(
        text(container, "server_id").as_deref(),
        Some(container_resolved.server_id.as_str())
    );
    assert_eq!(text(container, "container").as_deref(), Some("db"));
    assert_eq!(
        text(container, "metric").as_deref(),
        Some("container_stopped")
    );
    assert_eq!(text(container, "state").as_deref(), Some("resolved"));
    assert_eq!(
        container.get::<Option<DateTime<Utc>>, _>("resolved_at"),
        Some(container_resolved.at)
    );
    assert_eq!(
        container.get::<f64, _>("duration_seconds"),
        30.0,
        "resolved 30 s after it started"
    );
    assert!(!container.get::<bool, _>("acknowledged"));

    let events: Vec<(Uuid, DateTime<Utc>, String, Option<String>)> = sqlx::query_as(
        "SELECT id, time, state, container FROM flick_api.alert_events ORDER BY time",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("alert events");
    assert_eq!(events.len(), 3, "three transitions");
    assert_eq!(
        events[1],
        (
            container_resolved.id,
            container_resolved.at,
            "resolved".to_owned(),
            Some("db".to_owned())
        ),
        "time is when the transition happened"
    );
}

fn alert(
    server: &ServerId,
    container: Option<&str>,
    state: AlertState,
    started: DateTime<Utc>,
    at: DateTime<Utc>,
) -> AlertEvent {
    AlertEvent {
        v: 1,
        id: Uuid::new_v4(),
        alert_id: Uuid::new_v4(),
        server_id: server.clone(),
        metric: if container.is_some() {
            "container_stopped".into()
        } else {
            "cpu".into()
        },
        severity: AlertSeverity::Critical,
        state,
        value: container.is_none().then_some(97.5),
        threshold: container.is_none().then_some(90.0),
        started_at: started,
        at,
        message: Some(format!("{} on {}", state_word(state), server.as_str())),
        top_processes: Vec::new(),
        container: container.map(str::to_owned),
    }
}

fn state_word(state: AlertState) -> &'static str {
    match state {
        AlertState::Firing => "firing",
        AlertState::Resolved => "resolved",
    }
}

fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

/// Runs `statements` as the test database's superuser.
async fn setup(db: &TestDb, statements: &[&str]) {
    for sql in statements {
        db.pool
            .execute(AssertSqlSafe(sql.to_string()))
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
    }
}

/// Test roles are named `flick_t_role_<unix seconds>_<random>`; ones older than this are
/// leftovers of killed runs and are dropped by the next test that makes one.
const STALE_ROLE_SECS: u64 = 3 * 3600;

/// A login role of its own for one test (roles belong to the whole cluster, which many tests
/// share), dropped with its sessions when the test ends.
struct LoginRole {
    name: String,
}

impl LoginRole {
    async fn create(options: &str) -> Self {
        let mut admin = PgConnection::connect(&testkit::database_url())
            .await
            .expect("connect to PostgreSQL");
        let now = unix_secs();
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'flick\\_t\\_role\\_%'",
        )
        .fetch_all(&mut admin)
        .await
        .expect("test roles");
        for name in stale {
            let created = name.split('_').nth(3).and_then(|s| s.parse::<u64>().ok());
            if created.is_some_and(|created| now.saturating_sub(created) > STALE_ROLE_SECS) {
                drop_role(&mut admin, &name).await;
            }
        }
        let name = format!(
            "flick_t_role_{now}_{}",
            &Uuid::new_v4().simple().to_string()[..10]
        );
        admin
            .execute(AssertSqlSafe(format!("CREATE ROLE {name} LOGIN {options}")))
            .await
            .expect("create a login role");
        Self { name }
    }

    /// A connection to `db` as this role (the test server trusts local connections).
    async fn connect(&self, db: &TestDb) -> PgConnection {
        let options: PgConnectOptions = db.url().parse().expect("the test database's URL");
        PgConnection::connect_with(&options.username(&self.name))
            .await
            .expect("connect as the login role")
    }
}

impl Drop for LoginRole {
    fn drop(&mut self) {
        let name = self.name.clone();
        testkit::with_admin_from_drop(|mut admin| async move {
            drop_role(&mut admin, &name).await;
        });
    }
}

async fn drop_role(admin: &mut PgConnection, name: &str) {
    let _ =
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
            .bind(name)
            .execute(&mut *admin)
            .await;
    let _ = admin
        .execute(AssertSqlSafe(format!("DROP ROLE IF EXISTS {name}")))
        .await;
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
