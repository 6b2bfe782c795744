//! Configuration sections shared by several services. Every field has a documented default;
//! durations and sizes carry their unit in the key name (`_ms`, `_secs`, `_bytes`).

use serde::Deserialize;

use super::{ConfigError, SecretKind, Validate, check, check_secret};
use crate::Secret;
use crate::crypto::KeyRing;
use crate::subjects::Subjects;

/// `[nats]`: how to reach NATS and which subject prefix to use.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSettings {
    /// Server URL, or the URLs of a cluster's servers separated by commas
    /// (`tls://nats:4222,tls://nats-2:4222,tls://nats-3:4222`): the client fails over between
    /// them. `NATS_URL` sets it too.
    pub url: String,
    /// A user name and password (a NATS server configured with users; FLick's own uses JWTs).
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// The `.creds` file (user JWT and seed) to connect with.
    pub creds: Option<std::path::PathBuf>,
    /// A directory of `.creds` files, one per service role (`flick init`): each service connects
    /// with `<creds_dir>/<its role>.creds` unless `creds` names a file.
    pub creds_dir: Option<std::path::PathBuf>,
    /// The CA certificate (PEM) the server's TLS certificate must chain to; set, TLS is required.
    pub ca: Option<std::path::PathBuf>,
    /// The inbox prefix (default `_INBOX.<role>`): an enrolled host's is `_INBOX.host.<id>`,
    /// the only inbox its user may read.
    pub inbox_prefix: Option<String>,
    /// Subject prefix (`flick` → `flick.metrics.<serverId>`, stream `FLICK_METRICS`).
    pub prefix: String,
    /// How long the first connection may take before start-up fails.
    pub connect_timeout_ms: u64,
    /// Bound on JetStream API calls and publish acknowledgements.
    pub request_timeout_ms: u64,
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            user: None,
            password: None,
            creds: None,
            creds_dir: None,
            ca: None,
            inbox_prefix: None,
            prefix: crate::subjects::DEFAULT_PREFIX.to_owned(),
            connect_timeout_ms: 5_000,
            request_timeout_ms: 5_000,
        }
    }
}

impl NatsSettings {
    /// The `.creds` file `role` connects with, if any.
    pub fn creds_for(&self, role: &str) -> Option<std::path::PathBuf> {
        self.creds.clone().or_else(|| {
            self.creds_dir
                .as_ref()
                .map(|dir| dir.join(format!("{role}.creds")))
        })
    }

    /// The subject namespace; valid once [`Validate::validate`] has passed.
    pub fn subjects(&self) -> Subjects {
        Subjects::new(self.prefix.clone()).unwrap_or_default()
    }
}

impl Validate for NatsSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.url.trim().is_empty() {
            return Err(ConfigError::new("nats.url", "must not be empty"));
        }
        crate::nats::server_addrs(&self.url)
            .map_err(|err| ConfigError::new("nats.url", err.to_string()))?;
        Subjects::new(self.prefix.clone())
            .map_err(|err| ConfigError::new("nats.prefix", err.to_string()))?;
        check(
            "nats.password",
            self.user.is_some() || self.password.is_none(),
            || "is set but nats.user is not".into(),
        )?;
        if let Some(password) = &self.password {
            check_secret("nats.password", password.expose(), SecretKind::Password)?;
        }
        for (setting, path) in [("nats.creds", &self.creds), ("nats.ca", &self.ca)] {
            if let Some(path) = path {
                check(setting, path.is_file(), || {
                    format!("{} is not a readable file", path.display())
                })?;
            }
        }
        if let Some(dir) = &self.creds_dir {
            check("nats.creds_dir", dir.is_dir(), || {
                format!("{} is not a directory", dir.display())
            })?;
        }
        check(
            "nats.connect_timeout_ms",
            self.connect_timeout_ms > 0,
            || "must be > 0".into(),
        )?;
        check(
            "nats.request_timeout_ms",
            self.request_timeout_ms > 0,
            || "must be > 0".into(),
        )
    }
}

