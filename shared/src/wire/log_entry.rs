//! `LogEntry`: one log line about a server, on `<prefix>.logs.<serverId>`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Payload, ServerId, check_no_nul, check_not_in_future, default_version};

/// Longest message stored; longer ones are refused rather than silently cut.
pub const MAX_LOG_MESSAGE_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    #[serde(default = "default_version")]
    pub v: u32,
    /// Makes storing idempotent: the same entry published twice is stored once.
    pub id: Uuid,
    pub server_id: ServerId,
    #[serde(with = "super::timestamp")]
    pub timestamp: DateTime<Utc>,
    pub level: LogLevel,
    pub message: String,
    /// What wrote it (a program, a unit, "gateway").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Structured context, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    #[serde(alias = "warning")]
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl Payload for LogEntry {
    fn version(&self) -> u32 {
        self.v
    }

    fn check(&self, now: DateTime<Utc>) -> Result<(), String> {
        if self.message.is_empty() {
            return Err("message is empty".into());
        }
        if self.message.len() > MAX_LOG_MESSAGE_BYTES {
            return Err(format!(
                "message is {} bytes, more than {MAX_LOG_MESSAGE_BYTES}",
                self.message.len()
            ));
        }
        check_no_nul("message", &self.message)?;
        if let Some(source) = &self.source {
            check_no_nul("source", source)?;
        }
        if let Some(fields) = &self.fields
            && fields
                .iter()
                .any(|(key, value)| key.contains('\0') || json_has_nul(value))
        {
            return Err("fields contain a NUL character".into());
        }
        check_not_in_future("timestamp", self.timestamp, now)
    }
}

/// Whether a string anywhere in `value` (key or value) holds a NUL, which `jsonb` refuses.
pub fn json_has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(json_has_nul),
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(key, value)| key.contains('\0') || json_has_nul(value)),
        _ => false,
    }
}

impl super::ServerPayload for LogEntry {
    const KIND: crate::subjects::StreamKind = crate::subjects::StreamKind::Logs;
    fn server_id(&self) -> &ServerId {
        &self.server_id
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::*;

    #[test]
    fn accepts_warning_as_warn_and_refuses_empty_messages() {
        let json = br#"{"v":1,"id":"6f1c1b9e-8f5a-4d47-9d7a-1b1f2e3d4c5b","serverId":"s1",
            "timestamp":"2024-03-09T12:00:00Z","level":"warning","message":"disk slow","extra":1}"#;
        let entry: LogEntry = decode(json, Utc::now()).expect("decodes");
        assert_eq!(entry.level, LogLevel::Warn);
        let back = serde_json::to_value(&entry).expect("serialises");
        assert_eq!(back["level"], "warn");

        let empty = br#"{"v":1,"id":"6f1c1b9e-8f5a-4d47-9d7a-1b1f2e3d4c5b","serverId":"s1",
            "timestamp":"2024-03-09T12:00:00Z","level":"info","message":""}"#;
        assert_eq!(
            decode::<LogEntry>(empty, Utc::now())
                .map_err(|e| e.kind())
                .err(),
            Some("invalid")
        );
    }

    #[test]
    fn refuses_nul_characters_postgresql_cannot_store() {
        let base = serde_json::json!({"v": 1, "id": "6f1c1b9e-8f5a-4d47-9d7a-1b1f2e3d4c5b",
            "serverId": "s1", "timestamp": "2024-03-09T12:00:00Z", "level": "info",
            "message": "ok", "source": "app", "fields": {"a": [1, {"b": "fine"}]}});
        let bytes = serde_json::to_vec(&base).expect("serialises");
        decode::<LogEntry>(&bytes, Utc::now()).expect("a clean entry decodes");
        for (field, value) in [
            ("message", serde_json::json!("a\u{0}b")),
            ("source", serde_json::json!("\u{0}")),
            ("fields", serde_json::json!({"a": [1, {"b": "x\u{0}"}]})),
            ("fields", serde_json::json!({"k\u{0}": 1})),
        ] {
            let mut json = base.clone();
            json[field] = value;
            let bytes = serde_json::to_vec(&json).expect("serialises");
            let err = decode::<LogEntry>(&bytes, Utc::now()).expect_err(field);
            assert_eq!(err.kind(), "invalid", "{field}: {err}");
        }
    }
}
