//! The gateway's configuration: `[nats]`, `[streams]`, `[database]`, `[log]`, `[encryption]`,
//! `[gateway]`, `[notify]`, `[enrollment]`.
//!
//! The gateway no longer reads `[alerter]`: the default alert rules it shows are the ones the
//! alerter recorded in `alert_defaults` (the built-in ones until an alerter has started), not a
//! copy from the gateway's own environment that could differ from the rules in force. A
//! configuration that still gives the gateway an `[alerter]` section (or `FLICK_ALERTER__*`
//! variables) keeps starting: sections a service does not have are ignored.

use serde::Deserialize;

use flick_shared::Secret;
use flick_shared::config::{
    ConfigError, DatabaseSettings, EncryptionSettings, LogSettings, NatsSettings, SecretKind,
    StreamSettings, Validate, check, check_secret,
};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub nats: NatsSettings,
    pub streams: StreamSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub encryption: EncryptionSettings,
    pub gateway: GatewaySettings,
    /// Where notification channels may point (checked when one is created).
    pub notify: flick_shared::outbound::NotifySettings,
    /// Enrolling hosts (written by `flick init`).
    pub enrollment: EnrollmentSettings,
}

/// `[enrollment]`: the keys by which the gateway issues and revokes hosts' NATS identities.
/// Unset (no `flick init`), the enrolment routes answer 503.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnrollmentSettings {
    /// The FLICK account's public key.
    pub account: Option<String>,
    /// Seed of the account's signing key: signs hosts' user JWTs.
    pub account_signing_seed: Option<Secret>,
    /// Seed of the operator's signing key: signs the account JWT carrying revocations.
    pub operator_signing_seed: Option<Secret>,
    /// `.creds` of the system account's `registrar` user, which pushes account updates.
    pub registrar_creds: Option<std::path::PathBuf>,
    /// NATS URLs given to enrolled hosts (`tls://hub.example.com:4222`): a list, or one
    /// comma-separated string.
    #[serde(deserialize_with = "flick_shared::config::list_or_commas")]
    pub nats_urls: Vec<String>,
    /// The CA certificate (PEM) NATS's TLS certificate chains to, given to enrolled hosts.
    pub ca: Option<std::path::PathBuf>,
    /// This hub's URL as hosts reach it (`https://hub.example.com`), for the commands the
    /// dashboard shows; unset, the address the request came to.
    pub public_url: Option<String>,
    /// Default lifetime of an enrolment token.
    pub token_ttl_secs: u64,
}

impl Default for EnrollmentSettings {
    fn default() -> Self {
        Self {
            account: None,
            account_signing_seed: None,
            operator_signing_seed: None,
            registrar_creds: None,
            nats_urls: Vec::new(),
            ca: None,
            public_url: None,
            token_ttl_secs: 3_600,
        }
    }
}

impl Validate for EnrollmentSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let seed = |setting: &str, seed: &Option<Secret>, kind: char| match seed {
            Some(seed) => check(
                setting,
                seed.expose().starts_with(&format!("S{kind}"))
                    && nkeys::KeyPair::from_seed(seed.expose()).is_ok(),
                || format!("is not an nkey seed of the right kind (S{kind}…)"),
            ),
            None => Ok(()),
        };
        seed(
            "enrollment.account_signing_seed",
            &self.account_signing_seed,
            'A',
        )?;
        seed(
            "enrollment.operator_signing_seed",
            &self.operator_signing_seed,
            'O',
        )?;
        if let Some(account) = &self.account {
            check(
                "enrollment.account",
                account.starts_with('A') && nkeys::KeyPair::from_public_key(account).is_ok(),
                || format!("{account:?} is not an account public key (A…)"),
            )?;
        }
        for (setting, path) in [
            ("enrollment.registrar_creds", &self.registrar_creds),
            ("enrollment.ca", &self.ca),
        ] {
            if let Some(path) = path {
                check(setting, path.is_file(), || {
                    format!("{} is not a readable file", path.display())
                })?;
            }
        }
        // Each entry is what an enrolled host's `nats.url` will hold (its list joined by commas):
        // refused here, not by every host that enrols.
        for url in &self.nats_urls {
            flick_shared::nats::server_addrs(url)
                .map_err(|err| ConfigError::new("enrollment.nats_urls", err.to_string()))?;
        }
        check(
            "enrollment.token_ttl_secs",
            (60..=7 * 86_400).contains(&self.token_ttl_secs),
            || format!("{} is not in 60..=604800", self.token_ttl_secs),
        )
    }
}

