//! What reaches a person: one page per incident, grouped, silenced, never twice across a
//! leader change. Real alerter, real receivers on loopback.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use chrono::Utc;
use uuid::Uuid;

use common::{Harness, cpu, minutes_ago, series};
use flick_alerter::Config;
use flick_shared::testkit::eventually;
use flick_shared::wire::{AlertEvent, AlertSeverity, AlertState};

/// A receiver that takes everything and keeps each notice's transitions.
#[derive(Clone, Default)]
struct Receiver {
    notices: Arc<Mutex<Vec<Vec<AlertEvent>>>>,
}

async fn receive(State(receiver): State<Receiver>, body: Bytes) {
    let value: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let events = match value.get("events") {
        Some(events) => serde_json::from_value(events.clone()).expect("events"),
        None => vec![serde_json::from_value(value).expect("an AlertEvent")],
    };
    receiver.notices.lock().expect("lock").push(events);
}

impl Receiver {
    async fn start(pool: &sqlx::PgPool, name: &str) -> Self {
        let receiver = Receiver::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        sqlx::query("INSERT INTO notification_channels (id, name, url) VALUES ($1, $2, $3)")
            .bind(Uuid::new_v4())
            .bind(name)
            .bind(url)
            .execute(pool)
            .await
            .expect("insert a channel");
        receiver
    }

    fn notices(&self) -> Vec<Vec<AlertEvent>> {
        self.notices.lock().expect("lock").clone()
    }

    async fn wait_for(&self, count: usize) -> Vec<Vec<AlertEvent>> {
        eventually(&format!("{count} notices"), Duration::from_secs(30), || {
            let notices = self.notices();
            async move { (notices.len() >= count).then_some(()) }
        })
        .await;
        // Anything more that was coming.
        tokio::time::sleep(Duration::from_secs(3)).await;
        self.notices()
    }
}

fn described(notices: &[Vec<AlertEvent>]) -> Vec<Vec<String>> {
    notices
        .iter()
        .map(|events| {
            events
                .iter()
                .map(|e| {
                    format!(
                        "{} {} {:?} {:?}",
                        e.server_id, e.metric, e.severity, e.state
                    )
                    .to_lowercase()
                })
                .collect()
        })
        .collect()
}

fn config(harness: &Harness, group_secs: u64, offline_secs: u32) -> Config {
    let mut config = harness.config();
    config.notify.allow_hosts = vec!["127.0.0.1".into()];
    config.alerter.notify_group_secs = group_secs;
    config.alerter.offline_timeout_secs = offline_secs;
    config
}

#[tokio::test]
async fn ninety_seven_percent_cpu_pages_each_channel_once_with_the_critical() {
    let harness = Harness::new().await;
    let ops = Receiver::start(&harness.db.pool, "ops").await;
    let chat = Receiver::start(&harness.db.pool, "chat").await;
    let alerter = harness.start(config(&harness, 0, 600));
    harness.wait_for_leader(0).await;
    harness
        .publish(&series("web-1", minutes_ago(2), &[97.0; 5]))
        .await;

    let events = harness.wait_for_events(2, Duration::from_secs(20)).await;
    assert_eq!(
        events.len(),
        2,
        "warning and critical both recorded and published"
    );
    for receiver in [&ops, &chat] {
        let notices = receiver.wait_for(1).await;
        assert_eq!(
            described(&notices),
            [["web-1 cpu critical firing"]],
            "one notice, the critical one"
        );
    }
    alerter.stop().await;
}

#[tokio::test]
async fn a_server_that_goes_silent_pages_offline_and_not_its_metrics() {
    let harness = Harness::new().await;
    let ops = Receiver::start(&harness.db.pool, "ops").await;
    let alerter = harness.start(config(&harness, 8, 3));
    harness.wait_for_leader(0).await;
    // Hot, then nothing: cpu fires first, offline follows within the grouping window.
    let now = Utc::now() - chrono::Duration::seconds(5);
    let samples: Vec<_> = (0..5)
        .map(|i| cpu("web-1", now + chrono::Duration::seconds(i), 97.0))
        .collect();
    harness.publish(&samples).await;

    let notices = ops.wait_for(1).await;
    assert_eq!(described(&notices), [["web-1 offline critical firing"]]);
    let events = harness.stored_events().await;
    assert!(
        events
            .iter()
            .any(|e| e.metric == "cpu" && e.severity == AlertSeverity::Critical),
        "the cpu alert is still recorded and published: {events:?}"
    );
    alerter.stop().await;
}

