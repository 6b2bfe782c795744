//! The whole stack as separate processes (the real binaries) on a private subject prefix and
//! database, for the end-to-end test, the fault drills and the deployment checks.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use flick_shared::Subjects;
use flick_shared::testkit::{self, Process, TestDb};

/// The stack's signing and encryption keys (random: the services refuse published or
/// patterned secrets).
pub static JWT_SECRET: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(testkit::random_key_hex);
pub static ENCRYPTION_KEY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(testkit::random_key_hex);

/// One of the service binaries and how it is started.
#[derive(Debug, Clone)]
pub enum Service {
    /// `flick-collector`: samples this host.
    Collector,
    /// `flick-collector simulate --servers N --hot K`.
    Simulator {
        servers: usize,
        hot: usize,
    },
    Persister,
    Alerter,
    Gateway,
}

impl Service {
    /// The user of `nats.conf` the service connects as.
    fn role(&self) -> &'static str {
        match self {
            Self::Collector | Self::Simulator { .. } => "collector",
            Self::Persister => "persister",
            Self::Alerter => "alerter",
            Self::Gateway => "gateway",
        }
    }

    fn binary(&self) -> &'static str {
        match self {
            Self::Collector | Self::Simulator { .. } => "flick-collector",
            Self::Persister => "flick-persister",
            Self::Alerter => "flick-alerter",
            Self::Gateway => "flick-gateway",
        }
    }
}

/// A built service binary in this test's target directory (built on demand when a narrower
/// `cargo test -p flick` did not build it).
pub fn binary(name: &str) -> PathBuf {
    let dir = std::env::current_exe()
        .expect("test executable")
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .to_path_buf();
    let path = dir.join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--bin", name, "--package", name])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --bin {name} failed");
    }
    path
}