/// `[gateway]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// Address to listen on. `HOST` sets it too.
    pub host: String,
    /// Port to listen on (0 picks a free one). `PORT` sets it too.
    pub port: u16,
    /// HS256 signing key of access tokens, at least 32 bytes. `JWT_SECRET` sets it too.
    pub jwt_secret: Option<Secret>,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_days: u64,
    /// Whether anyone may register after the first account (which becomes admin).
    pub registration_open: bool,
    /// Origins allowed by CORS and on WebSocket upgrades (`https://dash.example.com`); none by default.
    pub cors_origins: Vec<String>,
    /// Login and register attempts per client IP: a burst of this many …
    pub auth_burst: u32,
    /// … then one more every this many seconds.
    pub auth_refill_secs: u64,
    /// Requests per authenticated user: a burst of this many …
    pub user_burst: u32,
    /// … refilled at this many per second.
    pub user_per_second: u32,
    /// Login and register attempts across all clients: a burst of this many …
    pub auth_global_burst: u32,
    /// … refilled at this many per second (a flood from many addresses meets this bound).
    pub auth_global_per_second: u32,
    /// Password hashes computed at once (each takes 19 MiB and a core); 0: one per core.
    pub password_hash_workers: usize,
    /// How long a login or registration waits for a hashing worker before 503.
    pub password_hash_queue_ms: u64,
    /// Take the client IP from `X-Forwarded-For` (only behind a trusted reverse proxy).
    pub trust_forwarded_for: bool,
    /// With `trust_forwarded_for`: how many reverse proxies in front of the gateway append to
    /// `X-Forwarded-For`; the client is that many entries from the right (what a client writes
    /// itself, to the left, is never believed).
    pub trusted_proxies: usize,
    /// How long an answer on an account and session is cached (at most 5 s): logout, deletion,
    /// disabling and role changes take effect within this time even if a notification is lost.
    pub access_cache_ms: u64,
    /// Mark the refresh cookie `Secure` (browsers then send it over HTTPS and to localhost
    /// only). Turn off only for plain HTTP on a trusted network.
    pub cookie_secure: bool,
    /// PostgreSQL's `statement_timeout` for the gateway's queries.
    pub statement_timeout_ms: u64,
    /// History queries one user may run at once (429 beyond it).
    pub history_per_user: usize,
    /// History queries running at once across users; 0: half the database pool, so the other
    /// half always serves everything else.
    pub history_concurrency: usize,
    /// WebSocket connections one user may hold (across the user's sessions).
    pub ws_max_per_user: usize,
    /// WebSocket connections one client address (IPv6: its /64) may hold.
    pub ws_max_per_address: usize,
    /// `host:port` of `/readyz` and `/metrics` (loopback by default: they say more than the
    /// public should hear); empty turns it off. `/healthz` stays on the public port too.
    pub ops_listen: String,
    pub body_limit_bytes: usize,
    pub request_timeout_ms: u64,
    /// A server with no sample for this long is shown offline.
    pub offline_after_secs: u64,
    /// The longest history range one request may ask for.
    pub history_max_days: u32,
    /// WebSocket: a browser must authenticate with its first message within this time.
    pub ws_auth_timeout_ms: u64,
    /// WebSocket: servers one connection may watch.
    pub ws_max_subscriptions: usize,
    /// WebSocket: largest client message (bytes); larger closes the connection (1009).
    pub ws_max_message_bytes: usize,
    /// WebSocket: client messages per second (a burst of twice as many is allowed).
    pub ws_messages_per_second: u32,
    /// WebSocket: answers and alerts waiting for a client before it counts as too slow.
    pub ws_max_queued: usize,
    /// WebSocket: how long one send may block before the client counts as too slow.
    pub ws_send_timeout_ms: u64,
    /// WebSocket: ping interval; a client silent for three intervals is disconnected.
    pub ws_ping_secs: u64,
    /// WebSocket: how often a connection re-checks which of its servers the user may still see
    /// (a server deleted or given to another owner stops streaming within this time).
    pub ws_recheck_secs: u64,
    /// The built web dashboard (`npm run build` in `services/gateway/web`). Unset: that
    /// `web/dist` of the source tree when it exists, else `/usr/share/flick/web`.
    pub web_dir: Option<std::path::PathBuf>,
    /// Collector binaries served at `/downloads` (`flick-collector-linux-<arch>`, for the
    /// installer). Unset: `/usr/share/flick/downloads` when it exists (the gateway's image),
    /// else the `flick-collector` beside the gateway's own binary.
    pub downloads_dir: Option<std::path::PathBuf>,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 8080,
            jwt_secret: None,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_days: 30,
            registration_open: true,
            cors_origins: Vec::new(),
            auth_burst: 5,
            auth_refill_secs: 12,
            user_burst: 120,
            user_per_second: 20,
            auth_global_burst: 100,
            auth_global_per_second: 20,
            password_hash_workers: 0,
            password_hash_queue_ms: 3_000,
            trust_forwarded_for: false,
            trusted_proxies: 1,
            access_cache_ms: 2_000,
            cookie_secure: true,
            statement_timeout_ms: 5_000,
            history_per_user: 2,
            history_concurrency: 0,
            ws_max_per_user: 50,
            ws_max_per_address: 200,
            ops_listen: "127.0.0.1:9103".to_owned(),
            body_limit_bytes: 64 * 1024,
            request_timeout_ms: 10_000,
            offline_after_secs: 30,
            history_max_days: 30,
            ws_auth_timeout_ms: 5_000,
            ws_max_subscriptions: 200,
            ws_max_message_bytes: 16 * 1024,
            ws_messages_per_second: 20,
            ws_max_queued: 256,
            ws_send_timeout_ms: 10_000,
            ws_ping_secs: 20,
            ws_recheck_secs: 30,
            web_dir: None,
            downloads_dir: None,
        }
    }
}