#[tokio::test]
async fn fifty_servers_silenced_by_their_network_at_once_are_one_grouped_message() {
    let harness = Harness::new().await;
    let ops = Receiver::start(&harness.db.pool, "ops").await;
    let alerter = harness.start(config(&harness, 6, 3));
    harness.wait_for_leader(0).await;
    let now = Utc::now();
    let samples: Vec<_> = (0..50)
        .map(|i| cpu(&format!("edge-{i:02}"), now, 20.0))
        .collect();
    harness.publish(&samples).await;

    let notices = ops.wait_for(1).await;
    assert_eq!(notices.len(), 1, "one message: {:?}", described(&notices));
    let mut servers: Vec<String> = notices[0]
        .iter()
        .map(|e| {
            assert_eq!(
                (e.metric.as_str(), e.state),
                ("offline", AlertState::Firing)
            );
            e.server_id.to_string()
        })
        .collect();
    servers.sort();
    servers.dedup();
    assert_eq!(servers.len(), 50, "naming every server once");
    alerter.stop().await;
}

async fn user(pool: &sqlx::PgPool, email: &str, role: &str) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query("INSERT INTO users (id, email, password_hash, role) VALUES ($1, $2, 'x', $3)")
        .bind(id)
        .bind(email)
        .bind(role)
        .execute(pool)
        .await
        .expect("a user");
    id
}

async fn server(pool: &sqlx::PgPool, id: &str, owner: Uuid) {
    sqlx::query("INSERT INTO servers (id, name, owner_id) VALUES ($1, $1, $2)")
        .bind(id)
        .bind(owner)
        .execute(pool)
        .await
        .expect("a server");
}

async fn silence(pool: &sqlx::PgPool, owner: Uuid, server: &str, until: chrono::DateTime<Utc>) {
    sqlx::query(
        "INSERT INTO silences (id, owner_id, server_id, starts_at, ends_at, author, comment)
         VALUES ($1, $2, $3, now() - interval '1 minute', $4, 'test', 'maintenance')",
    )
    .bind(Uuid::new_v4())
    .bind(owner)
    .bind(server)
    .bind(until)
    .execute(pool)
    .await
    .expect("a silence");
}

#[tokio::test]
async fn a_silence_withholds_notices_not_events_ends_on_time_and_covers_only_its_owners_servers() {
    let harness = Harness::new().await;
    let pool = &harness.db.pool;
    let ada = user(pool, "ada@example.com", "user").await;
    let bob = user(pool, "bob@example.com", "user").await;
    server(pool, "ada-1", ada).await;
    server(pool, "ada-2", ada).await;
    let ends = Utc::now() + chrono::Duration::seconds(8);
    silence(pool, ada, "ada-1", ends).await;
    // Bob cannot silence Ada's server.
    silence(pool, bob, "ada-2", ends).await;
    let ops = Receiver::start(pool, "ops").await;
    let alerter = harness.start(config(&harness, 0, 600));
    harness.wait_for_leader(0).await;
    harness
        .publish(&series("ada-1", minutes_ago(2), &[97.0; 5]))
        .await;
    harness
        .publish(&series("ada-2", minutes_ago(2), &[97.0; 5]))
        .await;

    let notices = ops.wait_for(1).await;
    assert_eq!(
        described(&notices),
        [["ada-2 cpu critical firing"]],
        "Bob's silence does not cover Ada's server; Ada's does"
    );
    let events = harness.stored_events().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.server_id.as_str() == "ada-1")
            .count(),
        2,
        "the silenced server's transitions are recorded and published"
    );
    // When the silence ends, the alert that still fires is sent, on time.
    let notices = eventually(
        "the notice after the silence",
        Duration::from_secs(20),
        || {
            let notices = ops.notices();
            async move { (notices.len() >= 2).then_some(notices) }
        },
    )
    .await;
    let late = Utc::now() - ends;
    assert_eq!(described(&notices[1..2]), [["ada-1 cpu critical firing"]]);
    assert!(
        late < chrono::Duration::seconds(3),
        "sent {late} after the silence ended"
    );
    alerter.stop().await;
}