/// `[streams]`: the JetStream streams' limits. A stream is bounded by both age and size; the
/// oldest messages go first when either is reached.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamSettings {
    pub metrics_max_age_secs: u64,
    pub metrics_max_bytes: i64,
    pub alerts_max_age_secs: u64,
    pub alerts_max_bytes: i64,
    pub logs_max_age_secs: u64,
    pub logs_max_bytes: i64,
    /// Top-process lists: what is read is the newest of each server (the persister keeps the
    /// history), so an hour is plenty.
    pub processes_max_age_secs: u64,
    pub processes_max_bytes: i64,
    /// Window in which JetStream drops a message whose `Nats-Msg-Id` it has already stored.
    pub duplicate_window_secs: u64,
    /// The same for alert transitions: longer, because an alerter that crashed between
    /// publishing a transition and recording it re-publishes it after its restart.
    pub alerts_duplicate_window_secs: u64,
    /// Replicas of each stream (1 for a single NATS server; 3 in a cluster).
    pub replicas: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            metrics_max_age_secs: 24 * 3600,
            metrics_max_bytes: 1 << 30,
            alerts_max_age_secs: 30 * 24 * 3600,
            alerts_max_bytes: 256 << 20,
            logs_max_age_secs: 7 * 24 * 3600,
            logs_max_bytes: 1 << 30,
            processes_max_age_secs: 3_600,
            processes_max_bytes: 256 << 20,
            duplicate_window_secs: 120,
            alerts_duplicate_window_secs: 3_600,
            replicas: 1,
        }
    }
}

impl Validate for StreamSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        for (name, age) in [
            ("streams.metrics_max_age_secs", self.metrics_max_age_secs),
            ("streams.alerts_max_age_secs", self.alerts_max_age_secs),
            ("streams.logs_max_age_secs", self.logs_max_age_secs),
            (
                "streams.processes_max_age_secs",
                self.processes_max_age_secs,
            ),
        ] {
            check(name, age >= self.duplicate_window_secs, || {
                format!("{age} is shorter than streams.duplicate_window_secs")
            })?;
        }
        for (name, bytes) in [
            ("streams.metrics_max_bytes", self.metrics_max_bytes),
            ("streams.alerts_max_bytes", self.alerts_max_bytes),
            ("streams.logs_max_bytes", self.logs_max_bytes),
            ("streams.processes_max_bytes", self.processes_max_bytes),
        ] {
            check(name, bytes >= 1 << 20, || {
                format!("{bytes} is less than 1 MiB")
            })?;
        }
        check(
            "streams.duplicate_window_secs",
            self.duplicate_window_secs > 0,
            || "must be > 0".into(),
        )?;
        check(
            "streams.alerts_duplicate_window_secs",
            (1..=self.alerts_max_age_secs).contains(&self.alerts_duplicate_window_secs),
            || "must be > 0 and at most streams.alerts_max_age_secs".into(),
        )?;
        check("streams.replicas", (1..=5).contains(&self.replicas), || {
            format!("{} is not in 1..=5", self.replicas)
        })
    }
}

/// `[database]`: PostgreSQL (with TimescaleDB when available).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Connection URL. `DATABASE_URL` sets it too.
    pub url: Secret,
    pub max_connections: u32,
    pub connect_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("postgres://postgres@127.0.0.1:5432/flick"),
            max_connections: 10,
            connect_timeout_ms: 5_000,
        }
    }
}

impl Validate for DatabaseSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let url = self.url.expose();
        check(
            "database.url",
            url.starts_with("postgres://") || url.starts_with("postgresql://"),
            || "must be a postgres:// or postgresql:// URL".into(),
        )?;
        if let Some(password) = url_password(url) {
            check_secret("database.url", password, SecretKind::Password).map_err(|err| {
                ConfigError::new(err.setting, format!("its password {}", err.message))
            })?;
        }
        check("database.max_connections", self.max_connections > 0, || {
            "must be > 0".into()
        })
    }
}

/// The password of `scheme://user:password@host/…`, if the URL has one.
fn url_password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let (user_info, _) = authority.rsplit_once('@')?;
    user_info
        .split_once(':')
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty())
}

/// `[log]`: what is logged and how.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A `tracing` filter such as `info` or `flick_persister=debug,info`. `RUST_LOG` sets it too.
    pub filter: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            // async-nats reports every failed reconnect attempt on its own at ERROR; each one also
            // reaches the event callback, which `outage` turns into a few lines (`nats::connect`).
            filter: "info,async_nats=off".to_owned(),
            format: LogFormat::Text,
        }
    }
}

