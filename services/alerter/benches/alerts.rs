//! Alerter throughput and latency.
//!
//! 1. The state machine alone: samples per second through `Evaluator::observe`.
//! 2. The whole consumer: a backlog of samples from 1,000 simulated servers replayed by the
//!    release `flick-alerter` binary (pull, decode, evaluate, commit, ack).
//! 3. Latency: 1,000 servers publishing live at 1 Hz, 100 of them crossing the CPU thresholds
//!    every 7 s; for each `AlertEvent` received, the time from the publication of the sample that
//!    completed the transition (its timestamp) to the event's arrival: p50, p99, max.
//!
//! 4. Sample-to-notification latency: 50 servers crossing the CPU thresholds every 3 s, `for: 0`,
//!    grouping off, a webhook receiver on loopback; for each transition in a notice, the time
//!    from the sample's timestamp to the receiver accepting it: p50, p99, max.
//!
//! `cargo bench -p flick-alerter --bench alerts` (`FLICK_BENCH_SECS` sets the live phases, 60 s;
//! `FLICK_BENCH_PHASE=notify` runs phase 4 alone).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;

use flick_alerter::evaluate::Evaluator;
use flick_collector::simulate::Simulation;
use flick_shared::subjects::StreamKind;
use flick_shared::testkit::{self, Process, TestDb};
use flick_shared::wire::{AlertEvent, MetricSample, ServerId};

const SERVERS: usize = 1_000;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn cpu_ticks(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn spawn_alerter(db: &TestDb, prefix: &str) -> Process {
    spawn_alerter_with(db, prefix, &[])
}

fn spawn_alerter_with(db: &TestDb, prefix: &str, env: &[(&str, &str)]) -> Process {
    Process::spawn(
        Command::new(env!("CARGO_BIN_EXE_flick-alerter"))
            .envs(env.iter().copied())
            .env("NATS_URL", testkit::nats_url())
            .env("FLICK_NATS__PREFIX", prefix)
            .env("DATABASE_URL", db.url())
            .env("FLICK_STREAMS__METRICS_MAX_BYTES", (2u64 << 30).to_string())
            .env("FLICK_STREAMS__ALERTS_MAX_BYTES", (64u64 << 20).to_string())
            .env("FLICK_STREAMS__LOGS_MAX_BYTES", (8u64 << 20).to_string())
            .env("FLICK_ALERTER__FOR_SECS", "2")
            .env("FLICK_ALERTER__OFFLINE_TIMEOUT_SECS", "30")
            .env("FLICK_ALERTER__OPS_LISTEN", "")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null()),
    )
}

