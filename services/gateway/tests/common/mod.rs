//! What the gateway's tests share: a gateway on a real socket, its own database and subject
//! prefix, and a small JSON client.
#![allow(dead_code)]

pub mod ws;

use std::net::SocketAddr;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use flick_gateway::Config;
use flick_shared::shutdown::CancellationToken;
use flick_shared::testkit::{self, TestDb};

/// The signing key and encryption key of this test process's gateways (random: the gateway
/// refuses published or patterned secrets).
pub static JWT_SECRET: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(testkit::random_key_hex);
pub static KEY_HEX: std::sync::LazyLock<String> = std::sync::LazyLock::new(testkit::random_key_hex);
pub const PASSWORD: &str = "correct horse battery staple";

pub struct Gateway {
    pub db: TestDb,
    pub subjects: flick_shared::Subjects,
    pub base: String,
    pub address: SocketAddr,
    /// `http://127.0.0.1:<port>` of the operations listener (`/readyz`, `/metrics`).
    pub ops: String,
    pub http: reqwest::Client,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub fn config(db: &TestDb, subjects: &flick_shared::Subjects) -> Config {
    let mut config = Config {
        nats: testkit::nats_settings(subjects.prefix()),
        database: db.settings(),
        streams: testkit::stream_settings(),
        ..Config::default()
    };
    config.gateway.jwt_secret = Some(JWT_SECRET.as_str().into());
    config.encryption.key = Some(KEY_HEX.as_str().into());
    // Many gateways run side by side: the operations listener on a port of its own.
    config.gateway.ops_listen = format!("127.0.0.1:{}", testkit::free_port());
    config
}

/// Starts a gateway with `config` and waits until it answers `/healthz`; its address, the URL
/// of its operations listener and its task.
/// The operations port was only found free when `config` was made, so another test may take
/// it first: the gateway is then started again on another (its error otherwise ends the test).
pub async fn spawn(
    mut config: Config,
    stop: &CancellationToken,
) -> (
    SocketAddr,
    String,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    for attempt in 1.. {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let mut task = tokio::spawn(flick_gateway::serve(config.clone(), listener, stop.clone()));
        let healthz = format!("http://{address}/healthz");
        match testkit::wait_until_serving(&healthz, std::time::Duration::from_secs(20), &mut task)
            .await
        {
            Ok(()) => {
                return (
                    address,
                    format!("http://{}", config.gateway.ops_listen),
                    task,
                );
            }
            Err(err) if attempt < 3 && format!("{err:#}").contains("cannot listen on") => {
                config.gateway.ops_listen = format!("127.0.0.1:{}", testkit::free_port());
            }
            Err(err) => panic!("the gateway did not start: {err:#}"),
        }
    }
    unreachable!("the loop returns or panics")
}

impl Gateway {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        testkit::init_test_logs();
        let db = TestDb::new().await;
        let subjects = testkit::unique_subjects();
        let mut config = config(&db, &subjects);
        tweak(&mut config);
        let stop = CancellationToken::new();
        let (address, ops, task) = spawn(config, &stop).await;
        Self {
            db,
            subjects,
            base: format!("http://{address}"),
            address,
            ops,
            http: testkit::http(),
            stop,
            task,
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.task
            .await
            .expect("join")
            .expect("the gateway ran without error");
    }

    /// A request with an optional bearer token and JSON body; the status and JSON answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.base);
        testkit::call_json(&self.http, method, &url, token, body).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Registers an account and returns its session.
    pub async fn register(&self, email: &str) -> Session {
        let (status, body) = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({ "email": email, "password": PASSWORD }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "register {email}: {body}");
        Session::from(body)
    }

    /// Creates a server owned by `token`'s user.
    pub async fn create_server(&self, token: &str, body: Value) -> Value {
        let (status, server) = self.post("/api/v1/servers", Some(token), body).await;
        assert_eq!(status, StatusCode::CREATED, "{server}");
        server
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub access: String,
    pub refresh: String,
    pub user_id: String,
    pub role: String,
    /// The session id (`sid`) of the access token.
    pub session_id: String,
}

/// The claims of a token (not verified).
pub fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("b64"),
    )
    .expect("json")
}

impl From<Value> for Session {
    fn from(body: Value) -> Self {
        let access = body["accessToken"]
            .as_str()
            .expect("accessToken")
            .to_owned();
        Self {
            session_id: claims_of(&access)["sid"].as_str().expect("sid").to_owned(),
            access,
            refresh: body["refreshToken"]
                .as_str()
                .expect("refreshToken")
                .to_owned(),
            user_id: body["user"]["id"].as_str().expect("user id").to_owned(),
            role: body["user"]["role"].as_str().expect("role").to_owned(),
        }
    }
}

/// The error code of an error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// A minimal sample of `server` taken at `at`.
pub fn sample_at(
    server: &str,
    at: chrono::DateTime<chrono::Utc>,
    cpu: f64,
) -> flick_shared::wire::MetricSample {
    flick_shared::wire::MetricSample::minimal(
        flick_shared::wire::ServerId::parse(server).expect("id"),
        at,
        cpu,
        40.0,
        50.0,
        1024,
    )
}

/// Publishes `sample` on its subject (not flushed: the caller flushes once after a batch).
pub async fn publish_sample(
    client: &async_nats::Client,
    gw: &Gateway,
    sample: &flick_shared::wire::MetricSample,
) {
    client
        .publish(
            gw.subjects.metrics(&sample.server_id),
            serde_json::to_vec(sample).expect("json").into(),
        )
        .await
        .expect("publish");
}
