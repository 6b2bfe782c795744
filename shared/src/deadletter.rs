//! Where a service sends what it cannot use: `<prefix>.deadletter.<service>`, with the reason.
//!
//! The refused message keeps its payload byte for byte; headers carry why it was refused and
//! where it came from, so an operator can inspect, fix and replay it. Every refusal is counted
//! (`flick_deadletter_total{service,reason}`); the log says so once per reason per minute, with
//! the number suppressed meanwhile, so a flood of garbage cannot flood the logs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::{Client, HeaderMap};
use bytes::Bytes;

use crate::Subjects;

/// Header naming why the message was refused (a short kind, then the details).
pub const REASON_HEADER: &str = "Flick-Deadletter-Reason";
/// Header naming the subject the message was published on.
pub const SUBJECT_HEADER: &str = "Flick-Original-Subject";

const LOG_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct DeadLetters {
    client: Client,
    subject: String,
    service: &'static str,
    log: RateLimitedLog,
}

impl DeadLetters {
    pub fn new(client: Client, subjects: &Subjects, service: &'static str) -> Self {
        Self {
            client,
            subject: subjects.deadletter(service),
            service,
            log: RateLimitedLog::new(LOG_EVERY),
        }
    }

    /// Forwards a refused message. `kind` is a short stable label (`malformed_json`, `invalid`,
    /// `subject_mismatch`, …); `detail` says what exactly was wrong.
    pub async fn forward(
        &self,
        original_subject: &str,
        payload: Bytes,
        kind: &'static str,
        detail: &str,
    ) {
        metrics::counter!("flick_deadletter_total", "service" => self.service, "reason" => kind)
            .increment(1);
        if let Some(suppressed) = self.log.allow(kind) {
            tracing::warn!(
                service = self.service,
                reason = kind,
                detail,
                subject = original_subject,
                suppressed_since_last_log = suppressed,
                "Refused a message; forwarded to the dead-letter subject"
            );
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            REASON_HEADER,
            format!("{kind}: {detail}")
                .replace(['\r', '\n'], " ")
                .as_str(),
        );
        headers.insert(SUBJECT_HEADER, original_subject);
        if let Err(err) = self
            .client
            .publish_with_headers(self.subject.clone(), headers, payload)
            .await
        {
            tracing::warn!(error = %err, "Cannot publish to the dead-letter subject");
        }
    }
}

/// Lets one log line per key through every `every`; counts what it held back.
#[derive(Debug)]
pub struct RateLimitedLog {
    every: Duration,
    seen: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl RateLimitedLog {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(suppressed)` when a line for `key` may be logged now, with how many were held
    /// back since the last one; `None` when it must stay quiet.
    pub fn allow(&self, key: &'static str) -> Option<u64> {
        let now = Instant::now();
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match seen.get_mut(key) {
            Some((last, suppressed)) if now.duration_since(*last) < self.every => {
                *suppressed += 1;
                None
            }
            Some((last, suppressed)) => {
                *last = now;
                Some(std::mem::take(suppressed))
            }
            None => {
                seen.insert(key, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_once_per_key_per_period_and_counts_the_rest() {
        let log = RateLimitedLog::new(Duration::from_millis(50));
        assert_eq!(log.allow("a"), Some(0));
        assert_eq!(log.allow("a"), None);
        assert_eq!(log.allow("a"), None);
        assert_eq!(log.allow("b"), Some(0), "keys are independent");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(log.allow("a"), Some(2));
    }
}
