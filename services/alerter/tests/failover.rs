//! Restarts and failover: the state of firing alerts survives, and every transition is published
//! exactly once.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Harness, cpu, minutes_ago, names, series};
use flick_alerter::evaluate::Evaluator;
use flick_shared::wire::{AlertEvent, MetricSample};

async fn leader_pid(harness: &Harness) -> u32 {
    let leader: String = sqlx::query_scalar("SELECT leader FROM alerter_progress")
        .fetch_one(&harness.db.pool)
        .await
        .expect("progress row");
    leader
        .rsplit(':')
        .next()
        .and_then(|pid| pid.parse().ok())
        .expect("host:pid")
}

#[tokio::test]
async fn an_alerter_killed_while_an_alert_fires_neither_refires_nor_forgets_to_resolve() {
    let harness = Harness::new().await;
    let mut first = harness.spawn_process();
    harness.wait_for_leader(0).await;
    let start = minutes_ago(5);
    harness.publish(&series("web-1", start, &[85.0; 10])).await;
    let events = harness.wait_for_events(1, Duration::from_secs(20)).await;
    assert_eq!(names(&events), ["cpu warning firing"]);

    first.kill();
    let mut second = harness.spawn_process();
    harness.wait_for_leader(1).await;
    // Still above the threshold: no second firing.
    harness
        .publish(&series(
            "web-1",
            start + chrono::Duration::seconds(10),
            &[86.0; 10],
        ))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        harness.stored_events().await.len(),
        1,
        "no second firing after the restart"
    );
    // Falls: the resolution still comes, for the same alert.
    harness
        .publish(&series(
            "web-1",
            start + chrono::Duration::seconds(20),
            &[30.0; 3],
        ))
        .await;
    let events = harness.wait_for_events(2, Duration::from_secs(20)).await;
    assert_eq!(
        names(&events),
        ["cpu warning firing", "cpu warning resolved"]
    );
    assert_eq!(events[0].alert_id, events[1].alert_id);
    second.kill();
}

/// One transition as the test compares them (ids are random, times and values are not).
fn key(event: &AlertEvent) -> (String, String, String, String, i64) {
    (
        event.server_id.to_string(),
        event.metric.clone(),
        format!("{:?}", event.severity),
        format!("{:?}", event.state),
        event.at.timestamp_millis(),
    )
}

#[tokio::test]
async fn a_standby_takes_over_within_ten_seconds_and_every_transition_happens_exactly_once() {
    let harness = Harness::new().await;
    let mut a = harness.spawn_process();
    let mut b = harness.spawn_process();
    let first_epoch = harness.wait_for_leader(0).await;

    // Five servers, live, each switching between 95 % and 40 % every 6 s, for 24 s.
    let mut published: Vec<MetricSample> = Vec::new();
    let started = Instant::now();
    let mut killed_at = None;
    for second in 0..24i64 {
        let now = flick_collector::now_millis();
        let batch: Vec<MetricSample> = (0..5)
            .map(|i| {
                let value = if ((second + 2 * i) / 6) % 2 == 0 {
                    95.0
                } else {
                    40.0
                };
                cpu(&format!("srv-{i}"), now, value)
            })
            .collect();
        harness.publish(&batch).await;
        published.extend(batch);
        if second == 8 {
            let leader = leader_pid(&harness).await;
            let victim = if a.id() == leader { &mut a } else { &mut b };
            victim.kill();
            killed_at = Some(Instant::now());
        }
        let next = started + Duration::from_secs(second as u64 + 1);
        tokio::time::sleep(next.saturating_duration_since(Instant::now())).await;
    }
    let killed_at = killed_at.expect("killed the leader");

    // The standby leads.
    let epoch = harness.wait_for_leader(first_epoch).await;
    assert!(epoch > first_epoch);
    assert!(killed_at.elapsed() < Duration::from_secs(60));

    // What a single, uninterrupted evaluator decides from the same samples.
    let mut reference = Evaluator::default();
    let rules = harness.config().alerter.default_rules();
    let mut expected = Vec::new();
    for sample in &published {
        reference.observe(sample, &rules, &mut expected);
    }
    assert!(
        expected.len() >= 20,
        "the scenario produces transitions: {}",
        expected.len()
    );

    let stored = harness
        .wait_for_events(expected.len(), Duration::from_secs(30))
        .await;
    let mut counts: HashMap<_, i32> = HashMap::new();
    for event in &stored {
        *counts.entry(key(event)).or_default() += 1;
    }
    let duplicates: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "transitions published twice: {duplicates:?}"
    );
    let mut got: Vec<_> = stored.iter().map(key).collect();
    let mut want: Vec<_> = expected.iter().map(key).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "every transition exactly once, none invented");
    a.kill();
    b.kill();
}

