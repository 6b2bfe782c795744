//! A real Prometheus (Debian's `prometheus`, on loopback) scrapes the real gateway's
//! `/api/v1/prometheus` with a FLick API token, as the README's `scrape_config` says: its own
//! query API then answers each simulated server's CPU equal to the newest sample the
//! simulator published, and the alerts firing as the gateway lists them; `promtool check
//! metrics` finds nothing to say about the exposition.

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{Api, Service, Stack};
use flick_shared::subjects::StreamKind;
use flick_shared::testkit::{self, Process, eventually};
use flick_shared::wire::MetricSample;

const SERVERS: usize = 4;
const HOT: usize = 1;

/// A Prometheus server of its own: configuration, data and a port under a temporary directory.
struct Prometheus {
    url: String,
    _process: Process,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Scrapes `target` (`host:port`) every second on `/api/v1/prometheus` with `token`.
    fn start(target: &str, token: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let token_file = dir.path().join("flick.token");
        std::fs::write(&token_file, token).expect("token file");
        let config = dir.path().join("prometheus.yml");
        // The README's scrape_config, with a one-second interval for the test.
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: flick\n    metrics_path: /api/v1/prometheus\n\
                 \x20   authorization:\n      type: Bearer\n      credentials_file: {}\n\
                 \x20   static_configs:\n      - targets: ['{target}']\n",
                token_file.display()
            ),
        )
        .expect("configuration");
        let port = testkit::free_port();
        let process = Process::spawn(
            Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null()),
        );
        Self {
            url: format!("http://127.0.0.1:{port}"),
            _process: process,
            _dir: dir,
        }
    }

    /// The instant vector of `query` as (labels, value) pairs; `None` until Prometheus answers.
    async fn query(&self, query: &str) -> Option<Vec<(Value, f64)>> {
        let answer: Value = testkit::http()
            .get(format!("{}/api/v1/query?query={}", self.url, encode(query)))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (answer["status"] == "success").then_some(())?;
        answer["data"]["result"]
            .as_array()?
            .iter()
            .map(|series| {
                let value = series["value"][1].as_str()?.parse().ok()?;
                Some((series["metric"].clone(), value))
            })
            .collect()
    }
}