/// Addresses and names one stack uses; the services are started with [`Stack::spawn`].
#[derive(Debug)]
pub struct Stack {
    pub db: TestDb,
    pub subjects: Subjects,
    pub nats_url: String,
    pub gateway_port: u16,
    pub persister_ops: String,
    pub alerter_ops: String,
    /// `host:port` of the gateway's operations listener.
    pub gateway_ops: String,
    /// Extra settings given to every service (`Stack::with_env`).
    pub env: Vec<(String, String)>,
    /// Each service connects with its own `.creds` of a hub (`HubServer`): the directory of
    /// them and the CA, with TLS.
    pub hub: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Stack {
    /// A stack on the machine's NATS and PostgreSQL.
    pub async fn new() -> Self {
        Self::on_nats(testkit::nats_url()).await
    }

    /// A stack on the NATS at `nats_url` (a private server for drills that restart it).
    pub async fn on_nats(nats_url: String) -> Self {
        testkit::init_test_logs();
        Self {
            db: TestDb::empty().await,
            subjects: testkit::unique_subjects(),
            nats_url,
            gateway_port: testkit::free_port(),
            persister_ops: format!("127.0.0.1:{}", testkit::free_port()),
            alerter_ops: format!("127.0.0.1:{}", testkit::free_port()),
            gateway_ops: format!("127.0.0.1:{}", testkit::free_port()),
            env: Vec::new(),
            hub: None,
        }
    }

    /// A stack on a hub's NATS in operator mode (`testkit::HubServer`, or the three nodes of a
    /// `testkit::HubCluster`; the files `flick init` writes): each service connects over TLS
    /// with its own `.creds`, given every node's URL.
    pub async fn on_hub(hub: &impl testkit::Hub) -> Self {
        let mut stack = Self::on_nats(hub.url()).await;
        stack.subjects = hub.subjects().clone();
        stack.hub = Some((hub.path("creds"), hub.ca()));
        // The gateway enrols hosts with the hub's keys, as flick.toml's [enrollment] says.
        let keys = hub.keys();
        let seed = |key: &nkeys::KeyPair| key.seed().expect("seed");
        stack
            .with_env("FLICK_ENROLLMENT__ACCOUNT", &keys.account.public_key())
            .with_env(
                "FLICK_ENROLLMENT__ACCOUNT_SIGNING_SEED",
                &seed(&keys.account_signing),
            )
            .with_env(
                "FLICK_ENROLLMENT__OPERATOR_SIGNING_SEED",
                &seed(&keys.operator_signing),
            )
            .with_env(
                "FLICK_ENROLLMENT__REGISTRAR_CREDS",
                &hub.path("creds/registrar.creds").display().to_string(),
            )
            .with_env("FLICK_ENROLLMENT__CA", &hub.ca().display().to_string())
            .with_env("FLICK_ENROLLMENT__NATS_URLS", &hub.url())
    }

    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.gateway_port)
    }

    /// The environment every service gets: this stack's NATS, prefix, database, ports and
    /// secrets, small test streams, and quick timings.
    pub fn base_env(&self) -> Vec<(String, String)> {
        let streams = testkit::stream_settings();
        let mut env: Vec<(String, String)> = [
            ("NATS_URL", self.nats_url.clone()),
            ("FLICK_NATS__PREFIX", self.subjects.prefix().to_owned()),
            ("DATABASE_URL", self.db.url().to_owned()),
            ("PORT", self.gateway_port.to_string()),
            ("HOST", "127.0.0.1".to_owned()),
            ("JWT_SECRET", JWT_SECRET.to_string()),
            ("ENCRYPTION_KEY", ENCRYPTION_KEY.to_string()),
            ("FLICK_PERSISTER__OPS_LISTEN", self.persister_ops.clone()),
            ("FLICK_ALERTER__OPS_LISTEN", self.alerter_ops.clone()),
            ("FLICK_GATEWAY__OPS_LISTEN", self.gateway_ops.clone()),
            (
                "FLICK_STREAMS__METRICS_MAX_BYTES",
                streams.metrics_max_bytes.to_string(),
            ),
            (
                "FLICK_STREAMS__ALERTS_MAX_BYTES",
                streams.alerts_max_bytes.to_string(),
            ),
            (
                "FLICK_STREAMS__LOGS_MAX_BYTES",
                streams.logs_max_bytes.to_string(),
            ),
            (
                "FLICK_STREAMS__PROCESSES_MAX_BYTES",
                streams.processes_max_bytes.to_string(),
            ),
            (
                "RUST_LOG",
                std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(self.env.iter().cloned());
        env
    }

    /// Starts `service` as its own process with [`Stack::base_env`] plus `extra`.
    pub fn spawn(&self, service: &Service, extra: &[(&str, &str)]) -> Process {
        Process::spawn(&mut self.command(service, extra))
    }

    /// The command [`Stack::spawn`] runs, for a caller that wants to redirect its output first.
    pub fn command(&self, service: &Service, extra: &[(&str, &str)]) -> Command {
        let mut command = Command::new(binary(service.binary()));
        if let Service::Simulator { servers, hot } = service {
            command.args([
                "simulate",
                "--servers",
                &servers.to_string(),
                "--hot",
                &hot.to_string(),
            ]);
        }
        if let Some((creds, ca)) = &self.hub {
            command
                .env("FLICK_NATS__CREDS_DIR", creds)
                .env("FLICK_NATS__CA", ca);
        }
        command
            .envs(self.base_env())
            .envs(extra.iter().copied())
            .stdin(std::process::Stdio::null());
        command
    }

    /// Waits until `url` answers 200 (a service's `/readyz` or `/healthz`).
    pub async fn wait_ready(&self, url: &str) {
        testkit::wait_until_ok(url, Duration::from_secs(60)).await;
    }

    /// Starts the persister, alerter and gateway and waits until each is ready.
    pub async fn start_backend(&self) -> Backend {
        let persister = self.spawn(&Service::Persister, &[]);
        let alerter = self.spawn(&Service::Alerter, &[]);
        let gateway = self.spawn(&Service::Gateway, &[]);
        self.wait_ready(&format!("http://{}/readyz", self.persister_ops))
            .await;
        self.wait_ready(&format!("http://{}/readyz", self.alerter_ops))
            .await;
        self.wait_ready(&format!("http://{}/readyz", self.gateway_ops))
            .await;
        Backend {
            persister,
            alerter,
            gateway,
        }
    }
}

/// The three back-end processes of a stack (killed when dropped).
#[derive(Debug)]
pub struct Backend {
    pub persister: Process,
    pub alerter: Process,
    pub gateway: Process,
}

/// A JSON client of the gateway's public REST API.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let url = format!("{}/api/v1{path}", self.base);
        testkit::call_json(&self.http, method, &url, token, body).await
    }

    pub async fn get(&self, path: &str, token: &str) -> serde_json::Value {
        let (status, body) = self
            .call(reqwest::Method::GET, path, Some(token), None)
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// The API of `stack`'s gateway.
    pub fn of(stack: &Stack) -> Self {
        Self {
            http: testkit::http(),
            base: stack.gateway_url(),
        }
    }

    /// Registers `email` and returns its access token.
    pub async fn register(&self, email: &str) -> String {
        let (status, session) = self
            .call(
                reqwest::Method::POST,
                "/auth/register",
                None,
                Some(serde_json::json!({ "email": email, "password": "correct horse battery staple" })),
            )
            .await;
        assert_eq!(
            status,
            reqwest::StatusCode::CREATED,
            "register {email}: {session}"
        );
        session["accessToken"]
            .as_str()
            .expect("access token")
            .to_owned()
    }
}
