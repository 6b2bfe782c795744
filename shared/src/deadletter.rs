//! Where a service sends what it cannot use: `<prefix>.deadletter.<service>`, with the reason.
//!
//! The refused message keeps its payload byte for byte; headers carry why it was refused and
//! where it came from, so an operator can inspect, fix and replay it. The reason is cut to
//! [`MAX_DETAIL_BYTES`] (a decoding error may quote the offending value, which can be as large as
//! the message), and a payload that no longer fits the server's `max_payload` beside the headers
//! is cut to fit, with its original length in [`TRUNCATED_HEADER`]. Every refusal is counted
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
/// Header present when the payload had to be cut to fit beside the headers: its original length.
pub const TRUNCATED_HEADER: &str = "Flick-Deadletter-Truncated";

/// Longest reason detail forwarded or logged.
pub const MAX_DETAIL_BYTES: usize = 512;

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
        let detail: &str = &shorten(detail, MAX_DETAIL_BYTES);
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
        let payload = fit(payload, &mut headers, self.client.max_payload());
        if let Err(err) = self
            .client
            .publish_with_headers(self.subject.clone(), headers, payload)
            .await
        {
            tracing::warn!(error = %err, "Cannot publish to the dead-letter subject");
        }
    }
}

/// `text` cut to at most `max` bytes (on a character boundary), with `…` when cut.
fn shorten(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
}

/// `payload`, cut when it and `headers` together exceed `max_payload` (the server refuses such
/// a message); the cut is recorded in [`TRUNCATED_HEADER`].
fn fit(payload: Bytes, headers: &mut HeaderMap, max_payload: usize) -> Bytes {
    const ROOM_FOR_THE_TRUNCATED_HEADER: usize = 64;
    let headers_len = headers_wire_len(headers) + ROOM_FOR_THE_TRUNCATED_HEADER;
    if payload.len() + headers_len <= max_payload {
        return payload;
    }
    headers.insert(TRUNCATED_HEADER, payload.len().to_string().as_str());
    payload.slice(..max_payload.saturating_sub(headers_len))
}

/// The size of `headers` on the wire: `NATS/1.0\r\n`, `Name: value\r\n` each, `\r\n`.
fn headers_wire_len(headers: &HeaderMap) -> usize {
    let fields: usize = headers
        .iter()
        .map(|(name, values)| {
            values
                .iter()
                .map(|value| AsRef::<[u8]>::as_ref(name).len() + value.as_str().len() + 4)
                .sum::<usize>()
        })
        .sum();
    "NATS/1.0\r\n".len() + fields + 2
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
    fn long_details_are_cut_on_a_character_boundary() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("ééé", 3), "é…");
        assert!(shorten(&"9".repeat(100_000), MAX_DETAIL_BYTES).len() <= MAX_DETAIL_BYTES + 3);
    }

    #[test]
    fn a_payload_too_large_beside_its_headers_is_cut_and_marked() {
        let mut headers = HeaderMap::new();
        headers.insert(REASON_HEADER, "malformed_json: expected value");
        headers.insert(SUBJECT_HEADER, "flick.metrics.web-01");
        let small = fit(Bytes::from(vec![b'x'; 1_000]), &mut headers, 1 << 20);
        assert_eq!(small.len(), 1_000);
        assert!(headers.get(TRUNCATED_HEADER).is_none());

        let large = fit(Bytes::from(vec![b'x'; 1 << 20]), &mut headers, 1 << 20);
        assert!(large.len() + headers_wire_len(&headers) <= 1 << 20);
        assert!(large.len() > (1 << 20) - 512);
        assert_eq!(
            headers.get(TRUNCATED_HEADER).map(|v| v.as_str()),
            Some("1048576")
        );
    }

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
