//! The JSON payloads of FLick's public NATS interface (version 1).
//!
//! Every payload is camelCase JSON with `"v": 1`. Within a version fields are only ever added,
//! so decoders here ignore fields they do not know and producers may omit every optional one.
//! [`decode`] is the one way services read a payload: JSON first, then the version, then the
//! payload's own checks, each failure with a reason that can be counted and dead-lettered.

mod alert_event;
mod containers;
mod log_entry;
mod metric_sample;
mod process_list;
mod server_id;
mod status;
pub mod timestamp;

pub use alert_event::{AlertEvent, AlertSeverity, AlertState, TOP_PROCESSES_ON_ALERTS};
pub use containers::{ContainerUsage, MAX_CONTAINER_TEXT, MAX_CONTAINERS};
pub use log_entry::{LogEntry, LogLevel, MAX_LOG_MESSAGE_BYTES, json_has_nul};
pub use metric_sample::{
    DiskIo, InterfaceRates, LoadAverage, MemoryStats, MetricSample, MountUsage, NetworkRates,
    SwapStats, Temperature, fullest_mount_percent, hottest_celsius, percent,
};
pub use process_list::{MAX_COMMAND_CHARS, MAX_TOP_PROCESSES, ProcessList, ProcessUsage};
pub use server_id::{InvalidServerId, MAX_SERVER_ID_LEN, ServerId};
pub use status::{ServerStatus, StatusState};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use crate::subjects::{StreamKind, Subjects};

/// The only payload version this build reads and writes.
pub const WIRE_VERSION: u32 = 1;

/// How far in the future a timestamp may be before it is refused: generous for clock skew
/// between hosts, tight enough that a broken clock cannot write rows a year ahead.
pub const MAX_FUTURE_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// Why a payload was refused. `kind()` is a short stable label for counters and dead letters.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported payload version {0} (this build reads version {WIRE_VERSION})")]
    UnsupportedVersion(u32),
    #[error("invalid payload: {0}")]
    Invalid(String),
    /// A valid payload on another server's subject: one host speaking for another.
    #[error("serverId {server_id:?} does not match subject {subject:?}")]
    SubjectMismatch { server_id: String, subject: String },
}

impl WireError {
    pub fn kind(&self) -> &'static str {
        match self {
            WireError::Json(_) => "malformed_json",
            WireError::UnsupportedVersion(_) => "unsupported_version",
            WireError::Invalid(_) => "invalid",
            WireError::SubjectMismatch { .. } => "subject_mismatch",
        }
    }
}

/// A payload of the public interface: it knows its version and how to check itself.
pub trait Payload: DeserializeOwned {
    fn version(&self) -> u32;
    /// Checks that decoding cannot express (ranges, clock skew), relative to `now`.
    fn check(&self, now: DateTime<Utc>) -> Result<(), String>;
}

/// Decodes and checks one payload: the single entry point for every consumer of a subject.
pub fn decode<T: Payload>(bytes: &[u8], now: DateTime<Utc>) -> Result<T, WireError> {
    let payload: T = serde_json::from_slice(bytes)?;
    if payload.version() != WIRE_VERSION {
        return Err(WireError::UnsupportedVersion(payload.version()));
    }
    payload.check(now).map_err(WireError::Invalid)?;
    Ok(payload)
}

/// A payload published on its server's own subject (`<prefix>.<kind>.<serverId>`).
pub trait ServerPayload: Payload {
    /// The stream its subjects belong to.
    const KIND: StreamKind;
    fn server_id(&self) -> &ServerId;
}

/// [`decode`], then the check every reader of a per-server subject makes: the payload's
/// `serverId` is the one in `subject`. The persister, the alerter and the gateway's live relay
/// all read through here, so they refuse the same messages with the same reasons.
pub fn decode_on<T: ServerPayload>(
    subjects: &Subjects,
    subject: &str,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<T, WireError> {
    let payload: T = decode(bytes, now)?;
    if subjects.server_id_in(T::KIND, subject) != Some(payload.server_id().as_str()) {
        return Err(WireError::SubjectMismatch {
            server_id: payload.server_id().as_str().to_owned(),
            subject: subject.to_owned(),
        });
    }
    Ok(payload)
}

fn check_not_in_future(what: &str, at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), String> {
    if at > now + MAX_FUTURE_SKEW {
        Err(format!("{what} {at} is more than 5 minutes in the future"))
    } else {
        Ok(())
    }
}

/// Refuses a string PostgreSQL cannot store: `text` and `jsonb` have no room for the NUL
/// character, so a payload carrying one would fail its batch on every retry and stall the
/// consumer. It is refused at decoding like any other invalid value, and dead-lettered.
pub fn check_no_nul(name: &str, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        Err(format!("{name} contains a NUL character"))
    } else {
        Ok(())
    }
}

fn default_version() -> u32 {
    WIRE_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(server: &str) -> ServerId {
        ServerId::parse(server).expect("valid id")
    }

    fn sample(server: &str) -> Vec<u8> {
        serde_json::json!({
            "v": 1,
            "serverId": server,
            "timestamp": Utc::now(),
            "cpuUsage": 12.5,
            "memoryUsage": 40.0,
            "diskUsage": 50.0,
            "networkUsage": 0,
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn decode_on_accepts_a_payload_on_its_own_servers_subject() {
        let subjects = Subjects::default();
        let on = subjects.metrics(&id("web-01"));
        let decoded: MetricSample =
            decode_on(&subjects, &on, &sample("web-01"), Utc::now()).expect("valid");
        assert_eq!(decoded.server_id.as_str(), "web-01");
    }

    #[test]
    fn decode_on_refuses_another_servers_subject_with_a_stable_kind() {
        let subjects = Subjects::default();
        let on = subjects.metrics(&id("db-01"));
        let err = decode_on::<MetricSample>(&subjects, &on, &sample("web-01"), Utc::now())
            .expect_err("mismatch");
        assert_eq!(err.kind(), "subject_mismatch");
        assert!(matches!(err, WireError::SubjectMismatch { .. }));
        assert_eq!(
            err.to_string(),
            format!("serverId \"web-01\" does not match subject {on:?}")
        );
    }

    #[test]
    fn decode_on_refuses_a_subject_of_another_stream_or_prefix() {
        let subjects = Subjects::default();
        for on in [
            subjects.logs(&id("web-01")),
            "elsewhere.metrics.web-01".to_owned(),
            format!("{}.web-01.extra", subjects.metrics(&id("web-01"))),
        ] {
            let err = decode_on::<MetricSample>(&subjects, &on, &sample("web-01"), Utc::now())
                .expect_err("not its subject");
            assert_eq!(err.kind(), "subject_mismatch", "{on}");
        }
    }

    #[test]
    fn decode_on_reports_decoding_errors_before_the_subject() {
        let subjects = Subjects::default();
        let on = subjects.metrics(&id("db-01"));
        let err = decode_on::<MetricSample>(&subjects, &on, b"{not json", Utc::now())
            .expect_err("malformed");
        assert_eq!(err.kind(), "malformed_json");
    }
}