impl Validate for LogSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        tracing_subscriber::EnvFilter::try_new(&self.filter)
            .map(|_| ())
            .map_err(|err| {
                ConfigError::new(
                    "log.filter",
                    format!("{:?} is not a valid filter: {err}", self.filter),
                )
            })
    }
}

/// `[ops]`: the small HTTP listener for `/healthz`, `/readyz` and `/metrics`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpsSettings {
    /// `host:port` to listen on; empty turns the listener off.
    pub listen: String,
}

impl OpsSettings {
    pub fn on(listen: &str) -> Self {
        Self {
            listen: listen.to_owned(),
        }
    }

    /// The address to bind, `None` when the listener is off.
    pub fn address(&self) -> Option<std::net::SocketAddr> {
        self.listen.parse().ok()
    }

    /// Checks the address, reporting a problem under `setting` (the key that holds it).
    pub fn validate(&self, setting: &str) -> Result<(), ConfigError> {
        check(
            setting,
            self.listen.is_empty() || self.address().is_some(),
            || {
                format!(
                    "{:?} is not host:port (for example 0.0.0.0:9101)",
                    self.listen
                )
            },
        )
    }
}

/// `[encryption]`: the key that seals stored secrets (server credentials, webhook secrets).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionSettings {
    /// 32 bytes as 64 hex digits or base64. `ENCRYPTION_KEY` sets it too.
    pub key: Option<Secret>,
    /// The id stored with everything sealed by `key`.
    pub key_id: u32,
    /// Older keys by id, still accepted for decryption while values are re-sealed.
    pub previous_keys: std::collections::HashMap<String, Secret>,
}

impl Default for EncryptionSettings {
    fn default() -> Self {
        Self {
            key: None,
            key_id: 1,
            previous_keys: std::collections::HashMap::new(),
        }
    }
}

impl EncryptionSettings {
    /// The key ring, `None` when no key is configured.
    pub fn key_ring(&self) -> Result<Option<KeyRing>, ConfigError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let mut previous = std::collections::HashMap::new();
        for (id, old) in &self.previous_keys {
            let id: u32 = id.parse().map_err(|_| {
                ConfigError::new(
                    "encryption.previous_keys",
                    format!("key id {id:?} is not a number"),
                )
            })?;
            previous.insert(id, old.clone());
        }
        KeyRing::from_secrets(self.key_id, key, &previous)
            .map(Some)
            .map_err(|err| ConfigError::new("encryption.key", err.to_string()))
    }
}

impl Validate for EncryptionSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.key_ring()?;
        if let Some(key) = &self.key {
            check_secret("encryption.key", key.expose(), SecretKind::EncryptionKey)?;
        }
        for (id, key) in &self.previous_keys {
            check_secret(
                &format!("encryption.previous_keys.{id}"),
                key.expose(),
                SecretKind::EncryptionKey,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_url_takes_a_list_and_names_the_bad_entry() {
        let with = |url: &str| NatsSettings {
            url: url.to_owned(),
            ..NatsSettings::default()
        };
        assert!(
            with("tls://nats:4222,tls://nats-2:4222,tls://nats-3:4222")
                .validate()
                .is_ok()
        );
        let err = with("tls://nats:4222,nats-2:4222:x")
            .validate()
            .expect_err("a bad port");
        assert_eq!(err.setting, "nats.url");
        assert!(
            err.message
                .contains("\"nats-2:4222:x\" (entry 2 of the list)"),
            "{err}"
        );
        let err = with(" ").validate().expect_err("empty");
        assert_eq!(
            (err.setting.as_str(), err.message.as_str()),
            ("nats.url", "must not be empty")
        );
        let err = with(",").validate().expect_err("only a comma");
        assert!(err.message.contains("no server given"), "{err}");
    }

    #[test]
    fn the_password_of_a_database_url_is_found() {
        assert_eq!(
            url_password("postgres://flick:s3cret@db:5432/flick"),
            Some("s3cret")
        );
        assert_eq!(url_password("postgres://flick:a@b@db/flick"), Some("a@b"));
        assert_eq!(
            url_password("postgres://postgres@127.0.0.1:5432/flick"),
            None
        );
        assert_eq!(url_password("postgres://127.0.0.1/flick?user=x"), None);
    }
}
