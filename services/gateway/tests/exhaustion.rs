//! One user cannot take the gateway down: a burst of logins from many addresses keeps the
//! release gateway's memory bounded and `/healthz` answering, and one user flooding heavy history
//! queries leaves other users' requests on time, with nothing answering 500 and no query left
//! running after its request is gone. The real gateway binary, a process of its own (its memory
//! is measured), on the real PostgreSQL and NATS.
//!
//! The two tests run one after the other (they measure time on a shared machine).

mod common;

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::PASSWORD;
use flick_shared::testkit::{self, Process, TestDb};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The gateway binary on its own database and prefix.
struct GatewayProcess {
    process: Process,
    base: String,
    _db: TestDb,
}

impl GatewayProcess {
    async fn start(db: TestDb, settings: &[(&str, &str)]) -> Self {
        let port = testkit::free_port();
        let ops = testkit::free_port();
        let subjects = testkit::unique_subjects();
        let streams = testkit::stream_settings();
        let mut command = Command::new(env!("CARGO_BIN_EXE_flick-gateway"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NATS_URL", testkit::nats_url())
            .env("FLICK_NATS__PREFIX", subjects.prefix())
            .env("DATABASE_URL", db.url())
            .env("PORT", port.to_string())
            .env("FLICK_GATEWAY__OPS_LISTEN", format!("127.0.0.1:{ops}"))
            .env("JWT_SECRET", testkit::random_key_hex())
            .env("ENCRYPTION_KEY", testkit::random_key_hex())
            .env(
                "FLICK_STREAMS__LOGS_MAX_BYTES",
                streams.logs_max_bytes.to_string(),
            )
            .env(
                "FLICK_STREAMS__PROCESSES_MAX_BYTES",
                streams.processes_max_bytes.to_string(),
            )
            .env(
                "RUST_LOG",
                std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(settings.iter().copied());
        let process = Process::spawn(&mut command);
        let base = format!("http://127.0.0.1:{port}");
        testkit::wait_until_ok(
            &format!("http://127.0.0.1:{ops}/readyz"),
            Duration::from_secs(60),
        )
        .await;
        Self {
            process,
            base,
            _db: db,
        }
    }

    /// `VmRSS` and `VmHWM` (peak) of the process, in MiB.
    fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.id()))
            .expect("read /proc/PID/status");
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{field} in /proc status"))
        };
        (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
    }
}

/// p50, p99 and max of `latencies`.
fn percentiles(latencies: &mut [Duration]) -> (Duration, Duration, Duration) {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99), at(1.0))
}