impl GatewaySettings {
    pub fn ops(&self) -> flick_shared::config::OpsSettings {
        flick_shared::config::OpsSettings::on(&self.ops_listen)
    }

    pub fn listen_address(&self) -> Option<std::net::SocketAddr> {
        format!("{}:{}", self.host, self.port)
            .parse()
            .ok()
            .or_else(|| format!("[{}]:{}", self.host, self.port).parse().ok())
    }
}

/// The shortest signing key accepted for HS256 (the hash's output size).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

impl flick_shared::service::ServiceConfig for Config {
    fn log(&self) -> &LogSettings {
        &self.log
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), ConfigError> {
        self.nats.validate()?;
        self.streams.validate()?;
        self.database.validate()?;
        self.log.validate()?;
        self.encryption.validate()?;
        self.notify.validate()?;
        self.enrollment.validate()?;
        let g = &self.gateway;
        check("gateway.host", g.listen_address().is_some(), || {
            format!("{:?} is not an IP address to listen on", g.host)
        })?;
        match &g.jwt_secret {
            None => {
                return Err(ConfigError::new(
                    "gateway.jwt_secret",
                    "is required (set JWT_SECRET to at least 32 random bytes)",
                ));
            }
            Some(secret) => check(
                "gateway.jwt_secret",
                secret.expose().len() >= MIN_JWT_SECRET_BYTES,
                || {
                    format!(
                        "is {} bytes; at least {MIN_JWT_SECRET_BYTES} are required",
                        secret.expose().len()
                    )
                },
            )
            .and_then(|()| {
                check_secret(
                    "gateway.jwt_secret",
                    secret.expose(),
                    SecretKind::SigningKey,
                )
            })?,
        }
        check("encryption.key", self.encryption.key.is_some(), || {
            "is required by the gateway (set ENCRYPTION_KEY to 32 bytes, hex or base64)".into()
        })?;
        check(
            "gateway.access_token_ttl_secs",
            (60..=86_400).contains(&g.access_token_ttl_secs),
            || format!("{} is not in 60..=86400", g.access_token_ttl_secs),
        )?;
        check(
            "gateway.refresh_token_ttl_days",
            (1..=365).contains(&g.refresh_token_ttl_days),
            || format!("{} is not in 1..=365", g.refresh_token_ttl_days),
        )?;
        check("gateway.auth_burst", g.auth_burst >= 1, || {
            "must be at least 1".into()
        })?;
        check(
            "gateway.auth_global_burst",
            g.auth_global_burst >= 1 && g.auth_global_per_second >= 1,
            || {
                "gateway.auth_global_burst and gateway.auth_global_per_second must be at least 1"
                    .into()
            },
        )?;
        check(
            "gateway.trusted_proxies",
            (1..=10).contains(&g.trusted_proxies),
            || format!("{} is not in 1..=10", g.trusted_proxies),
        )?;
        check(
            "gateway.access_cache_ms",
            g.access_cache_ms <= 5_000,
            || {
                format!(
                    "{} is more than 5000: sessions must end within seconds",
                    g.access_cache_ms
                )
            },
        )?;
        check(
            "gateway.statement_timeout_ms",
            (100..=600_000).contains(&g.statement_timeout_ms),
            || format!("{} is not in 100..=600000", g.statement_timeout_ms),
        )?;
        check("gateway.history_per_user", g.history_per_user >= 1, || {
            "must be at least 1".into()
        })?;
        check(
            "gateway.ws_max_per_user",
            g.ws_max_per_user >= 1 && g.ws_max_per_address >= 1,
            || "gateway.ws_max_per_user and gateway.ws_max_per_address must be at least 1".into(),
        )?;
        g.ops().validate("gateway.ops_listen")?;
        check(
            "gateway.user_burst",
            g.user_burst >= 1 && g.user_per_second >= 1,
            || "gateway.user_burst and gateway.user_per_second must be at least 1".into(),
        )?;
        for origin in &g.cors_origins {
            check(
                "gateway.cors_origins",
                origin.starts_with("http://") || origin.starts_with("https://"),
                || format!("{origin:?} is not an origin such as https://dash.example.com"),
            )?;
        }
        check(
            "gateway.body_limit_bytes",
            g.body_limit_bytes >= 1024,
            || "must be at least 1024".into(),
        )?;
        check("gateway.history_max_days", g.history_max_days >= 1, || {
            "must be at least 1".into()
        })?;
        check(
            "gateway.ws_max_message_bytes",
            g.ws_max_message_bytes >= 256,
            || "must be at least 256".into(),
        )?;
        check(
            "gateway.ws_messages_per_second",
            g.ws_messages_per_second >= 1,
            || "must be at least 1".into(),
        )?;
        check("gateway.ws_ping_secs", g.ws_ping_secs >= 1, || {
            "must be at least 1".into()
        })?;
        check("gateway.ws_recheck_secs", g.ws_recheck_secs >= 1, || {
            "must be at least 1".into()
        })?;
        if let Some(dir) = &g.downloads_dir {
            check("gateway.downloads_dir", dir.is_dir(), || {
                format!("{} is not a directory", dir.display())
            })?;
        }
        match &g.web_dir {
            Some(dir) => check("gateway.web_dir", dir.is_dir(), || {
                format!("{} is not a directory", dir.display())
            }),
            None => Ok(()),
        }
    }
}
