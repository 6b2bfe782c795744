//! The identity of a monitored server, valid as one NATS subject token.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest server id accepted: long enough for any UUID or host name, short enough to keep
/// subjects and database keys small.
pub const MAX_SERVER_ID_LEN: usize = 64;

/// A server id: 1 to 64 characters of ASCII letters, digits, `-` and `_`.
///
/// The id is the last token of `<prefix>.metrics.<serverId>`, so anything NATS treats specially
/// (`.`, `*`, `>`, whitespace) is refused here, at the edge, rather than corrupting subjects later.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServerId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid server id {0:?}: use 1 to 64 ASCII letters, digits, '-' or '_'")]
pub struct InvalidServerId(pub String);

impl ServerId {
    pub fn parse(value: impl Into<String>) -> Result<Self, InvalidServerId> {
        let value = value.into();
        let valid = !value.is_empty()
            && value.len() <= MAX_SERVER_ID_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(value))
        } else {
            Err(InvalidServerId(value))
        }
    }

    /// A stable id derived from a name (a machine id, a host name, a simulated server's
    /// ordinal): the same name always gives the same UUID v5.
    pub fn derived_from(name: &str) -> Self {
        Self(uuid::Uuid::new_v5(&FLICK_NAMESPACE, name.as_bytes()).to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The UUID namespace FLick derives server ids in (a fixed random UUID, never to change: it
/// would change every derived server id).
const FLICK_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6c1f_2a7e_93d4_4b55_8e0a_5f3c_b1d2_7a90);

impl TryFrom<String> for ServerId {
    type Error = InvalidServerId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<ServerId> for String {
    fn from(id: ServerId) -> Self {
        id.0
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerId({})", self.0)
    }
}

impl AsRef<str> for ServerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uuids_and_host_names() {
        for ok in [
            "web-01",
            "db_2",
            "550e8400-e29b-41d4-a716-446655440000",
            "a",
        ] {
            assert!(ServerId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_what_would_break_a_subject() {
        let too_long = "x".repeat(MAX_SERVER_ID_LEN + 1);
        for bad in ["", "a.b", "*", ">", "a b", "é", too_long.as_str()] {
            assert!(ServerId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        assert_eq!(ServerId::derived_from("m1"), ServerId::derived_from("m1"));
        assert_ne!(ServerId::derived_from("m1"), ServerId::derived_from("m2"));
        assert!(ServerId::parse(ServerId::derived_from("m1").to_string()).is_ok());
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<ServerId>("\"a.b\"").is_err());
        assert_eq!(
            serde_json::from_str::<ServerId>("\"web-1\"")
                .ok()
                .map(|id| id.to_string()),
            Some("web-1".to_owned())
        );
    }
}
