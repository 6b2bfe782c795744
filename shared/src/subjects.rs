//! Every subject, stream and durable consumer name FLick uses, derived from one prefix.
//!
//! The prefix (default `flick`) is configurable so that several installations, or many tests,
//! share one NATS server without seeing each other's traffic: prefix `t_ab12` gives subjects
//! `t_ab12.metrics.<id>` and streams `T_AB12_METRICS`.

use std::fmt;

use crate::wire::ServerId;

pub const DEFAULT_PREFIX: &str = "flick";

/// Durable consumer of the metrics stream shared by every persister replica.
pub const PERSISTER_CONSUMER: &str = "persister";
/// Durable consumer of the metrics stream used by the alerter.
pub const ALERTER_CONSUMER: &str = "alerter";

/// The streams FLick defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    Metrics,
    Alerts,
    Logs,
    /// Top processes of each host (short retention: the newest list is what is read).
    Processes,
}

impl StreamKind {
    pub const ALL: [StreamKind; 4] = [
        StreamKind::Metrics,
        StreamKind::Alerts,
        StreamKind::Logs,
        StreamKind::Processes,
    ];

    fn token(self) -> &'static str {
        match self {
            StreamKind::Metrics => "metrics",
            StreamKind::Alerts => "alerts",
            StreamKind::Logs => "logs",
            StreamKind::Processes => "processes",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid subject prefix {0:?}: use 1 to 32 ASCII letters, digits, '-' or '_' (one subject token)"
)]
pub struct InvalidPrefix(pub String);

/// The subject namespace of one FLick installation.
#[derive(Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    pub fn new(prefix: impl Into<String>) -> Result<Self, InvalidPrefix> {
        let prefix = prefix.into();
        let valid = !prefix.is_empty()
            && prefix.len() <= 32
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self { prefix })
        } else {
            Err(InvalidPrefix(prefix))
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>.metrics.<serverId>`
    pub fn metrics(&self, server: &ServerId) -> String {
        format!("{}.metrics.{server}", self.prefix)
    }

    /// `<prefix>.alerts.<serverId>`
    pub fn alerts(&self, server: &ServerId) -> String {
        format!("{}.alerts.{server}", self.prefix)
    }

    /// `<prefix>.logs.<serverId>`
    pub fn logs(&self, server: &ServerId) -> String {
        format!("{}.logs.{server}", self.prefix)
    }

    /// `<prefix>.processes.<serverId>`
    pub fn processes(&self, server: &ServerId) -> String {
        format!("{}.processes.{server}", self.prefix)
    }

    /// `<prefix>.status.<serverId>`
    pub fn status(&self, server: &ServerId) -> String {
        format!("{}.status.{server}", self.prefix)
    }

    /// Every server's subjects of one stream: `<prefix>.<kind>.*`.
    pub fn all_servers(&self, kind: StreamKind) -> String {
        format!("{}.{}.*", self.prefix, kind.token())
    }

    /// Every server's status subject: `<prefix>.status.*`.
    pub fn status_all(&self) -> String {
        format!("{}.status.*", self.prefix)
    }

    /// `<prefix>.deadletter.<service>`: where a service forwards what it could not use.
    pub fn deadletter(&self, service: &str) -> String {
        format!("{}.deadletter.{service}", self.prefix)
    }

    /// What a stream captures: `<prefix>.<kind>.>`.
    pub fn stream_subject(&self, kind: StreamKind) -> String {
        format!("{}.{}.>", self.prefix, kind.token())
    }

    /// `FLICK_METRICS`, `FLICK_ALERTS`, `FLICK_LOGS` for the default prefix.
    pub fn stream_name(&self, kind: StreamKind) -> String {
        let prefix: String = self
            .prefix
            .chars()
            .map(|c| {
                if c == '-' {
                    '_'
                } else {
                    c.to_ascii_uppercase()
                }
            })
            .collect();
        format!("{prefix}_{}", kind.token().to_ascii_uppercase())
    }

    /// The server id in `<prefix>.<kind>.<serverId>`, if the subject is one of ours.
    pub fn server_id_in<'s>(&self, kind: StreamKind, subject: &'s str) -> Option<&'s str> {
        subject
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('.')?
            .strip_prefix(kind.token())?
            .strip_prefix('.')
            .filter(|id| !id.is_empty() && !id.contains('.'))
    }
}

impl Default for Subjects {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }
}

impl fmt::Debug for Subjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subjects({})", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_match_the_public_interface() {
        let s = Subjects::default();
        let id = ServerId::parse("web-1").expect("valid");
        assert_eq!(s.metrics(&id), "flick.metrics.web-1");
        assert_eq!(s.alerts(&id), "flick.alerts.web-1");
        assert_eq!(s.logs(&id), "flick.logs.web-1");
        assert_eq!(s.status(&id), "flick.status.web-1");
        assert_eq!(s.deadletter("persister"), "flick.deadletter.persister");
        assert_eq!(s.stream_subject(StreamKind::Metrics), "flick.metrics.>");
        assert_eq!(s.all_servers(StreamKind::Alerts), "flick.alerts.*");
        assert_eq!(s.stream_name(StreamKind::Metrics), "FLICK_METRICS");
        assert_eq!(s.stream_name(StreamKind::Alerts), "FLICK_ALERTS");
        assert_eq!(s.stream_name(StreamKind::Logs), "FLICK_LOGS");
    }

    #[test]
    fn prefixes_isolate_names() {
        let s = Subjects::new("t-ab12").expect("valid");
        assert_eq!(s.stream_name(StreamKind::Logs), "T_AB12_LOGS");
        assert_eq!(
            s.server_id_in(StreamKind::Metrics, "t-ab12.metrics.x1"),
            Some("x1")
        );
        assert_eq!(
            s.server_id_in(StreamKind::Metrics, "flick.metrics.x1"),
            None
        );
        assert_eq!(
            s.server_id_in(StreamKind::Metrics, "t-ab12.metrics.a.b"),
            None
        );
        assert_eq!(
            s.server_id_in(StreamKind::Alerts, "t-ab12.metrics.x1"),
            None
        );
        for bad in ["", "a.b", "a*", "a b"] {
            assert!(Subjects::new(bad).is_err(), "{bad:?}");
        }
    }
}
