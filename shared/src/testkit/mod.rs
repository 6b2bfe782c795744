//! Helpers for tests against the real NATS and PostgreSQL (enabled by the `testkit` feature).
//!
//! Each test isolates itself with its own subject prefix (hence its own stream names), and, when
//! it needs to stop or restart NATS or PostgreSQL, its own private `nats-server` or PostgreSQL
//! cluster on a free port.

mod bed;
mod database;
mod docker_engine;
mod hub_server;
mod nats_cluster;
mod nats_server;
mod postgres_server;
mod process;
mod prometheus;
mod receive;

pub use bed::TestBed;
pub use database::{TestDb, with_admin_from_drop};
pub use docker_engine::{DockerEngine, TEST_IMAGE, TestContainer};
pub use hub_server::{Hub, HubCluster, HubServer};
pub use nats_cluster::NatsCluster;
pub use nats_server::NatsServer;
pub use postgres_server::PostgresServer;
pub use process::Process;
pub use prometheus::counter as prometheus_counter;
pub use receive::{eventually, next_json, next_message, publish_samples, read_stream, registered};

use crate::Subjects;

/// `NATS_URL`, or the machine's NATS at `nats://127.0.0.1:4222`.
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// `DATABASE_URL`, or the machine's PostgreSQL at `postgres://postgres@127.0.0.1:5432/postgres`.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Stream limits for tests: JetStream reserves each stream's `max_bytes` up front, so the
/// production defaults (1 GiB) would exhaust the test server after a few dozen tests.
pub fn stream_settings() -> crate::config::StreamSettings {
    crate::config::StreamSettings {
        metrics_max_bytes: 64 << 20,
        alerts_max_bytes: 8 << 20,
        logs_max_bytes: 8 << 20,
        processes_max_bytes: 4 << 20,
        ..Default::default()
    }
}

/// Connects to the local test NATS; the first call in a process also deletes the streams that
/// earlier test runs left behind (test prefixes, older than ten minutes).
pub async fn connect() -> async_nats::Client {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let servers = crate::nats::server_addrs(&nats_url())
        .unwrap_or_else(|err| panic!("NATS_URL={}: {err}", nats_url()));
    let client = async_nats::connect(servers)
        .await
        .unwrap_or_else(|err| panic!("cannot connect to NATS at {}: {err}", nats_url()));
    let js = async_nats::jetstream::new(client.clone());
    SWEPT.get_or_init(|| sweep_stale_streams(js)).await;
    client
}

/// Deletes streams named like a test's (`T` + 12 hex digits + `_`) created over ten minutes ago.
async fn sweep_stale_streams(js: async_nats::jetstream::Context) {
    use futures::TryStreamExt;
    let cutoff = chrono::Utc::now() - chrono::Duration::minutes(10);
    let Ok(infos) = js.streams().try_collect::<Vec<_>>().await else {
        return;
    };
    for info in infos {
        let name = &info.config.name;
        let is_test = name.len() > 14
            && name.starts_with('T')
            && name.as_bytes()[13] == b'_'
            && name[1..13].bytes().all(|b| b.is_ascii_hexdigit());
        if is_test && info.created < cutoff {
            let _ = js.delete_stream(name).await;
        }
    }
}

/// NATS settings for the local test server under `prefix`.
pub fn nats_settings(prefix: &str) -> crate::config::NatsSettings {
    crate::config::NatsSettings {
        url: nats_url(),
        prefix: prefix.to_owned(),
        ..Default::default()
    }
}

/// A subject prefix no other test uses, such as `t3f9a0c2d4e1b`.
pub fn unique_prefix() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t{}", &id[..12])
}

/// The subjects and stream names of a fresh, private namespace.
pub fn unique_subjects() -> Subjects {
    Subjects::new(unique_prefix()).expect("generated prefixes are valid")
}

/// 32 random bytes as 64 hex digits: a valid `JWT_SECRET` and `ENCRYPTION_KEY` alike, new in
/// every call (services refuse published or patterned secrets, so tests cannot hard-code one).
pub fn random_key_hex() -> String {
    let bytes: Vec<u8> = (0..2)
        .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
        .collect();
    hex::encode(bytes)
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// An HTTP client for tests (rustls with the ring provider, as the services use).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// One JSON request with an optional bearer token and body: the status and the answer (`null`
/// when empty, a string when not JSON).
pub async fn call_json(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut request = http.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("send");
    let status = response.status();
    let text = response.text().await.expect("body");
    let value = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
    };
    (status, value)
}

/// Waits until `url` answers 200 (a service's `/healthz` or `/readyz`), at most `within`.
pub async fn wait_until_ok(url: &str, within: std::time::Duration) {
    let http = http();
    eventually(&format!("{url} answering 200"), within, || {
        let request = http.get(url);
        async move { request.send().await.ok().filter(|r| r.status() == 200) }
    })
    .await;
}

/// Waits until `url` answers 200 while `service` (the task running the service under test)
/// runs, at most `within`; the service's own error when it stops first. Without this a service
/// that failed to start (a port taken, a setting refused) shows only as nothing answering.
pub async fn wait_until_serving(
    url: &str,
    within: std::time::Duration,
    service: &mut tokio::task::JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::select! {
        () = wait_until_ok(url, within) => Ok(()),
        ended = service => match ended {
            Ok(Ok(())) => Err(anyhow::anyhow!("the service stopped before {url} answered")),
            Ok(Err(err)) => Err(err.context(format!("the service stopped before {url} answered"))),
            Err(join) => Err(anyhow::anyhow!("the service panicked before {url} answered: {join}")),
        },
    }
}

/// Installs a test log subscriber when `TEST_LOG` is set (off by default: quiet test output).
pub fn init_test_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("TEST_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug")),
            )
            .with_test_writer()
            .try_init();
    }
}