#[tokio::test]
async fn takeover_happens_within_ten_seconds_of_the_leader_dying() {
    let harness = Harness::new().await;
    let mut a = harness.spawn_process();
    let mut b = harness.spawn_process();
    let first_epoch = harness.wait_for_leader(0).await;
    let leader = leader_pid(&harness).await;
    let (victim, survivor) = if a.id() == leader {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let survivor_pid = survivor.id();
    victim.kill();
    let died = Instant::now();
    harness.wait_for_leader(first_epoch).await;
    let took = died.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "standby took {took:?} to take over"
    );
    assert_eq!(leader_pid(&harness).await, survivor_pid);
    // And it evaluates: a rising CPU fires.
    harness
        .publish(&series("web-9", minutes_ago(1), &[97.0; 5]))
        .await;
    let events = harness.wait_for_events(2, Duration::from_secs(20)).await;
    assert_eq!(
        names(&events),
        ["cpu warning firing", "cpu critical firing"]
    );
    a.kill();
    b.kill();
}

#[tokio::test]
async fn runs_with_the_alerter_identity_of_a_hub() {
    use flick_shared::natsauth::Role;
    let subjects = flick_shared::testkit::unique_subjects();
    let hub = flick_shared::testkit::HubServer::start(&subjects);
    let db = flick_shared::testkit::TestDb::new().await;
    let mut config = flick_alerter::Config {
        database: db.settings(),
        streams: flick_shared::testkit::stream_settings(),
        nats: hub.settings(Role::Alerter),
        ..Default::default()
    };
    config.alerter.for_secs = 1;
    config.alerter.ops_listen = String::new();
    let stop = flick_shared::shutdown::CancellationToken::new();
    let alerter = tokio::spawn(flick_alerter::run(config, stop.clone()));

    let watcher = hub.connect_as(Role::Integration).await;
    let mut alerts = watcher
        .subscribe(subjects.all_servers(flick_shared::subjects::StreamKind::Alerts))
        .await
        .expect("subscribe");
    watcher.flush().await.expect("flush");
    let collector = hub.connect_as(Role::Collector).await;
    let js = async_nats::jetstream::new(collector);
    flick_shared::testkit::eventually("the alerter leading", Duration::from_secs(20), || async {
        let count: Option<i64> = sqlx::query_scalar("SELECT max(epoch) FROM alerter_progress")
            .fetch_one(&db.pool)
            .await
            .ok()
            .flatten();
        count
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    flick_shared::testkit::publish_samples(
        &js,
        &subjects,
        &series("web-1", minutes_ago(1), &[99.0; 4]),
        true,
    )
    .await;
    let event: AlertEvent =
        flick_shared::testkit::next_json(&mut alerts, Duration::from_secs(20)).await;
    assert_eq!(event.metric, "cpu");
    stop.cancel();
    alerter
        .await
        .expect("join")
        .expect("the alerter ran with least privilege");
}

/// A consumer's leader can die with messages in flight to the alerter (a NATS node killed):
/// the consumer counts them delivered, the alerter never sees them. Another client pulling
/// from the alerter's consumer does the same, deterministically.
#[tokio::test]
async fn a_sample_handed_out_but_never_received_is_still_evaluated_and_alerts() {
    use async_nats::jetstream::consumer::PullConsumer;
    use flick_shared::subjects::{ALERTER_CONSUMER, StreamKind};
    use futures::StreamExt;

    let harness = Harness::new().await;
    let mut config = harness.config();
    config.alerter.for_secs = 0;
    config.alerter.batch_size = 5;
    config.alerter.offline_timeout_secs = 600;
    let alerter = harness.start(config);
    harness.wait_for_leader(0).await;

    let name = harness.subjects.stream_name(StreamKind::Metrics);
    let consumer: PullConsumer = harness
        .js
        .get_stream(&name)
        .await
        .expect("stream")
        .get_consumer(ALERTER_CONSUMER)
        .await
        .expect("the alerter's consumer");
    // Queued behind the alerter's own pull request, ahead of the next one it sends.
    let thief = tokio::spawn(async move {
        let mut messages = consumer
            .fetch()
            .max_messages(3)
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .expect("a pull");
        let mut taken = Vec::new();
        while let Some(Ok(message)) = messages.next().await {
            taken.push(message.info().expect("info").stream_sequence);
        }
        taken
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let now = chrono::Utc::now();
    let servers: Vec<String> = (0..40).map(|i| format!("spike-{i:02}")).collect();
    let samples: Vec<MetricSample> = servers.iter().map(|s| cpu(s, now, 95.0)).collect();
    harness.publish(&samples).await;
    let taken = thief.await.expect("the other client");
    assert!(
        !taken.is_empty(),
        "the other client was handed samples of the alerter's consumer"
    );

    let events = harness
        .wait_for_events(2 * servers.len(), Duration::from_secs(20))
        .await;
    let mut fired: HashMap<String, Vec<String>> = HashMap::new();
    for event in &events {
        fired
            .entry(event.server_id.to_string())
            .or_default()
            .push(names(std::slice::from_ref(event)).remove(0));
    }
    for server in &servers {
        let mut names = fired.remove(server).unwrap_or_default();
        names.sort();
        assert_eq!(
            names,
            ["cpu critical firing", "cpu warning firing"],
            "{server}'s 95 % fired once each (samples {taken:?} went to another client)"
        );
    }
    assert!(fired.is_empty(), "no other alerts: {fired:?}");
    harness.wait_until_evaluated().await;
    alerter.stop().await;
}

/// A sample of `server` at `at` carrying a list with one container in `state`.
fn with_container(server: &str, at: chrono::DateTime<chrono::Utc>, state: &str) -> MetricSample {
    MetricSample {
        containers: Some(vec![flick_shared::wire::ContainerUsage {
            id: "0123456789ab".into(),
            name: "web-1".into(),
            image: "nginx".into(),
            state: state.into(),
            health: None,
            exit_code: (state == "exited").then_some(137),
            restarts: 0,
            cpu_percent: 0.0,
            memory_bytes: 0,
            memory_limit_bytes: None,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            block_read_bytes: 0,
            block_write_bytes: 0,
        }]),
        ..cpu(server, at, 10.0)
    }
}

#[tokio::test]
async fn a_container_seen_running_before_a_restart_pages_once_when_it_stops_after_it() {
    let harness = Harness::new().await;
    let mut first = harness.spawn_process();
    harness.wait_for_leader(0).await;
    let start = minutes_ago(5);
    let at = |s: i64| start + chrono::Duration::seconds(s);
    // Seen running by the first alerter, which then dies.
    harness
        .publish(&[
            with_container("dock-1", at(0), "running"),
            with_container("dock-1", at(5), "running"),
        ])
        .await;
    harness.wait_until_evaluated().await;
    assert!(
        harness.stored_events().await.is_empty(),
        "running: no alert"
    );
    first.kill();

    // The next one knows it was running: its stop pages, once, however often it is listed.
    let mut second = harness.spawn_process();
    harness.wait_for_leader(1).await;
    harness
        .publish(&[
            with_container("dock-1", at(10), "exited"),
            with_container("dock-1", at(15), "exited"),
        ])
        .await;
    let events = harness.wait_for_events(1, Duration::from_secs(20)).await;
    assert_eq!(names(&events), ["container_stopped critical firing"]);
    assert_eq!(events[0].container.as_deref(), Some("web-1"));
    second.kill();

    // And a third resolves that very alert when it runs again.
    let mut third = harness.spawn_process();
    harness.wait_for_leader(2).await;
    harness
        .publish(&[
            with_container("dock-1", at(20), "exited"),
            with_container("dock-1", at(25), "running"),
        ])
        .await;
    let events = harness.wait_for_events(2, Duration::from_secs(20)).await;
    assert_eq!(
        names(&events),
        [
            "container_stopped critical firing",
            "container_stopped critical resolved"
        ]
    );
    assert_eq!(events[0].alert_id, events[1].alert_id);
    assert_eq!(events[1].container.as_deref(), Some("web-1"));
    third.kill();
}
