//! The gateway as the hub's registrar: it signs an enrolled host's NATS identity and revokes it.
//!
//! A host's user JWT is signed with the FLICK account's signing key and names only the host's
//! own subjects. Revocation is pushed to the NATS servers rather than waited for: the gateway
//! re-signs the account JWT (with the operator's signing key) listing every revoked host key,
//! and sends it to `$SYS.REQ.CLAIMS.UPDATE` as the system account's `registrar` user; the
//! servers close the revoked hosts' connections at once and refuse them afterwards. This was
//! chosen over short-lived host JWTs renewed every minute because it takes effect in
//! milliseconds, needs no periodic reconnection of every host, and keeps the data path free of
//! the gateway: a gateway outage does not cut hosts off. The cost is an account JWT that grows
//! by one entry per revoked enrolment. The account JWT is pushed again at start-up and every
//! minute, so a NATS server restarted from an older resolver directory, or a push that failed,
//! converges within a minute; the list is read from PostgreSQL each time, so any gateway
//! replica may push. (NATS 2.10's auth callout would let the hub decide each connection itself;
//! 2.9, the deployed server, does not have it.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nkeys::KeyPair;
use sqlx::PgPool;
use tokio::sync::Notify;

use flick_shared::Subjects;
use flick_shared::config::NatsSettings;
use flick_shared::natsauth::{hub, jwt, roles};
use flick_shared::shutdown::CancellationToken;
use flick_shared::wire::ServerId;

use crate::config::EnrollmentSettings;

/// What the gateway needs to enrol and revoke hosts.
pub struct Registrar {
    account: String,
    account_signing: KeyPair,
    operator_signing: KeyPair,
    subjects: Subjects,
    pool: PgPool,
    nats: NatsSettings,
    /// Enrolled hosts connect here and trust `ca` (PEM).
    pub nats_urls: Vec<String>,
    pub ca: Option<String>,
    /// `sha256:<hex>` of `ca`.
    pub ca_fingerprint: Option<String>,
    pub public_url: Option<String>,
    push_now: Notify,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl Registrar {
    /// `None` when enrolment is not configured (no account keys: `flick init` makes them).
    pub fn new(
        settings: &EnrollmentSettings,
        nats: &NatsSettings,
        pool: PgPool,
    ) -> anyhow::Result<Option<Arc<Self>>> {
        use anyhow::Context as _;
        let (Some(account), Some(account_seed), Some(operator_seed), Some(creds)) = (
            &settings.account,
            &settings.account_signing_seed,
            &settings.operator_signing_seed,
            &settings.registrar_creds,
        ) else {
            return Ok(None);
        };
        let ca = match &settings.ca {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("enrollment.ca {}", path.display()))?,
            ),
            None => None,
        };
        let registrar_nats = NatsSettings {
            creds: Some(creds.clone()),
            creds_dir: None,
            user: None,
            password: None,
            inbox_prefix: None,
            ..nats.clone()
        };
        Ok(Some(Arc::new(Self {
            account: account.clone(),
            account_signing: KeyPair::from_seed(account_seed.expose())
                .context("enrollment.account_signing_seed")?,
            operator_signing: KeyPair::from_seed(operator_seed.expose())
                .context("enrollment.operator_signing_seed")?,
            subjects: nats.subjects(),
            pool,
            nats: registrar_nats,
            nats_urls: settings.nats_urls.clone(),
            ca_fingerprint: ca
                .as_deref()
                .and_then(flick_shared::natsauth::tls::fingerprint),
            ca,
            public_url: settings.public_url.clone(),
            push_now: Notify::new(),
        })))
    }

    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// A user JWT for the host key `public_key` reporting as `server`, issued after any
    /// revocation of that key (`not_before`).
    pub fn host_jwt(
        &self,
        public_key: &str,
        server: &ServerId,
        not_before: Option<DateTime<Utc>>,
    ) -> anyhow::Result<String> {
        let now = Utc::now().timestamp();
        let issued_at = not_before.map_or(now, |t| now.max(t.timestamp() + 1));
        Ok(jwt::user(
            public_key,
            server.as_str(),
            &self.account,
            &roles::host(&self.subjects, server),
            issued_at,
            None,
            &self.account_signing,
        )?)
    }

    /// Asks for the account JWT to be pushed now (a host was revoked).
    pub fn revoked(&self) {
        self.push_now.notify_one();
    }

    /// Pushes the account JWT at start-up, when asked, and every minute, until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        let mut client: Option<async_nats::Client> = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = every.tick() => {}
                () = self.push_now.notified() => {}
            }
            if client.is_none() {
                match flick_shared::nats::connect(&self.nats, "registrar").await {
                    Ok(connected) => client = Some(connected),
                    Err(err) => {
                        tracing::warn!(error = %flick_shared::telemetry::one_line(&anyhow::Error::new(err)), "Cannot connect as the registrar; revocations wait");
                        continue;
                    }
                }
            }
            if let Some(client) = &client
                && let Err(err) = self.push(client).await
            {
                tracing::warn!(error = %err, "Cannot push the account's revocations; retrying within a minute");
            }
        }
    }

    /// Signs the account JWT with every revoked host key and sends it to the servers.
    #[tracing::instrument(skip_all, err)]
    pub async fn push(&self, client: &async_nats::Client) -> anyhow::Result<usize> {
        let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT public_key, max(revoked_at) FROM host_keys
             WHERE revoked_at IS NOT NULL GROUP BY public_key",
        )
        .fetch_all(&self.pool)
        .await?;
        let revocations: BTreeMap<String, i64> = rows
            .into_iter()
            .map(|(key, at)| (key, at.timestamp()))
            .collect();
        let account = hub::account_jwt(
            &self.account,
            &self.account_signing.public_key(),
            &revocations,
            Utc::now().timestamp(),
            &self.operator_signing,
        )?;
        let answer = client
            .request("$SYS.REQ.CLAIMS.UPDATE", account.into())
            .await?;
        let answer: serde_json::Value = serde_json::from_slice(&answer.payload)?;
        let code = answer["data"]["code"]
            .as_i64()
            .or(answer["error"]["code"].as_i64());
        if code != Some(200) {
            anyhow::bail!("the NATS server refused the account update: {answer}");
        }
        tracing::debug!(revoked = revocations.len(), "Account revocations pushed");
        Ok(revocations.len())
    }
}

/// Whether `key` is an nkey user public key (what a host presents).
pub fn is_user_key(key: &str) -> bool {
    key.starts_with('U') && KeyPair::from_public_key(key).is_ok()
}
