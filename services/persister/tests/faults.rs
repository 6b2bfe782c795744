//! Nothing lost, nothing twice: a persister killed, a database dropping connections or away,
//! two persisters sharing the work, and a graceful stop.

mod common;

use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, Executor, PgPool};

use common::{Harness, Replays, samples};
use flick_shared::testkit::{self, eventually};

/// The goal: what a killed persister held is stored within this long of its restart.
const CAUGHT_UP_WITHIN: Duration = Duration::from_secs(15);
/// Room for a loaded CI machine on top of the goal (the figure is printed).
const LOADED_MACHINE_MARGIN: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_persister_killed_mid_stream_is_caught_up_within_fifteen_seconds_of_its_restart() {
    let harness = Harness::new().await;
    // The default settings: batches of 5,000 or 1 s, `ack_wait` 10 s, in-progress acks.
    let defaults = [
        ("FLICK_PERSISTER__BATCH_SIZE", "5000"),
        ("FLICK_PERSISTER__FLUSH_INTERVAL_MS", "1000"),
    ];
    let mut first = harness.spawn_process(&defaults);

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
    let consumer = harness.metrics_consumer().await;
    eventually(
        "the first persister writing, with a batch in hand",
        Duration::from_secs(30),
        || {
            let mut consumer = consumer.clone();
            let harness = &harness;
            async move {
                let held = consumer.info().await.ok()?.num_ack_pending;
                (harness.count("metrics").await >= 3_000 && held >= 1_000).then_some(())
            }
        },
    )
    .await;
    let status = first.kill();
    assert!(!status.success(), "killed, not exited: {status}");
    let at_kill = harness.count("metrics").await;
    assert!(
        at_kill < total,
        "killed mid-stream ({at_kill} of {total} stored)"
    );
    let held_at_kill = harness
        .metrics_consumer()
        .await
        .info()
        .await
        .expect("info")
        .num_ack_pending;

    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mut second, ops) = harness.spawn_observed(&defaults);
    let restarted = Instant::now();
    publisher.await.expect("publisher");
    harness
        .wait_for_rows("metrics", total, Duration::from_secs(90))
        .await;
    let caught_up = restarted.elapsed();
    harness.wait_all_acked().await;
    let Replays {
        redelivered,
        rewritten,
    } = harness.replays(&ops).await;
    eprintln!(
        "[restart] killed with {at_kill} of {total} rows stored and {held_at_kill} messages \
         held unacknowledged; every sample stored {:.1} s after the restart; {redelivered} \
         redelivered, {rewritten} of them already stored (no-op writes)",
        caught_up.as_secs_f64()
    );
    assert!(
        caught_up < CAUGHT_UP_WITHIN + LOADED_MACHINE_MARGIN,
        "every sample stored {caught_up:?} after the restart (goal {CAUGHT_UP_WITHIN:?})"
    );
    assert!(redelivered > 0, "what the killed persister held comes back");
    assert!(
        redelivered as usize <= held_at_kill + 1_000,
        "only what the killed persister held comes back: {redelivered} redelivered, {held_at_kill} held"
    );
    assert!(
        rewritten <= redelivered,
        "a sample written twice was delivered twice: {rewritten} rewritten, {redelivered} redelivered"
    );
    assert_eq!(harness.count("metrics").await, total);
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
    let (mut persister, ops) = harness.spawn_observed(&[]);
    // Started, migrations applied: the faults below are for a running persister (one whose
    // start-up connection is cut exits, and its supervisor restarts it).
    testkit::wait_until_ok(&format!("{ops}/readyz"), Duration::from_secs(30)).await;
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
    // … then the database refuses every connection for longer than `ack_wait` (10 s): the
    // batches held meanwhile are kept alive, not redelivered.
    admin
        .execute(AssertSqlSafe(format!(
            "ALTER DATABASE {database} ALLOW_CONNECTIONS false"
        )))
        .await
        .expect("disallow connections");
    terminate_connections(&admin, &database).await;
    let during_outage = harness_count_via(&admin, &database).await;
    tokio::time::sleep(OUTAGE).await;
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
    let Replays {
        redelivered,
        rewritten,
    } = harness.replays(&ops).await;
    let kept_alive = harness
        .counter(&ops, "flick_persister_progress_acks_total")
        .await;
    eprintln!(
        "[outage] {total} samples, database away {OUTAGE:?}: {kept_alive} in-progress acks, \
         {redelivered} redelivered, {rewritten} written twice (no-ops)"
    );
    assert!(
        kept_alive > 0,
        "held batches were kept alive through the outage"
    );
    // Only what sat in the pull buffer, not yet taken into a batch, can time out: at most two
    // pulls (500 messages each, `persister.batch_size`), never the batches the writers held.
    assert!(
        redelivered <= 1_000,
        "{redelivered} messages redelivered during a {OUTAGE:?} outage"
    );
    // Pulling pauses while every writer is stuck, so nothing is delivered twice and written
    // twice; one batch may be, when a cut connection lost the answer to its commit.
    assert!(
        rewritten <= 500,
        "{rewritten} written twice ({redelivered} redelivered)"
    );
    persister.signal("TERM");
    assert!(persister.wait_exit(Duration::from_secs(20)).await.success());
}

/// Longer than the consumer's `ack_wait` (10 s).
const OUTAGE: Duration = Duration::from_secs(15);

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
    let (mut first, first_ops) = harness.spawn_observed(&[]);
    let (mut second, second_ops) = harness.spawn_observed(&[]);
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
    // The primary key would hide a sample written by both: the counters do not.
    let mut written = 0;
    for ops in [&first_ops, &second_ops] {
        assert_eq!(
            harness.replays(ops).await,
            Replays {
                redelivered: 0,
                rewritten: 0
            },
            "a healthy replica's messages went to another one, or were written twice"
        );
        written += harness
            .counter(ops, "flick_persister_rows_written_total")
            .await;
    }
    assert_eq!(
        written,
        all.len() as u64,
        "each sample written by exactly one replica"
    );
    for persister in [&mut first, &mut second] {
        persister.signal("TERM");
        assert!(persister.wait_exit(Duration::from_secs(20)).await.success());
    }
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
