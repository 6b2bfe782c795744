//! What the persister's tests share: a persister on a fresh database and a private subject
//! prefix, and publishing helpers.
#![allow(dead_code)]

use std::time::Duration;

use async_nats::jetstream;
use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;

use flick_collector::simulate::Simulation;
use flick_persister::Config;
use flick_shared::shutdown::CancellationToken;
use flick_shared::subjects::StreamKind;
use flick_shared::testkit::{self, TestBed, eventually};
use flick_shared::wire::MetricSample;

/// Messages JetStream delivered again to a persister, and rows it found already stored (the
/// second write of a sample, a no-op the primary key would otherwise hide).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replays {
    pub redelivered: u64,
    pub rewritten: u64,
}

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

    /// A persister configuration for this harness: small batches, short flush interval, no
    /// operations listener.
    pub fn config(&self) -> Config {
        let mut config = Config {
            nats: testkit::nats_settings(self.subjects.prefix()),
            database: self.db.settings(),
            streams: testkit::stream_settings(),
            ..Config::default()
        };
        config.persister.batch_size = 1_000;
        config.persister.flush_interval_ms = 200;
        config.persister.ops_listen = String::new();
        config
    }

    pub fn start(&self, config: Config) -> Running {
        let stop = CancellationToken::new();
        let task = tokio::spawn(flick_persister::run(config, stop.clone()));
        Running { stop, task }
    }

    /// Publishes samples through JetStream with their `Nats-Msg-Id`, acks pipelined.
    pub async fn publish(&self, samples: &[MetricSample]) {
        self.publish_with_ids(samples, true).await;
    }

    /// As [`Harness::publish`]; without ids JetStream cannot drop repeats, as after the
    /// duplicate window.
    pub async fn publish_with_ids(&self, samples: &[MetricSample], with_ids: bool) {
        testkit::publish_samples(&self.js, &self.subjects, samples, with_ids).await;
    }

    /// Publishes raw bytes on a subject through JetStream.
    pub async fn publish_raw(&self, subject: String, payload: Vec<u8>) {
        self.js
            .publish(subject, payload.into())
            .await
            .expect("publish")
            .await
            .expect("JetStream acknowledges");
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = match table {
            "metrics" => "SELECT count(*) FROM metrics",
            "servers" => "SELECT count(*) FROM servers",
            "logs" => "SELECT count(*) FROM logs",
            "alerts" => "SELECT count(*) FROM alerts",
            "alert_events" => "SELECT count(*) FROM alert_events",
            other => panic!("no count query for {other}"),
        };
        sqlx::query_scalar(sql)
            .fetch_one(&self.db.pool)
            .await
            .expect("count")
    }

    /// Waits until `table` holds exactly `expected` rows (and then a little longer, to catch
    /// an overshoot).
    pub async fn wait_for_rows(&self, table: &str, expected: i64, within: Duration) {
        eventually(&format!("{expected} rows in {table}"), within, || async {
            (self.count(table).await >= expected).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(self.count(table).await, expected, "rows in {table}");
    }
}

impl Harness {
    /// Waits until the persister's metrics consumer has nothing pending nor unacknowledged.
    pub async fn wait_all_acked(&self) {
        let stream = self
            .js
            .get_stream(self.subjects.stream_name(StreamKind::Metrics))
            .await
            .expect("stream");
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_consumer("persister")
            .await
            .expect("the persister's consumer");
        eventually(
            "every message acknowledged",
            Duration::from_secs(20),
            || {
                let mut consumer = consumer.clone();
                async move {
                    let info = consumer.info().await.ok()?;
                    (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
                }
            },
        )
        .await;
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
            .expect("the persister stops within 20 s")
            .expect("join")
            .expect("the persister ran without error");
    }
}

/// `per_server` consecutive samples, one second apart and ending a minute ago, of each of
/// `servers` simulated servers.
pub fn samples(servers: usize, per_server: usize) -> Vec<MetricSample> {
    samples_ending(
        servers,
        per_server,
        Utc::now() - chrono::Duration::minutes(1),
    )
}

pub fn samples_ending(servers: usize, per_server: usize, end: DateTime<Utc>) -> Vec<MetricSample> {
    let mut simulation = Simulation::new(servers, 1, 42);
    let end_ms = end.timestamp_millis() - end.timestamp_millis() % 1_000;
    let mut out = Vec::with_capacity(servers * per_server);
    for step in 0..per_server {
        let offset = i64::try_from(per_server - step).expect("small") * 1_000;
        let at = DateTime::from_timestamp_millis(end_ms - offset).expect("valid time");
        for server in 0..servers {
            out.push(simulation.sample(server, at));
        }
    }
    out
}

impl Harness {
    /// The real `flick-persister` binary as a child process on this harness's prefix and
    /// database, with `env` on top of quick test settings.
    pub fn spawn_process(&self, env: &[(&str, &str)]) -> testkit::Process {
        testkit::Process::spawn(
            std::process::Command::new(env!("CARGO_BIN_EXE_flick-persister"))
                .env("NATS_URL", testkit::nats_url())
                .env("FLICK_NATS__PREFIX", self.subjects.prefix())
                .env("DATABASE_URL", self.db.url())
                .env("FLICK_PERSISTER__OPS_LISTEN", "")
                .env(
                    "FLICK_STREAMS__METRICS_MAX_BYTES",
                    testkit::stream_settings().metrics_max_bytes.to_string(),
                )
                .env(
                    "FLICK_STREAMS__ALERTS_MAX_BYTES",
                    testkit::stream_settings().alerts_max_bytes.to_string(),
                )
                .env(
                    "FLICK_STREAMS__LOGS_MAX_BYTES",
                    testkit::stream_settings().logs_max_bytes.to_string(),
                )
                .env(
                    "FLICK_STREAMS__PROCESSES_MAX_BYTES",
                    testkit::stream_settings().processes_max_bytes.to_string(),
                )
                .env("FLICK_PERSISTER__BATCH_SIZE", "500")
                .env("FLICK_PERSISTER__FLUSH_INTERVAL_MS", "200")
                .env(
                    "RUST_LOG",
                    std::env::var("TEST_LOG").unwrap_or_else(|_| "error".into()),
                )
                .envs(env.iter().copied()),
        )
    }

    /// What a persister process counted of work done again on the metrics stream.
    pub async fn replays(&self, base: &str) -> Replays {
        Replays {
            redelivered: self
                .counter(base, "flick_persister_redeliveries_total")
                .await,
            rewritten: self.counter(base, "flick_persister_duplicates_total").await,
        }
    }

    /// A persister process's counter for the metrics stream, once its listener answers.
    pub async fn counter(&self, base: &str, name: &str) -> u64 {
        eventually(
            &format!("{name} on {base}"),
            Duration::from_secs(20),
            || testkit::prometheus_counter(base, name, "stream=\"metrics\""),
        )
        .await
    }

    /// [`Harness::spawn_process`] with its operations listener on a free port; returns the
    /// listener's base URL too, for `/metrics`.
    pub fn spawn_observed(&self, env: &[(&str, &str)]) -> (testkit::Process, String) {
        let listen = format!("127.0.0.1:{}", testkit::free_port());
        let mut env = env.to_vec();
        env.push(("FLICK_PERSISTER__OPS_LISTEN", &listen));
        (self.spawn_process(&env), format!("http://{listen}"))
    }

    /// The persister's durable consumer on the metrics stream.
    pub async fn metrics_consumer(&self) -> jetstream::consumer::PullConsumer {
        let stream = self
            .js
            .get_stream(self.subjects.stream_name(StreamKind::Metrics))
            .await
            .expect("stream");
        eventually("the persister's consumer", Duration::from_secs(20), || {
            let stream = stream.clone();
            async move { stream.get_consumer("persister").await.ok() }
        })
        .await
    }
}