/// Calls `url` every 50 ms until `stop`; the latencies and any status other than 200.
fn probe(
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    stop: flick_shared::shutdown::CancellationToken,
) -> tokio::task::JoinHandle<(Vec<Duration>, Vec<StatusCode>)> {
    tokio::spawn(async move {
        let mut latencies = Vec::new();
        let mut failures = Vec::new();
        while !stop.is_cancelled() {
            let started = Instant::now();
            let mut request = http.get(&url).timeout(Duration::from_secs(10));
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            match request.send().await {
                Ok(response) if response.status() == StatusCode::OK => {
                    let _ = response.bytes().await;
                }
                Ok(response) => failures.push(response.status()),
                Err(_) => failures.push(StatusCode::REQUEST_TIMEOUT),
            }
            latencies.push(started.elapsed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (latencies, failures)
    })
}

#[tokio::test]
async fn two_hundred_concurrent_logins_from_two_hundred_addresses_keep_memory_bounded() {
    let _one = ONE_AT_A_TIME.lock().await;
    testkit::init_test_logs();
    let gateway = GatewayProcess::start(TestDb::new().await, &[]).await;
    let http = testkit::http();
    let (status, body) = testkit::call_json(
        &http,
        reqwest::Method::POST,
        &format!("{}/api/v1/auth/register", gateway.base),
        None,
        Some(json!({ "email": "ada@example.com", "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (rss_before, _) = gateway.memory();

    let stop = flick_shared::shutdown::CancellationToken::new();
    let health = probe(
        http.clone(),
        format!("{}/healthz", gateway.base),
        None,
        stop.clone(),
    );
    let started = Instant::now();
    // Each login from its own loopback address (127.0.0.2 …), as 200 clients would.
    let logins: Vec<_> = (0..200u32)
        .map(|n| {
            let address = IpAddr::from([127, 0, (n / 250) as u8, (n % 250 + 2) as u8]);
            let client = reqwest::Client::builder()
                .local_address(address)
                .build()
                .expect("client");
            let url = format!("{}/api/v1/auth/login", gateway.base);
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .json(&json!({ "email": "ada@example.com", "password": PASSWORD }))
                    .send()
                    .await
                    .expect("send");
                let status = response.status();
                let retry_after = response.headers().contains_key("retry-after");
                (status, retry_after)
            })
        })
        .collect();
    let mut outcomes = std::collections::BTreeMap::<u16, usize>::new();
    for login in logins {
        let (status, retry_after) = login.await.expect("join");
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            assert!(retry_after, "{status} says when to retry");
        }
        *outcomes.entry(status.as_u16()).or_default() += 1;
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let (mut health, health_failures) = health.await.expect("join");
    let (rss_after, peak) = gateway.memory();
    let (p50, p99, worst) = percentiles(&mut health);
    eprintln!(
        "200 concurrent logins from 200 addresses in {took:.2?}: outcomes {outcomes:?}; gateway RSS \
         {rss_before:.0} MiB before, peak {peak:.0} MiB, {rss_after:.0} MiB after; /healthz p50 \
         {p50:.1?} p99 {p99:.1?} max {worst:.1?} ({} probes)",
        health.len()
    );
    assert!(
        outcomes.keys().all(|s| [200, 429, 503].contains(s)),
        "only sessions, rate limits and busy answers: {outcomes:?}"
    );
    assert!(outcomes.get(&200).copied().unwrap_or(0) > 0, "{outcomes:?}");
    assert!(peak < 600.0, "peak RSS {peak:.0} MiB");
    assert!(
        health_failures.is_empty(),
        "/healthz failed: {health_failures:?}"
    );
    assert!(worst < Duration::from_secs(1), "/healthz took {worst:?}");
}

#[tokio::test]
async fn one_users_flood_of_heavy_history_leaves_others_on_time_and_nothing_running() {
    let _one = ONE_AT_A_TIME.lock().await;
    testkit::init_test_logs();
    let db = TestDb::new().await;
    let loading = Instant::now();
    // 30 days of one sample a second: 2.6 million rows, a raw scan on plain PostgreSQL.
    sqlx::query(
        "INSERT INTO metrics (server_id, ts, cpu, memory, disk, network)
         SELECT 'heavy-1', t, 50 + 40 * sin(extract(epoch FROM t) / 600), 60, 70, 1000
         FROM generate_series(now() - interval '30 days', now(), interval '1 second') AS t",
    )
    .execute(&db.pool)
    .await
    .expect("load 30 days of samples");
    sqlx::query("INSERT INTO servers (id, name) VALUES ('heavy-1', 'heavy')")
        .execute(&db.pool)
        .await
        .expect("a discovered server");
    sqlx::query("ANALYZE metrics")
        .execute(&db.pool)
        .await
        .expect("analyze");
    let loaded = loading.elapsed();
    let database = db.name().to_owned();
    let watcher = db.pool.clone();
    let gateway = GatewayProcess::start(db, &[]).await;
    let http = testkit::http();
    let call = |path: &str, token: Option<&str>, body: Option<Value>, method| {
        let url = format!("{}{path}", gateway.base);
        let http = http.clone();
        let token = token.map(str::to_owned);
        async move { testkit::call_json(&http, method, &url, token.as_deref(), body).await }
    };
    let session = |email: &'static str| {
        let call = &call;
        async move {
            let (status, body) = call(
                "/api/v1/auth/register",
                None,
                Some(json!({ "email": email, "password": PASSWORD })),
                reqwest::Method::POST,
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            body["accessToken"].as_str().expect("token").to_owned()
        }
    };
    let flooder = session("flood@example.com").await;
    let bystander = session("calm@example.com").await;
    let (status, body) = call(
        "/api/v1/servers",
        Some(&bystander),
        Some(json!({ "id": "calm-1", "name": "calm" })),
        reqwest::Method::POST,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The flooder is the first account (admin), so the heavy server is visible to them.
    let stop = flick_shared::shutdown::CancellationToken::new();
    let calm = probe(
        http.clone(),
        format!("{}/api/v1/servers", gateway.base),
        Some(bystander.clone()),
        stop.clone(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let to = chrono::Utc::now();
    let from = to - chrono::Duration::days(30) + chrono::Duration::minutes(1);
    let path = format!(
        "/api/v1/servers/heavy-1/metrics?from={}&to={}&bucket=1",
        from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let started = Instant::now();
    // Thirty at once.
    let flood: Vec<_> = (0..30)
        .map(|_| {
            let url = format!("{}{path}", gateway.base);
            let token = flooder.clone();
            let client = http.clone();
            tokio::spawn(async move {
                match client.get(url).bearer_auth(token).send().await {
                    Ok(response) => response.status().as_u16(),
                    Err(_) => 0,
                }
            })
        })
        .collect();
    let mut outcomes = std::collections::BTreeMap::<u16, usize>::new();
    for request in flood {
        *outcomes.entry(request.await.expect("join")).or_default() += 1;
    }
    let flood_took = started.elapsed();
    stop.cancel();
    let (mut calm_latencies, calm_failures) = calm.await.expect("join");
    let (p50, p99, worst) = percentiles(&mut calm_latencies);

    // A request its client gives up on: its query is stopped, its connection closed (an
    // abandoned query that merely finished would leave its backend idle in the pool).
    let backends = |pool: sqlx::PgPool, database: String| async move {
        let pids: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = $1 AND application_name = 'flick-gateway' AND state = 'active'
               AND query LIKE '%date_bin%'",
        )
        .bind(database)
        .fetch_all(&pool)
        .await
        .expect("pg_stat_activity");
        pids
    };
    let abandoned = {
        let url = format!("{}{path}", gateway.base);
        let request = http
            .get(url)
            .bearer_auth(flooder.clone())
            .timeout(Duration::from_millis(400));
        tokio::spawn(async move { request.send().await.map(|r| r.status()) })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let running = backends(watcher.clone(), database.clone()).await;
    assert!(
        abandoned.await.expect("join").is_err(),
        "the client gave up"
    );
    let gave_up = Instant::now();
    let alive = |pool: sqlx::PgPool, pids: Vec<i32>| async move {
        let alive: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                .bind(pids)
                .fetch_one(&pool)
                .await
                .expect("pg_stat_activity");
        alive
    };
    let mut left_running = alive(watcher.clone(), running.clone()).await;
    while left_running > 0 && gave_up.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left_running = alive(watcher.clone(), running.clone()).await;
    }
    let stopped_after = gave_up.elapsed();
    eprintln!(
        "30 concurrent 30-day history requests (2.6 M rows loaded in {loaded:.1?}) by one user in \
         {flood_took:.2?}: outcomes {outcomes:?} (0: given up by the client); another user's GET \
         /servers p50 {p50:.1?} p99 {p99:.1?} max {worst:.1?} over {} requests; a query whose \
         client gave up stopped within {stopped_after:.1?} ({} backend(s), {left_running} left)",
        calm_latencies.len(),
        running.len()
    );
    assert!(
        outcomes.keys().all(|s| [0, 200, 429, 503].contains(s)),
        "answers, limits and busy only, never 500: {outcomes:?}"
    );
    assert!(
        outcomes.contains_key(&429),
        "the per-user cap refused some: {outcomes:?}"
    );
    assert!(
        calm_failures.is_empty(),
        "the other user's requests failed: {calm_failures:?}"
    );
    assert!(
        p99 < Duration::from_millis(250),
        "the other user's p99 {p99:?}"
    );
    assert!(
        !running.is_empty(),
        "the abandoned request's query was running"
    );
    assert_eq!(left_running, 0, "a query outlived its request");
    drop(gateway);
}
