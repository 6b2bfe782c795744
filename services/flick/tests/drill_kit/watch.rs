//! Watching the flood's effects: the dead letters each service forwards, and when each valid
//! sample reaches the database.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use sqlx::PgPool;

use flick_shared::Subjects;

/// Counts what arrives on `<prefix>.deadletter.<service>`, by service and by reason (the kind
/// before the `:` of the reason header), and the payloads cut to fit.
pub struct DeadLetterCount {
    /// `(service, reason)` and how many; a short list searched in place, so that counting a
    /// dead letter allocates nothing.
    counts: Arc<std::sync::Mutex<Vec<(String, String, u64)>>>,
    task: tokio::task::JoinHandle<()>,
}

const TRUNCATED: &str = "(payload truncated)";

impl DeadLetterCount {
    /// Counts with `client` (one that may read every dead-letter subject).
    pub async fn start(client: async_nats::Client, subjects: &Subjects) -> Self {
        let mut subscription = client
            .subscribe(subjects.deadletter("*"))
            .await
            .expect("subscribe to the dead letters");
        client.flush().await.expect("flush the subscription");
        let counts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let counts = counts.clone();
            async move {
                let _client = client;
                while let Some(message) = subscription.next().await {
                    let service = message.subject.rsplit('.').next().unwrap_or_default();
                    let headers = message.headers.as_ref();
                    let reason = headers
                        .and_then(|h| h.get(flick_shared::deadletter::REASON_HEADER))
                        .map(|r| r.as_str().split(':').next().unwrap_or_default())
                        .unwrap_or_default();
                    let truncated = headers
                        .and_then(|h| h.get(flick_shared::deadletter::TRUNCATED_HEADER))
                        .is_some();
                    let mut counts = lock(&counts);
                    add(&mut counts, service, reason);
                    if truncated {
                        add(&mut counts, service, TRUNCATED);
                    }
                }
            }
        });
        Self { counts, task }
    }

    /// Dead letters forwarded by `service`.
    pub fn count(&self, service: &str) -> u64 {
        lock(&self.counts)
            .iter()
            .filter(|(s, reason, _)| s == service && reason != TRUNCATED)
            .map(|(_, _, n)| n)
            .sum()
    }

    /// `service/reason` and how many, sorted.
    pub fn reasons(&self) -> Vec<(String, u64)> {
        let mut reasons: Vec<_> = lock(&self.counts)
            .iter()
            .map(|(service, reason, n)| (format!("{service}/{reason}"), *n))
            .collect();
        reasons.sort();
        reasons
    }
}

fn add(counts: &mut Vec<(String, String, u64)>, service: &str, reason: &str) {
    match counts
        .iter_mut()
        .find(|(s, r, _)| s == service && r == reason)
    {
        Some((_, _, n)) => *n += 1,
        None => counts.push((service.to_owned(), reason.to_owned(), 1)),
    }
}

impl Drop for DeadLetterCount {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Notes when each row of `metrics` first appears (polling every 100 ms), to measure how long
/// valid samples take from their timestamp to the database.
pub struct Arrivals {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<(DateTime<Utc>, Duration)>>,
}

impl Arrivals {
    pub fn start(pool: PgPool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut seen: HashSet<(String, i64)> = HashSet::new();
                let mut delays = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let recent: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
                        "SELECT server_id, ts FROM metrics WHERE ts > now() - interval '60 seconds'",
                    )
                    .fetch_all(&pool)
                    .await
                    .unwrap_or_default();
                    let now = Utc::now();
                    for (server, ts) in recent {
                        if seen.insert((server, ts.timestamp_millis())) {
                            delays.push((ts, (now - ts).to_std().unwrap_or_default()));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                delays
            }
        });
        Self { stop, task }
    }

    /// Every row seen: its sample's timestamp and how long after it the row was first seen.
    pub async fn stop(self) -> Vec<(DateTime<Utc>, Duration)> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("arrivals watcher")
    }
}

/// The largest backlog of a durable consumer (messages not yet delivered plus delivered but not
/// acknowledged), sampled every 500 ms: how far behind the stream a service fell.
pub struct ConsumerLag {
    peak: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl ConsumerLag {
    pub fn start(js: &async_nats::jetstream::Context, stream: String, consumer: &str) -> Self {
        let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let task = tokio::spawn({
            let js = js.clone();
            let consumer = consumer.to_owned();
            let peak = peak.clone();
            async move {
                loop {
                    let info = js
                        .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
                            &consumer, &stream,
                        )
                        .await;
                    if let Ok(mut consumer) = info
                        && let Ok(info) = consumer.info().await
                    {
                        peak.fetch_max(
                            info.num_pending + info.num_ack_pending as u64,
                            Ordering::Relaxed,
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        });
        Self { peak, task }
    }

    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for ConsumerLag {
    fn drop(&mut self) {
        self.task.abort();
    }
}
