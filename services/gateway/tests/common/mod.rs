//! What the gateway's tests share: a gateway on a real socket, its own database and subject
//! prefix, and a small JSON client.
#![allow(dead_code)]

use std::net::SocketAddr;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use flick_gateway::Config;
use flick_shared::shutdown::CancellationToken;
use flick_shared::testkit::{self, TestDb};

pub const JWT_SECRET: &str = "test-secret-that-is-long-enough-for-hs256-0123456789";
pub const KEY_HEX: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct Gateway {
    pub db: TestDb,
    pub subjects: flick_shared::Subjects,
    pub base: String,
    pub address: SocketAddr,
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
    config.gateway.jwt_secret = Some(JWT_SECRET.into());
    config.encryption.key = Some(KEY_HEX.into());
    config
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let stop = CancellationToken::new();
        let task = tokio::spawn(flick_gateway::serve(config, listener, stop.clone()));
        let http = testkit::http();
        let base = format!("http://{address}");
        testkit::wait_until_ok(
            &format!("{base}/healthz"),
            std::time::Duration::from_secs(20),
        )
        .await;
        Self {
            db,
            subjects,
            base,
            address,
            http,
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
}

impl From<Value> for Session {
    fn from(body: Value) -> Self {
        Self {
            access: body["accessToken"]
                .as_str()
                .expect("accessToken")
                .to_owned(),
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
