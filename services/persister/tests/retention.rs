//! Retention on plain PostgreSQL: expired rows go, in small batches; newer rows stay.

use sqlx::PgPool;

use flick_persister::config::RetentionSettings;
use flick_persister::retention::sweep;
use flick_shared::testkit::TestDb;

async fn seed(pool: &PgPool) {
    // 1,000 expired and 10 recent samples; logs and alerts on both sides of their periods.
    sqlx::query(
        "INSERT INTO metrics (server_id, ts, cpu, memory, disk, network)
         SELECT 'old-' || (n % 10), now() - interval '40 days' - n * interval '1 second', 1, 1, 1, 1
         FROM generate_series(1, 1000) AS n",
    )
    .execute(pool)
    .await
    .expect("old metrics");
    sqlx::query(
        "INSERT INTO metrics (server_id, ts, cpu, memory, disk, network)
         SELECT 'new', now() - interval '29 days' + n * interval '1 hour', 1, 1, 1, 1
         FROM generate_series(1, 10) AS n",
    )
    .execute(pool)
    .await
    .expect("new metrics");
    sqlx::query(
        "INSERT INTO logs (id, server_id, ts, level, message)
         VALUES (gen_random_uuid(), 's', now() - interval '31 days', 'info', 'old'),
                (gen_random_uuid(), 's', now() - interval '1 day', 'info', 'new')",
    )
    .execute(pool)
    .await
    .expect("logs");
    sqlx::query(
        "INSERT INTO alerts (id, server_id, metric, severity, state, started_at, resolved_at)
         VALUES (gen_random_uuid(), 's', 'cpu', 'warning', 'resolved', now() - interval '400 days', now() - interval '399 days'),
                (gen_random_uuid(), 's', 'cpu', 'warning', 'firing',   now() - interval '400 days', NULL),
                (gen_random_uuid(), 's', 'cpu', 'warning', 'resolved', now() - interval '10 days',  now() - interval '9 days')",
    )
    .execute(pool)
    .await
    .expect("alerts");
    // Container lists, kept as long as the samples: 3 containers in an expired list, 2 recent.
    sqlx::query(
        "INSERT INTO containers (server_id, ts, name, container_id, state)
         SELECT 's', now() - interval '31 days', 'c' || n, 'id' || n, 'running'
         FROM generate_series(1, 3) AS n
         UNION ALL
         SELECT 's', now() - interval '1 day', 'c' || n, 'id' || n, 'running'
         FROM generate_series(1, 2) AS n",
    )
    .execute(pool)
    .await
    .expect("containers");
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn expired_rows_disappear_and_newer_rows_stay() {
    let db = TestDb::new().await;
    seed(&db.pool).await;
    let settings = RetentionSettings {
        delete_batch: 100,
        ..RetentionSettings::default()
    };
    let report = sweep(&db.pool, &settings, false).await.expect("sweep");
    assert_eq!(
        (report.metrics, report.logs, report.alerts),
        (1_000, 1, 1),
        "{report:?}"
    );
    assert_eq!(
        count(
            &db.pool,
            "SELECT count(*) FROM metrics WHERE server_id LIKE 'old-%'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &db.pool,
            "SELECT count(*) FROM metrics WHERE server_id = 'new'"
        )
        .await,
        10
    );
    assert_eq!(count(&db.pool, "SELECT count(*) FROM logs").await, 1);
    assert_eq!(report.containers, 3, "{report:?}");
    assert_eq!(count(&db.pool, "SELECT count(*) FROM containers").await, 2);
    assert_eq!(
        count(&db.pool, "SELECT count(*) FROM alerts").await,
        2,
        "a firing alert is kept however old; a recent resolved one too"
    );
    // A second sweep has nothing left to do.
    let again = sweep(&db.pool, &settings, false).await.expect("sweep");
    assert_eq!((again.metrics, again.logs, again.alerts), (0, 0, 0));
}

#[tokio::test]
async fn only_one_replica_sweeps_at_a_time() {
    let db = TestDb::new().await;
    seed(&db.pool).await;
    let mut other_replica = db.pool.acquire().await.expect("connection");
    sqlx::query("SELECT pg_advisory_lock(x'666c69636b'::bigint)")
        .execute(&mut *other_replica)
        .await
        .expect("lock");
    let report = sweep(&db.pool, &RetentionSettings::default(), false)
        .await
        .expect("sweep");
    assert!(report.skipped);
    assert_eq!(
        count(&db.pool, "SELECT count(*) FROM metrics").await,
        1_010,
        "nothing deleted"
    );
}
