//! What the alerter's tests share: an alerter on a fresh database and a private prefix, samples
//! with chosen CPU values and times, and the alert events it publishes.
#![allow(dead_code)]

use std::time::Duration;

use async_nats::jetstream;
use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;

use flick_alerter::Config;
use flick_shared::shutdown::CancellationToken;
use flick_shared::subjects::StreamKind;
use flick_shared::testkit::{self, TestBed, eventually};
use flick_shared::wire::{AlertEvent, MetricSample, ServerId};

/// A [`TestBed`] with the helpers of these tests.
pub struct Harness {
    bed: TestBed,
}

impl std::ops::Deref for Harness {
    type Target = TestBed;
    fn deref(&self) -> &TestBed {
        &self.bed
    }
}

impl Harness {
    pub async fn new() -> Self {
        Self {
            bed: TestBed::new().await,
        }
    }

    /// Quick settings: `for` 2 s, offline after 3 s, fast lease polling and reloads.
    pub fn config(&self) -> Config {
        let mut config = Config {
            nats: testkit::nats_settings(self.subjects.prefix()),
            database: self.db.settings(),
            streams: testkit::stream_settings(),
            ..Config::default()
        };
        let a = &mut config.alerter;
        a.for_secs = 2;
        a.offline_timeout_secs = 3;
        a.lease_poll_ms = 200;
        a.reload_interval_ms = 500;
        a.notify_group_secs = 0;
        a.ops_listen = String::new();
        config
    }

    pub fn start(&self, config: Config) -> Running {
        let stop = CancellationToken::new();
        let task = tokio::spawn(flick_alerter::run(config, stop.clone()));
        Running { stop, task }
    }

    /// The real binary with this harness's settings (for SIGKILL).
    pub fn spawn_process(&self) -> testkit::Process {
        let s = testkit::stream_settings();
        testkit::Process::spawn(
            std::process::Command::new(env!("CARGO_BIN_EXE_flick-alerter"))
                .env("NATS_URL", testkit::nats_url())
                .env("FLICK_NATS__PREFIX", self.subjects.prefix())
                .env("DATABASE_URL", self.db.url())
                .env(
                    "FLICK_STREAMS__METRICS_MAX_BYTES",
                    s.metrics_max_bytes.to_string(),
                )
                .env(
                    "FLICK_STREAMS__ALERTS_MAX_BYTES",
                    s.alerts_max_bytes.to_string(),
                )
                .env(
                    "FLICK_STREAMS__LOGS_MAX_BYTES",
                    s.logs_max_bytes.to_string(),
                )
                .env(
                    "FLICK_STREAMS__PROCESSES_MAX_BYTES",
                    s.processes_max_bytes.to_string(),
                )
                .env("FLICK_ALERTER__FOR_SECS", "2")
                .env("FLICK_ALERTER__OFFLINE_TIMEOUT_SECS", "3")
                .env("FLICK_ALERTER__LEASE_POLL_MS", "200")
                .env("FLICK_ALERTER__RELOAD_INTERVAL_MS", "500")
                .env("FLICK_ALERTER__NOTIFY_GROUP_SECS", "0")
                .env("FLICK_ALERTER__OPS_LISTEN", "")
                .env(
                    "RUST_LOG",
                    std::env::var("TEST_LOG").unwrap_or_else(|_| "error".into()),
                ),
        )
    }

    /// The leadership epoch in force, once a leader has created its consumer.
    pub async fn wait_for_leader(&self, after_epoch: i64) -> i64 {
        let stream = self
            .js
            .get_stream(self.subjects.stream_name(StreamKind::Metrics))
            .await
            .expect("stream");
        eventually("an alerter leading", Duration::from_secs(20), || {
            let stream = stream.clone();
            async move {
                let epoch: Option<i64> =
                    sqlx::query_scalar("SELECT max(epoch) FROM alerter_progress")
                        .fetch_one(&self.db.pool)
                        .await
                        .ok()
                        .flatten();
                let epoch = epoch.filter(|e| *e > after_epoch)?;
                let mut consumer: jetstream::consumer::PullConsumer =
                    stream.get_consumer("alerter").await.ok()?;
                let info = consumer.info().await.ok()?;
                (info.num_waiting > 0).then_some(epoch)
            }
        })
        .await
    }

    /// Waits until the alerter has evaluated and committed every sample in the metrics stream
    /// and published every transition it decided: only then does "no alert" mean something.
    pub async fn wait_until_evaluated(&self) {
        let name = self.subjects.stream_name(StreamKind::Metrics);
        let mut stream = self.js.get_stream(&name).await.expect("stream");
        let last = stream
            .info()
            .await
            .expect("stream info")
            .state
            .last_sequence;
        eventually(
            &format!("the alerter's commits reaching sequence {last}"),
            Duration::from_secs(30),
            || async {
                let committed: Option<i64> =
                    sqlx::query_scalar("SELECT sequence FROM alerter_progress WHERE stream = $1")
                        .bind(&name)
                        .fetch_optional(&self.db.pool)
                        .await
                        .ok()
                        .flatten()
                        .flatten();
                let unpublished: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_outbox")
                    .fetch_one(&self.db.pool)
                    .await
                    .ok()?;
                (committed? >= last as i64 && unpublished == 0).then_some(())
            },
        )
        .await;
    }

    pub async fn publish(&self, samples: &[MetricSample]) {
        testkit::publish_samples(&self.js, &self.subjects, samples, true).await;
    }

    /// Every alert event in the stream, in stream order.
    pub async fn stored_events(&self) -> Vec<AlertEvent> {
        testkit::read_stream(&self.js, &self.subjects.stream_name(StreamKind::Alerts))
            .await
            .iter()
            .map(|m| serde_json::from_slice(&m.payload).expect("an AlertEvent"))
            .collect()
    }

    /// Waits until the stream holds `count` events, then a little longer to catch extras.
    pub async fn wait_for_events(&self, count: usize, within: Duration) -> Vec<AlertEvent> {
        eventually(&format!("{count} alert events"), within, || async {
            let n = self
                .js
                .get_stream(self.subjects.stream_name(StreamKind::Alerts))
                .await
                .ok()?
                .info()
                .await
                .ok()?
                .state
                .messages;
            (n as usize >= count).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        self.stored_events().await
    }
}

pub struct Running {
    pub stop: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the alerter stops within 20 s")
            .expect("join")
            .expect("the alerter ran without error");
    }
}

/// A sample of `server` at `at` with `cpu` percent (memory and disk low).
pub fn cpu(server: &str, at: DateTime<Utc>, cpu: f64) -> MetricSample {
    MetricSample::minimal(
        ServerId::parse(server).expect("valid"),
        at,
        cpu,
        30.0,
        40.0,
        0,
    )
}

/// One sample a second for `server`, starting `start`, with these CPU values.
pub fn series(server: &str, start: DateTime<Utc>, values: &[f64]) -> Vec<MetricSample> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| cpu(server, start + chrono::Duration::seconds(i as i64), *v))
        .collect()
}

/// `"cpu warning firing"` and so on, for comparing sequences.
pub fn names(events: &[AlertEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{} {:?} {:?}", e.metric, e.severity, e.state).to_lowercase())
        .collect()
}

/// A starting time a few minutes back, so a series of samples stays in the past.
pub fn minutes_ago(minutes: i64) -> DateTime<Utc> {
    let now = Utc::now() - chrono::Duration::minutes(minutes);
    DateTime::from_timestamp(now.timestamp(), 0).expect("valid")
}
