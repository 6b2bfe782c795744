//! Nothing lost, nothing twice: a persister killed, a database dropping connections or away,
//! two persisters sharing the work, and a graceful stop.

mod common;

use std::time::Duration;

use sqlx::{AssertSqlSafe, Executor, PgPool};

use common::{Harness, samples};
use flick_shared::testkit::{self, eventually};

#[tokio::test]
async fn a_persister_killed_mid_stream_and_restarted_stores_every_sample_once() {
    let harness = Harness::new().await;
    let quick_redelivery = [("FLICK_PERSISTER__ACK_WAIT_SECS", "3")];
    let mut first = harness.spawn_process(&quick_redelivery);

    let all = samples(100, 300);
    let total = all.len() as i64;
    let publisher = {
        let harness_js = harness.js.clone();
        let subjects = harness.subjects.clone();
        tokio::spawn(async move {
            for chunk in all.chunks(1_000) {
                publish_chunk(&harness_js, &subjects, chunk).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    eventually(
        "the first persister writing",
        Duration::from_secs(30),
        || async { (harness.count("metrics").await >= 3_000).then_some(()) },
    )
    .await;
    let status = first.kill();
    assert!(!status.success(), "killed, not exited: {status}");
    let at_kill = harness.count("metrics").await;
    assert!(
        at_kill < total,
        "killed mid-stream ({at_kill} of {total} stored)"
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut second = harness.spawn_process(&quick_redelivery);
    publisher.await.expect("publisher");
    harness
        .wait_for_rows("metrics", total, Duration::from_secs(90))
        .await;
    harness.wait_all_acked().await;
    second.signal("TERM");
    assert!(second.wait_exit(Duration::from_secs(20)).await.success());
}

async fn publish_chunk(
    js: &async_nats::jetstream::Context,
    subjects: &flick_shared::Subjects,
    chunk: &[flick_shared::wire::MetricSample],
) {
    testkit::publish_samples(js, subjects, chunk, true).await;
}

#[tokio::test]
async fn database_connections_dropped_and_a_database_outage_lose_nothing() {
    let harness = Harness::new().await;
    let persister = harness.start(harness.config());
    let admin = PgPool::connect(&testkit::database_url())
        .await
        .expect("admin connection");
    let database = harness.db.name().to_owned();

    let all = samples(50, 200);
    let total = all.len() as i64;
    let publisher = {
        let js = harness.js.clone();
        let subjects = harness.subjects.clone();
        tokio::spawn(async move {
            for chunk in all.chunks(500) {
                publish_chunk(&js, &subjects, chunk).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // Connections cut again and again while samples flow …
    for _ in 0..8 {
        terminate_connections(&admin, &database).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // … then the database refuses every connection for three seconds.
    admin
        .execute(AssertSqlSafe(format!(
            "ALTER DATABASE {database} ALLOW_CONNECTIONS false"
        )))
        .await
        .expect("disallow connections");
    terminate_connections(&admin, &database).await;
    let during_outage = harness_count_via(&admin, &database).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    admin
        .execute(AssertSqlSafe(format!(
            "ALTER DATABASE {database} ALLOW_CONNECTIONS true"
        )))
        .await
        .expect("allow connections");
    assert!(
        during_outage.is_none(),
        "the database really refused connections"
    );

    publisher.await.expect("publisher");
    harness
        .wait_for_rows("metrics", total, Duration::from_secs(90))
        .await;
    harness.wait_all_acked().await;
    persister.stop().await;
}

async fn terminate_connections(admin: &PgPool, database: &str) {
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(database)
        .execute(admin)
        .await
        .expect("terminate connections");
}

/// Counts rows through a new connection, `None` when the database refuses it.
async fn harness_count_via(admin: &PgPool, database: &str) -> Option<i64> {
    let options = admin.connect_options().as_ref().clone().database(database);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(options)
        .await
        .ok()?;
    sqlx::query_scalar("SELECT count(*) FROM metrics")
        .fetch_one(&pool)
        .await
        .ok()
}

#[tokio::test]
async fn two_persisters_share_one_consumer_and_store_every_sample_once() {
    let harness = Harness::new().await;
    let first = harness.start(harness.config());
    let second = harness.start(harness.config());
    let consumer = harness.metrics_consumer().await;
    eventually("both persisters pulling", Duration::from_secs(20), || {
        let mut consumer = consumer.clone();
        async move {
            let info = consumer.info().await.ok()?;
            (info.num_waiting >= 2).then_some(())
        }
    })
    .await;

    let all = samples(200, 100);
    harness.publish(&all).await;
    harness
        .wait_for_rows("metrics", all.len() as i64, Duration::from_secs(60))
        .await;
    harness.wait_all_acked().await;
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn sigterm_commits_the_batch_in_hand_and_exits_zero() {
    let harness = Harness::new().await;
    // A batch that would wait a minute to be written on its own.
    let mut persister = harness.spawn_process(&[
        ("FLICK_PERSISTER__FLUSH_INTERVAL_MS", "60000"),
        ("FLICK_PERSISTER__BATCH_SIZE", "50000"),
        ("FLICK_PERSISTER__MAX_ACK_PENDING", "200000"),
        ("FLICK_PERSISTER__ACK_WAIT_SECS", "120"),
    ]);
    let all = samples(30, 100);
    harness.publish(&all).await;
    let consumer = harness.metrics_consumer().await;
    eventually(
        "every sample delivered and held",
        Duration::from_secs(20),
        || {
            let mut consumer = consumer.clone();
            async move {
                let info = consumer.info().await.ok()?;
                (info.num_ack_pending == 3_000).then_some(())
            }
        },
    )
    .await;
    assert_eq!(
        harness.count("metrics").await,
        0,
        "nothing written before the stop"
    );

    persister.signal("TERM");
    let status = persister.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "exit status {status}");
    assert_eq!(harness.count("metrics").await, 3_000);
    harness.wait_all_acked().await;
}