#[tokio::test]
async fn a_new_leader_neither_repages_nor_forgets_where_the_resolution_goes() {
    let harness = Harness::new().await;
    let ops = Receiver::start(&harness.db.pool, "ops").await;
    let first = harness.start(config(&harness, 0, 600));
    let epoch = harness.wait_for_leader(0).await;
    let start = minutes_ago(3);
    harness.publish(&series("web-1", start, &[97.0; 5])).await;
    ops.wait_for(1).await;
    first.stop().await;

    let second = harness.start(config(&harness, 0, 600));
    harness.wait_for_leader(epoch).await;
    harness
        .publish(&series(
            "web-1",
            start + chrono::Duration::seconds(5),
            &[20.0; 5],
        ))
        .await;
    let notices = ops.wait_for(2).await;
    assert_eq!(
        described(&notices),
        [
            vec!["web-1 cpu critical firing"],
            vec!["web-1 cpu critical resolved"]
        ],
        "the firing once, its resolution once"
    );
    second.stop().await;
}

/// Asks for a test notice on every channel, as "Send test" does; the notice's id.
async fn ask_for_a_test(pool: &sqlx::PgPool) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO notification_tests (id, channel_id) SELECT $1, id FROM notification_channels",
    )
    .bind(id)
    .execute(pool)
    .await
    .expect("ask for a test");
    id
}

#[tokio::test]
async fn send_test_goes_through_the_leader_and_every_attempt_is_recorded() {
    let harness = Harness::new().await;
    let ops = Receiver::start(&harness.db.pool, "ops").await;
    let alerter = harness.start(config(&harness, 0, 600));
    harness.wait_for_leader(0).await;
    let id = ask_for_a_test(&harness.db.pool).await;
    let notices = ops.wait_for(1).await;
    assert_eq!(
        notices,
        [Vec::<AlertEvent>::new()],
        "one test notice, no transitions"
    );
    let (status, test, attempts): (String, bool, i64) = sqlx::query_as(
        "SELECT status, test, (SELECT count(*) FROM notification_attempts WHERE notification_id = n.id)
         FROM notifications n WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&harness.db.pool)
    .await
    .expect("the notice is recorded");
    assert_eq!((status.as_str(), test, attempts), ("delivered", true, 1));
    alerter.stop().await;
}

#[tokio::test]
async fn a_test_asked_for_a_channel_loaded_mid_step_is_still_delivered() {
    let harness = Harness::new().await;
    let alerter = harness.start(config(&harness, 0, 600));
    harness.wait_for_leader(0).await;
    // Hold the dispatcher in the middle of a step: after it took its snapshot of the channels
    // (none yet), before it takes tests off the queue. The leader reads no acknowledgements, so
    // it keeps reloading the channels meanwhile.
    let mut held = harness.db.pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE alert_acks IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *held)
        .await
        .expect("lock alert_acks");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let ops = Receiver::start(&harness.db.pool, "ops").await;
    let id = ask_for_a_test(&harness.db.pool).await;
    // Several channel reloads (every 500 ms here) while the step waits.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    held.rollback().await.expect("release alert_acks");

    let notices = ops.wait_for(1).await;
    assert_eq!(notices, [Vec::<AlertEvent>::new()], "the test notice");
    let status: String = sqlx::query_scalar("SELECT status FROM notifications WHERE id = $1")
        .bind(id)
        .fetch_one(&harness.db.pool)
        .await
        .expect("the test is recorded");
    assert_eq!(status, "delivered");
    alerter.stop().await;
}