async fn committed_sequence(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT COALESCE(max(sequence), 0) FROM alerter_progress")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn wait_leading(db: &TestDb) {
    let started = Instant::now();
    loop {
        let epoch: Option<i64> = sqlx::query_scalar("SELECT max(epoch) FROM alerter_progress")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        if epoch.is_some() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no alerter leading"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() {
    let live_secs: u64 = std::env::var("FLICK_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);

    if std::env::var("FLICK_BENCH_PHASE").as_deref() == Ok("notify") {
        notification_latency(live_secs).await;
        return;
    }

    // 1. The state machine alone.
    let config = flick_alerter::Config::default();
    let rules = config.alerter.default_rules();
    let mut simulation = Simulation::new(SERVERS, 20, 3);
    let start = Utc::now() - chrono::Duration::hours(1);
    let samples: Vec<MetricSample> = (0..500)
        .flat_map(|step| {
            let at = start + chrono::Duration::seconds(step);
            (0..SERVERS)
                .map(|s| simulation.sample(s, at))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut evaluator = Evaluator::default();
    let mut events = Vec::new();
    let started = Instant::now();
    for sample in &samples {
        evaluator.observe(sample, &rules, &mut events);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "state machine:   {:>10.0} samples/s ({} samples, {} transitions)",
        samples.len() as f64 / secs,
        samples.len(),
        events.len()
    );

    // 2. The whole consumer, replaying a backlog.
    let db = TestDb::new().await;
    let subjects = testkit::unique_subjects();
    let client = testkit::connect().await;
    let js = async_nats::jetstream::new(client.clone());
    let mut streams = testkit::stream_settings();
    streams.metrics_max_bytes = 2 << 30;
    streams.alerts_max_bytes = 64 << 20;
    flick_shared::streams::ensure_streams(&js, &subjects, &streams, &StreamKind::ALL)
        .await
        .unwrap();
    let mut alerter = spawn_alerter(&db, subjects.prefix());
    wait_leading(&db).await;
    alerter.signal("TERM");
    alerter.wait_exit(Duration::from_secs(20)).await;
    testkit::publish_samples(&js, &subjects, &samples, true).await;
    let last = js
        .get_stream(subjects.stream_name(StreamKind::Metrics))
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .last_sequence as i64;
    let alerter = spawn_alerter(&db, subjects.prefix());
    let started = Instant::now();
    while committed_sequence(&db).await < last {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the alerter stalled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "whole consumer:  {:>10.0} samples/s ({} samples replayed in {secs:.1} s, start-up included)",
        samples.len() as f64 / secs,
        samples.len()
    );

    // 3. Latency, live.
    let mut alerts = client
        .subscribe(subjects.all_servers(StreamKind::Alerts))
        .await
        .unwrap();
    client.flush().await.unwrap();
    let (stop_listening, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let latencies = tokio::spawn(async move {
        let mut latencies = Vec::new();
        loop {
            tokio::select! {
                _ = &mut stopped => return latencies,
                message = alerts.next() => {
                    let Some(message) = message else { return latencies };
                    let received = Utc::now();
                    if let Ok(event) = serde_json::from_slice::<AlertEvent>(&message.payload)
                        && event.metric == "cpu"
                    {
                        latencies.push((received - event.at).num_microseconds().unwrap_or(0) as f64 / 1_000.0);
                    }
                }
            }
        }
    });
    let ids: Vec<ServerId> = (0..SERVERS)
        .map(|i| ServerId::parse(format!("live-{i:04}")).unwrap())
        .collect();
    let pid = alerter.id();
    let cpu_before = cpu_ticks(pid);
    let live_started = Instant::now();
    let slots = 10u64;
    for tick in 0..live_secs * slots {
        let second = (tick / slots) as i64;
        let slot = (tick % slots) as usize;
        let at = flick_collector::now_millis();
        let batch: Vec<MetricSample> = (slot..SERVERS)
            .step_by(slots as usize)
            .map(|i| {
                let crossing = i % 10 == 0 && ((second + i as i64) / 7) % 2 == 0;
                let cpu = if crossing { 96.0 } else { 30.0 };
                MetricSample::minimal(ids[i].clone(), at, cpu, 40.0, 50.0, 1_000)
            })
            .collect();
        testkit::publish_samples(&js, &subjects, &batch, true).await;
        let next = live_started + Duration::from_millis((tick + 1) * 1_000 / slots);
        tokio::time::sleep(next.saturating_duration_since(Instant::now())).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_secs = (cpu_ticks(pid) - cpu_before) / 100.0;
    let rss = rss_mb(pid);
    drop(alerter);
    let _ = stop_listening.send(());
    let mut latencies = latencies.await.unwrap();
    latencies.sort_by(f64::total_cmp);
    println!(
        "latency, {SERVERS} servers at 1 Hz for {live_secs} s: {} transitions, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal: p99 < 50 ms)",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "alerter while live: {:.1} % of one core, peak RSS {rss:.0} MB",
        cpu_secs / live_started.elapsed().as_secs_f64() * 100.0
    );
    let _ = js
        .delete_stream(subjects.stream_name(StreamKind::Metrics))
        .await;
    notification_latency(live_secs).await;
}

/// Phase 4: from a sample's timestamp to a webhook receiver on loopback accepting its notice.
async fn notification_latency(live_secs: u64) {
    use std::sync::{Arc, Mutex};

    let db = TestDb::new().await;
    let subjects = testkit::unique_subjects();
    let client = testkit::connect().await;
    let js = async_nats::jetstream::new(client.clone());
    flick_shared::streams::ensure_streams(
        &js,
        &subjects,
        &testkit::stream_settings(),
        &StreamKind::ALL,
    )
    .await
    .unwrap();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let recorded = latencies.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let recorded = recorded.clone();
            async move {
                let received = Utc::now();
                let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let events: Vec<AlertEvent> = match value.get("events") {
                    Some(events) => serde_json::from_value(events.clone()).unwrap_or_default(),
                    None => serde_json::from_value(value).into_iter().collect(),
                };
                let mut recorded = recorded.lock().unwrap();
                for event in events {
                    recorded.push(
                        (received - event.at).num_microseconds().unwrap_or(0) as f64 / 1_000.0,
                    );
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    sqlx::query("INSERT INTO notification_channels (id, name, url) VALUES ($1, 'bench', $2)")
        .bind(uuid::Uuid::new_v4())
        .bind(&url)
        .execute(&db.pool)
        .await
        .unwrap();
    let _alerter = spawn_alerter_with(
        &db,
        subjects.prefix(),
        &[
            ("FLICK_ALERTER__FOR_SECS", "0"),
            ("FLICK_ALERTER__NOTIFY_GROUP_SECS", "0"),
            ("FLICK_NOTIFY__ALLOW_HOSTS", "127.0.0.1"),
        ],
    );
    wait_leading(&db).await;
    let servers: Vec<ServerId> = (0..50)
        .map(|i| ServerId::parse(format!("page-{i:02}")).unwrap())
        .collect();
    let started = Instant::now();
    for second in 0..live_secs as i64 {
        let at = flick_collector::now_millis();
        let batch: Vec<MetricSample> = servers
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let hot = ((second + i as i64) / 3) % 2 == 0;
                MetricSample::minimal(
                    id.clone(),
                    at,
                    if hot { 97.0 } else { 20.0 },
                    40.0,
                    50.0,
                    1_000,
                )
            })
            .collect();
        testkit::publish_samples(&js, &subjects, &batch, true).await;
        let next = started + Duration::from_secs(second as u64 + 1);
        tokio::time::sleep(next.saturating_duration_since(Instant::now())).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort_by(f64::total_cmp);
    println!(
        "sample to notification, 50 servers crossing every 3 s for {live_secs} s (for: 0, grouping off, webhook on loopback): {} transitions notified, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (goal: p99 < 2 s)",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
}
