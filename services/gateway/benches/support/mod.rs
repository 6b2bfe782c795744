//! What the gateway's benchmarks share: a gateway in this process on a test database, the
//! wait for a gateway to answer, the benchmark account, and percentiles.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};

use flick_shared::Subjects;
use flick_shared::shutdown::CancellationToken;
use flick_shared::testkit::{self, TestDb};

/// The `p` percentile (0 to 1) of `sorted`.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A gateway in this process on `db`, without request budgets (a benchmark is one busy user).
pub struct InProcess {
    pub base: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    pub async fn start(db: &TestDb, subjects: &Subjects) -> Self {
        let mut config = flick_gateway::Config {
            nats: testkit::nats_settings(subjects.prefix()),
            database: db.settings(),
            streams: testkit::stream_settings(),
            ..Default::default()
        };
        config.gateway.jwt_secret = Some(testkit::random_key_hex().into());
        config.encryption.key = Some(testkit::random_key_hex().into());
        config.gateway.user_burst = 1_000_000;
        config.gateway.user_per_second = 1_000_000;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let task = tokio::spawn(flick_gateway::serve(config, listener, stop.clone()));
        Self { base, stop, task }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Waits until the gateway at `base` answers, registers the benchmark account (the first, so
/// an admin) and returns its access token.
pub async fn admin_session(http: &reqwest::Client, base: &str) -> String {
    testkit::eventually("the gateway", Duration::from_secs(30), || {
        let http = http.clone();
        let url = format!("{base}/healthz");
        async move { http.get(url).send().await.ok() }
    })
    .await;
    let session: Value = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({ "email": "bench@example.com", "password": "benchmark password" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    session["accessToken"].as_str().unwrap().to_owned()
}
