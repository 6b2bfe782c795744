//! What the fault drills share: the stack's endpoints, producers whose final report is read
//! from their log, the ledger of published against stored samples, readiness and Prometheus
//! counters, and the malformed flood.
#![allow(dead_code)]

pub mod cluster;
pub mod flood;
mod ledger;
pub mod live;
mod watch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::{Service, Stack};
use flick_shared::testkit::{self, Process};

pub use ledger::{
    BacklogWatch, Ledger, delete_streams, host_series, largest_gap, rows, stream_messages,
    time_until_published_since, wait_rows, wait_rows_at_least,
};
pub use watch::{Arrivals, ConsumerLag, DeadLetterCount};

/// Room in the metrics stream for everything a drill publishes (huge malformed payloads
/// included); the tests' usual 64 MiB would drop the oldest samples before they are stored.
pub const DRILL_STREAM_BYTES: &str = "1073741824";

/// The longest the drills let a valid sample wait to be written: the storage interval of earlier
/// defaults, kept as the bound now that `persister.flush_interval_ms` is 1 s by default.
pub const STORAGE_INTERVAL: Duration = Duration::from_secs(5);

/// A stack whose metrics stream holds a whole drill.
pub fn drill_stack(stack: Stack) -> Stack {
    stack.with_env("FLICK_STREAMS__METRICS_MAX_BYTES", DRILL_STREAM_BYTES)
}

/// Where each back-end service answers `/readyz` and `/metrics`: its operations listener.
pub struct Endpoints {
    pub persister: String,
    pub alerter: String,
    pub gateway: String,
}

impl Endpoints {
    pub fn of(stack: &Stack) -> Self {
        Self {
            persister: format!("http://{}", stack.persister_ops),
            alerter: format!("http://{}", stack.alerter_ops),
            gateway: format!("http://{}", stack.gateway_ops),
        }
    }

    /// Waits until the alerter has evaluated at least `published` samples, or `within` has
    /// passed; its count then, so a drill prints its figures before asserting on it.
    pub async fn alerter_evaluated(&self, published: u64, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let n = counter(&self.alerter, "flick_alerter_samples_evaluated_total", "")
                .await
                .unwrap_or(0);
            if n >= published || Instant::now() >= deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn all(&self) -> [(&'static str, &str); 3] {
        [
            ("persister", &self.persister),
            ("alerter", &self.alerter),
            ("gateway", &self.gateway),
        ]
    }

    /// Each service's `/readyz` answer now.
    pub async fn readiness(&self) -> Vec<(&'static str, bool)> {
        let mut answers = Vec::new();
        for (service, base) in self.all() {
            answers.push((service, is_ready(base).await));
        }
        answers
    }

    /// How long after `since` each service answered `/readyz` with 200 again (checked side by
    /// side); `None` for one that did not within `within`.
    pub async fn time_until_ready(
        &self,
        since: Instant,
        within: Duration,
    ) -> Vec<(&'static str, Option<Duration>)> {
        let (persister, alerter, gateway) = tokio::join!(
            time_until_ready(&self.persister, since, within),
            time_until_ready(&self.alerter, since, within),
            time_until_ready(&self.gateway, since, within),
        );
        vec![
            ("persister", persister),
            ("alerter", alerter),
            ("gateway", gateway),
        ]
    }
}

/// A load generator or collector logging JSON lines into a file, so its final report (how many
/// samples JetStream acknowledged) can be read after it stops.
pub struct Logged {
    pub process: Process,
    log: PathBuf,
}

impl Logged {
    pub fn spawn(stack: &Stack, service: &Service, extra: &[(&str, &str)]) -> Self {
        let log =
            std::env::temp_dir().join(format!("flick-drill-{}.log", uuid::Uuid::new_v4().simple()));
        let file = std::fs::File::create(&log).expect("create a log file");
        let mut command = stack.command(service, extra);
        command
            .env("RUST_LOG", "info,async_nats=warn")
            .env("FLICK_LOG__FORMAT", "json")
            .stderr(file);
        Self {
            process: Process::spawn(&mut command),
            log,
        }
    }

    /// SIGTERM; waits for a clean exit (the buffer delivered) and returns the log.
    pub async fn stop(mut self) -> Log {
        self.process.signal("TERM");
        let status = self.process.wait_exit(Duration::from_secs(60)).await;
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(status.success(), "exit status {status}; log:\n{text}");
        Log(text)
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The JSON log lines of a stopped producer.
pub struct Log(String);

impl Log {
    fn line(&self, message: &str) -> serde_json::Value {
        self.0
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|line| line["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} in the log:\n{}", self.0))
    }

    /// The simulator's `published`: samples JetStream acknowledged.
    pub fn published(&self) -> u64 {
        self.line("Simulation finished")["published"]
            .as_u64()
            .expect("published is a number")
    }

    /// A field of the collector's final `CollectorReport { taken: …, delivered: …, … }`.
    pub fn collector_field(&self, field: &str) -> u64 {
        let report = self.line("Collector stopped");
        let text = report["report"].as_str().unwrap_or_default();
        text.split_once(&format!("{field}: "))
            .and_then(|(_, rest)| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {field} in {text:?}"))
    }
}

pub async fn is_ready(base: &str) -> bool {
    testkit::http()
        .get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .is_ok_and(|answer| answer.status() == 200)
}

/// How long after `since` `/readyz` answered 200 again; `None` if not within `within`.
pub async fn time_until_ready(base: &str, since: Instant, within: Duration) -> Option<Duration> {
    while since.elapsed() < within {
        if is_ready(base).await {
            return Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// The sum of a counter over its series on a `/metrics` page, only those labelled
/// `service="…"` when `service` is not empty; `None` when the page does not answer.
pub async fn counter(base: &str, name: &str, service: &str) -> Option<u64> {
    let label = if service.is_empty() {
        String::new()
    } else {
        format!("service=\"{service}\"")
    };
    testkit::prometheus_counter(base, name, &label).await
}

pub fn secs(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

pub fn opt_secs(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "never".to_owned(), secs)
}

/// The `q` quantile (0 to 1) of `values`; zero when empty.
pub fn percentile(values: &[Duration], q: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}
