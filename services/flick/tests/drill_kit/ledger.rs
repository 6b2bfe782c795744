//! What was published against what was stored: the valid samples in the metrics stream and
//! the rows of `metrics`, by `(server, ts)`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

use flick_shared::Subjects;
use flick_shared::subjects::StreamKind;
use flick_shared::testkit::{self, eventually};
use flick_shared::wire::{MetricSample, decode};

#[derive(Debug)]
pub struct Ledger {
    /// Valid samples in the stream (JetStream has dropped repeats by `Nats-Msg-Id`).
    pub stream_valid: u64,
    /// Distinct `(server, ts)` among them.
    pub stream_distinct: u64,
    pub rows: u64,
    pub distinct_rows: u64,
    /// Published, not stored.
    pub lost: u64,
    /// Stored, never published.
    pub unexpected: u64,
    /// The timestamp (ms) of every valid sample in the stream.
    published_at: Vec<i64>,
}

impl Ledger {
    /// Reads the whole metrics stream and every key of `metrics`. A message counts as a valid
    /// sample when it decodes and names the server of its subject, the consumers' own rule.
    pub async fn take(js: &jetstream::Context, subjects: &Subjects, pool: &PgPool) -> Self {
        let messages = testkit::read_stream(js, &subjects.stream_name(StreamKind::Metrics)).await;
        let now = Utc::now();
        let published: Vec<(String, i64)> = messages
            .iter()
            .filter_map(|message| {
                let sample = decode::<MetricSample>(&message.payload, now).ok()?;
                let on_its_subject = subjects.server_id_in(StreamKind::Metrics, &message.subject)
                    == Some(sample.server_id.as_str());
                on_its_subject.then(|| {
                    (
                        sample.server_id.as_str().to_owned(),
                        sample.timestamp.timestamp_millis(),
                    )
                })
            })
            .collect();
        let stored: Vec<(String, i64)> =
            sqlx::query_as("SELECT server_id, (extract(epoch FROM ts) * 1000)::int8 FROM metrics")
                .fetch_all(pool)
                .await
                .expect("read the stored keys");
        let published_set: HashSet<&(String, i64)> = published.iter().collect();
        let stored_set: HashSet<&(String, i64)> = stored.iter().collect();
        Self {
            stream_valid: published.len() as u64,
            stream_distinct: published_set.len() as u64,
            rows: stored.len() as u64,
            distinct_rows: stored_set.len() as u64,
            lost: published_set.difference(&stored_set).count() as u64,
            unexpected: stored_set.difference(&published_set).count() as u64,
            published_at: published.iter().map(|(_, ts)| *ts).collect(),
        }
    }

    /// Rows stored twice, or samples in the stream twice (which the de-duplication prevents).
    pub fn duplicated(&self) -> u64 {
        (self.rows - self.distinct_rows) + (self.stream_valid - self.stream_distinct)
    }

    /// Valid samples taken at or before `at`.
    pub fn published_until(&self, at: DateTime<Utc>) -> u64 {
        let at = at.timestamp_millis();
        self.published_at.iter().filter(|&&ts| ts <= at).count() as u64
    }

    /// Every sample the producers saw acknowledged is stored once, and nothing else is.
    pub fn assert_exact(&self, acknowledged_to_producers: u64) {
        assert_eq!(
            self.stream_valid, acknowledged_to_producers,
            "samples in the stream vs samples the producers saw acknowledged: {self:?}"
        );
        assert_eq!(self.lost, 0, "samples lost: {self:?}");
        assert_eq!(self.duplicated(), 0, "samples duplicated: {self:?}");
        assert_eq!(self.unexpected, 0, "rows never published: {self:?}");
        assert_eq!(self.rows, self.stream_valid, "rows vs published: {self:?}");
    }
}

/// Follows, every 250 ms, how many rows with a timestamp up to `cutoff` are stored, to tell
/// afterwards when all the samples taken before a restart (the backlog) were in the database.
pub struct BacklogWatch {
    since: Instant,
    cutoff: DateTime<Utc>,
    seen: Arc<std::sync::Mutex<Vec<(Duration, u64)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl BacklogWatch {
    pub fn start(pool: &PgPool) -> Self {
        let since = Instant::now();
        let cutoff = Utc::now();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let pool = pool.clone();
            let seen = seen.clone();
            async move {
                loop {
                    if let Ok(n) =
                        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM metrics WHERE ts <= $1")
                            .bind(cutoff)
                            .fetch_one(&pool)
                            .await
                    {
                        seen.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((since.elapsed(), n as u64));
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        });
        Self {
            since,
            cutoff,
            seen,
            task,
        }
    }

    /// When the watch started (the restart), by the wall clock samples are stamped with.
    pub fn cutoff(&self) -> DateTime<Utc> {
        self.cutoff
    }

    /// When the watch started (the restart).
    pub fn started(&self) -> Instant {
        self.since
    }

    /// How long after the start every sample taken before it was stored, given how many there
    /// were (from the [`Ledger`]); `None` if that was never observed.
    pub fn stored_after(&self, backlog: u64) -> Option<Duration> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(_, n)| *n >= backlog)
            .map(|(at, _)| *at)
    }
}

impl Drop for BacklogWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn rows(pool: &PgPool) -> u64 {
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM metrics")
        .fetch_one(pool)
        .await
        .map(|n| n as u64)
        .unwrap_or(0)
}

pub async fn wait_rows_at_least(pool: &PgPool, n: u64, within: Duration) {
    eventually(&format!("{n} rows stored"), within, || async {
        (rows(pool).await >= n).then_some(())
    })
    .await;
}

/// When `metrics` held `n` rows, or `None` after `within` (the drill then prints its figures
/// and the assertions say what is missing).
pub async fn wait_rows(pool: &PgPool, n: u64, within: Duration) -> Option<Instant> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if rows(pool).await >= n {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

pub async fn stream_messages(js: &jetstream::Context, subjects: &Subjects) -> u64 {
    let mut stream = js
        .get_stream(subjects.stream_name(StreamKind::Metrics))
        .await
        .expect("the metrics stream");
    stream.info().await.expect("stream info").state.messages
}

/// The timestamps (ms) of one server's rows, in order.
pub async fn host_series(pool: &PgPool, server: &str) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT (extract(epoch FROM ts) * 1000)::int8 FROM metrics WHERE server_id = $1 ORDER BY ts",
    )
    .bind(server)
    .fetch_all(pool)
    .await
    .expect("read a server's series")
}

/// The longest interval (ms) between consecutive samples of a series: a hole, if over 1 s.
pub fn largest_gap(series: &[i64]) -> i64 {
    series
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or(0)
}

/// How long until the stream held a sample on `subject` taken after `after`: the producer
/// reconnected and replayed its buffer (oldest first) up to the present.
pub async fn time_until_published_since(
    js: &jetstream::Context,
    subjects: &Subjects,
    subject: &str,
    after: DateTime<Utc>,
    within: Duration,
) -> Option<Duration> {
    let since = Instant::now();
    let name = subjects.stream_name(StreamKind::Metrics);
    while since.elapsed() < within {
        if let Ok(stream) = js.get_stream(&name).await
            && let Ok(message) = stream.get_last_raw_message_by_subject(subject).await
            && let Ok(sample) = serde_json::from_slice::<MetricSample>(&message.payload)
            && sample.timestamp > after
        {
            return Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Deletes the stack's streams from a shared NATS (after its services are stopped).
pub async fn delete_streams(js: &jetstream::Context, subjects: &Subjects) {
    for kind in StreamKind::ALL {
        let _ = js.delete_stream(subjects.stream_name(kind)).await;
    }
}
