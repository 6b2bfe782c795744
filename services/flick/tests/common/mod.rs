//! The whole stack as separate processes (the real binaries) on a private subject prefix and
//! database, for the end-to-end test, the fault drills and the deployment checks.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use flick_shared::Subjects;
use flick_shared::testkit::{self, Process, TestDb};

pub const JWT_SECRET: &str = "e2e-secret-that-is-long-enough-for-hs256-0123456789";
pub const ENCRYPTION_KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

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
    /// Extra settings given to every service (`Stack::with_env`).
    pub env: Vec<(String, String)>,
    /// Each service connects as its own user of `nats.conf` (password `<role>-pw`).
    pub nats_conf_users: bool,
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
            env: Vec::new(),
            nats_conf_users: false,
        }
    }

    /// A stack on a private server started with the repository's `nats.conf`
    /// (`testkit::nats_conf_server`): each service connects as its own role, under the `flick`
    /// prefix the file's permissions name.
    pub async fn on_nats_conf(server: &testkit::NatsServer) -> Self {
        let mut stack = Self::on_nats(server.url()).await;
        stack.subjects = Subjects::new("flick").expect("valid prefix");
        stack.nats_conf_users = true;
        stack
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
            ("JWT_SECRET", JWT_SECRET.to_owned()),
            ("ENCRYPTION_KEY", ENCRYPTION_KEY.to_owned()),
            ("FLICK_PERSISTER__OPS_LISTEN", self.persister_ops.clone()),
            ("FLICK_ALERTER__OPS_LISTEN", self.alerter_ops.clone()),
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
        if self.nats_conf_users {
            let role = service.role();
            command
                .env("FLICK_NATS__USER", role)
                .env("FLICK_NATS__PASSWORD", format!("{role}-pw"));
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
        self.wait_ready(&format!("{}/readyz", self.gateway_url()))
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