/// `text` percent-encoded for a query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_real_prometheus_scrapes_each_servers_newest_cpu_and_the_firing_alerts() {
    let stack = Stack::new()
        .await
        .with_env("FLICK_PERSISTER__FLUSH_INTERVAL_MS", "200")
        .with_env("FLICK_ALERTER__FOR_SECS", "2")
        // The fleet is stopped below: no `offline` while the test compares alerts.
        .with_env("FLICK_ALERTER__OFFLINE_TIMEOUT_SECS", "3600");
    let _backend = stack.start_backend().await;
    let api = Api::of(&stack);
    let admin = api.register("admin@example.com").await;
    let (status, created) = api
        .call(
            Method::POST,
            "/tokens",
            Some(&admin),
            Some(json!({ "name": "prometheus", "scopes": ["metrics:scrape"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().expect("token").to_owned();

    // What the simulator publishes, as the source of truth.
    let nats = testkit::connect().await;
    let mut published = nats
        .subscribe(stack.subjects.all_servers(StreamKind::Metrics))
        .await
        .expect("subscribe");
    testkit::registered(&nats).await;
    let mut simulator = stack.spawn(
        &Service::Simulator {
            servers: SERVERS,
            hot: HOT,
        },
        &[],
    );
    let mut newest: BTreeMap<String, MetricSample> = BTreeMap::new();
    let collecting = tokio::time::Instant::now();
    while collecting.elapsed() < Duration::from_secs(8) {
        if let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(500), published.next()).await
            && let Ok(sample) = serde_json::from_slice::<MetricSample>(&message.payload)
        {
            newest.insert(sample.server_id.as_str().to_owned(), sample);
        }
    }
    // The fleet stops; what it published last is the newest sample of each server.
    simulator.kill();
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(1_000), published.next()).await
    {
        if let Ok(sample) = serde_json::from_slice::<MetricSample>(&message.payload) {
            newest.insert(sample.server_id.as_str().to_owned(), sample);
        }
    }
    assert_eq!(newest.len(), SERVERS, "every simulated server published");
    eventually(
        "every newest sample stored",
        Duration::from_secs(30),
        || {
            let pool = stack.db.pool.clone();
            let newest = newest.clone();
            async move {
                for (id, sample) in &newest {
                    let stored: Option<chrono::DateTime<chrono::Utc>> =
                        sqlx::query_scalar("SELECT max(ts) FROM metrics WHERE server_id = $1")
                            .bind(id)
                            .fetch_one(&pool)
                            .await
                            .ok()?;
                    (stored? >= sample.timestamp).then_some(())?;
                }
                Some(())
            }
        },
    )
    .await;

    // The exposition passes promtool's checks (format and naming conventions).
    let exposition = testkit::http()
        .get(format!("{}/api/v1/prometheus", stack.gateway_url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("scrape");
    assert_eq!(exposition.status(), StatusCode::OK);
    assert!(
        exposition.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        exposition.headers()
    );
    let exposition = exposition.text().await.expect("text");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("write");
    let checked = promtool.wait_with_output().expect("promtool ran");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        checked.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}\n{exposition}"
    );

    let target = stack.gateway_url().trim_start_matches("http://").to_owned();
    let prometheus = Prometheus::start(&target, &token);
    // Prometheus' own view: the target is up, and each server's CPU is its newest sample's.
    let cpu = eventually(
        "Prometheus to scrape every server",
        Duration::from_secs(60),
        || {
            let prometheus = &prometheus;
            async move {
                let up = prometheus.query("up{job=\"flick\"}").await?;
                (up.first()?.1 == 1.0).then_some(())?;
                let cpu = prometheus.query("flick_cpu_usage_ratio").await?;
                (cpu.len() == SERVERS).then_some(cpu)
            }
        },
    )
    .await;
    for (labels, value) in &cpu {
        let id = labels["server_id"].as_str().expect("server_id");
        let sample = &newest[id];
        // Stored as `real`, shown as a ratio.
        let want = f64::from(sample.cpu_usage as f32) / 100.0;
        assert!(
            (value - want).abs() < 1e-9,
            "{id}: Prometheus says {value}, the newest sample {want} ({})",
            sample.cpu_usage
        );
        assert_eq!(
            labels["hostname"].as_str(),
            sample.hostname.as_deref(),
            "{labels}"
        );
        assert_eq!(labels["job"], "flick");
    }
    // The other headline figures come through with their units.
    let memory = prometheus
        .query("flick_memory_usage_ratio")
        .await
        .expect("memory");
    for (labels, value) in &memory {
        let sample = &newest[labels["server_id"].as_str().expect("id")];
        let want = f64::from(sample.memory_usage as f32) / 100.0;
        assert!((value - want).abs() < 1e-9, "{labels}: {value} vs {want}");
    }
    let mounts = prometheus
        .query("flick_filesystem_size_bytes")
        .await
        .expect("mounts");
    assert!(
        mounts.iter().all(|(l, _)| l["mountpoint"].is_string()),
        "{mounts:?}"
    );

    // The alerts firing, as the gateway lists them, are `flick_alert_firing` series.
    let firing = api.get("/alerts?state=firing&limit=100", &admin).await;
    let listed: Vec<(String, String, String)> = firing["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| {
            (
                a["serverId"].as_str().unwrap_or_default().to_owned(),
                a["metric"].as_str().unwrap_or_default().to_owned(),
                a["severity"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(!listed.is_empty(), "the hot server fires: {firing}");
    let scraped = eventually("the alerts scraped", Duration::from_secs(20), || {
        let prometheus = &prometheus;
        let listed = listed.clone();
        async move {
            let series = prometheus.query("flick_alert_firing == 1").await?;
            let mut scraped: Vec<(String, String, String)> = series
                .iter()
                .map(|(l, _)| {
                    (
                        l["server_id"].as_str().unwrap_or_default().to_owned(),
                        l["metric"].as_str().unwrap_or_default().to_owned(),
                        l["severity"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            let mut want = listed;
            scraped.sort();
            want.sort();
            (scraped == want).then_some(scraped)
        }
    })
    .await;
    eprintln!(
        "Prometheus sees {} firing alerts: {scraped:?}",
        scraped.len()
    );
}
