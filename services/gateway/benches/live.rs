//! Live WebSocket load: 1,000 simulated servers publishing at 1 Hz, N clients (1,000 and
//! 10,000) each watching 3 servers through the release gateway. Prints delivered messages per
//! second, publish-to-receive latency (from each sample's own timestamp), the gateway's CPU and
//! memory (per idle connection too), and, in the same run, the raw NATS figures: latency of a
//! direct subscriber on the same traffic and one subscriber's delivery capacity.
//!
//! `cargo bench -p flick-gateway --bench live` (`FLICK_BENCH_CLIENTS=1000,10000`,
//! `FLICK_BENCH_SECS=30`, `FLICK_BENCH_SLOTS=100`).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use flick_collector::simulate::Simulation;
use flick_shared::testkit::{self, Process, TestDb};
use flick_shared::wire::MetricSample;

use support::percentile;

const SERVERS: usize = 1_000;
const WATCHED: usize = 3;

fn proc_status(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0.0)
}

fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    (fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0)) / 100.0
}

/// Publishes every server once a second, spread over `slots` equal slots of the second, until
/// `stop`; how many samples of each server. Real collectors tick at their own phase of the
/// second (when each started), so their samples spread evenly: 100 slots (one every 10 ms) is
/// close to that; 10 slots (100 samples at once, ten times a second) is the older, burstier
/// traffic, kept for comparison (`FLICK_BENCH_SLOTS=10`).
async fn publish_live(
    client: async_nats::Client,
    subjects: flick_shared::Subjects,
    stop: Arc<AtomicBool>,
    slots: usize,
) -> Vec<u64> {
    let mut simulation = Simulation::new(SERVERS, 0, 9);
    let started = Instant::now();
    let mut tick = 0u64;
    let mut published = vec![0; SERVERS];
    while !stop.load(Ordering::Relaxed) {
        let slot = (tick % slots as u64) as usize;
        let at = flick_collector::now_millis();
        for server in (slot..SERVERS).step_by(slots) {
            let sample: MetricSample = simulation.sample(server, at);
            client
                .publish(
                    subjects.metrics(&sample.server_id),
                    serde_json::to_vec(&sample).unwrap().into(),
                )
                .await
                .unwrap();
            published[server] += 1;
        }
        tick += 1;
        let next = started + Duration::from_micros(tick * 1_000_000 / slots as u64);
        tokio::time::sleep(next.saturating_duration_since(Instant::now())).await;
    }
    published
}

/// The upgrade request of a client authenticated by its bearer header.
fn ws_request(
    port: u16,
    token: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = format!("ws://127.0.0.1:{port}/api/v1/ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A counter of the gateway's `/metrics` (its operations listener).
async fn gateway_counter(http: &reqwest::Client, ops_port: u16, name: &str) -> f64 {
    let Ok(response) = http
        .get(format!("http://127.0.0.1:{ops_port}/metrics"))
        .send()
        .await
    else {
        return f64::NAN;
    };
    let text = response.text().await.unwrap_or_default();
    // Absent until first counted.
    text.lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |sum, n| sum + n)
}

/// Milliseconds since the first `"timestamp"` in `text`: found, not parsed as a whole, so that
/// the client swarm (on the gateway's two cores) spends little on each frame.
fn latency_ms(text: &str) -> Option<f64> {
    const KEY: &str = "\"timestamp\":\"";
    let start = text.find(KEY)? + KEY.len();
    let end = start + text[start..].find('"')?;
    let at = chrono::DateTime::parse_from_rfc3339(&text[start..end]).ok()?;
    Some((chrono::Utc::now() - at.with_timezone(&chrono::Utc)).num_microseconds()? as f64 / 1_000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let clients_list: Vec<usize> = std::env::var("FLICK_BENCH_CLIENTS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let secs: u64 = std::env::var("FLICK_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let slots: usize = std::env::var("FLICK_BENCH_SLOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=1000).contains(n))
        .unwrap_or(100);
    println!("1,000 servers at 1 Hz, published in {slots} slots of the second");
    let db = TestDb::new().await;
    let subjects = testkit::unique_subjects();
    let simulation = Simulation::new(SERVERS, 0, 9);
    let ids: Vec<String> = simulation.server_ids().map(|id| id.to_string()).collect();
    sqlx::query("INSERT INTO servers (id, name) SELECT id, id FROM UNNEST($1::text[]) AS id")
        .bind(&ids)
        .execute(&db.pool)
        .await
        .unwrap();

    let port = testkit::free_port();
    let ops_port = testkit::free_port();
    let gateway = Process::spawn(
        Command::new(env!("CARGO_BIN_EXE_flick-gateway"))
            .env("NATS_URL", testkit::nats_url())
            .env("FLICK_NATS__PREFIX", subjects.prefix())
            .env("DATABASE_URL", db.url())
            .env("PORT", port.to_string())
            .env("FLICK_GATEWAY__OPS_LISTEN", format!("127.0.0.1:{ops_port}"))
            .env("JWT_SECRET", testkit::random_key_hex())
            .env("ENCRYPTION_KEY", testkit::random_key_hex())
            .env("FLICK_STREAMS__LOGS_MAX_BYTES", "8388608")
            .env("FLICK_GATEWAY__AUTH_BURST", "100000")
            // One user and one address open every client: lift the per-user and per-address
            // connection caps (50 and 200), which would close all but the first few.
            .env("FLICK_GATEWAY__WS_MAX_PER_USER", "50000")
            .env("FLICK_GATEWAY__WS_MAX_PER_ADDRESS", "50000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null()),
    );
    let pid = gateway.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = testkit::http();
    let token = support::admin_session(&http, &base).await;
    let nats = testkit::connect().await;

    // Raw NATS, same machine, same run: one subscriber's capacity …
    let mut raw = nats
        .subscribe(format!("{}.raw", subjects.prefix()))
        .await
        .unwrap();
    nats.flush().await.unwrap();
    let blast = 300_000;
    let counter = tokio::spawn(async move {
        let mut n = 0;
        let started = Instant::now();
        while n < blast {
            if tokio::time::timeout(Duration::from_secs(5), raw.next())
                .await
                .ok()
                .flatten()
                .is_none()
            {
                break;
            }
            n += 1;
        }
        n as f64 / started.elapsed().as_secs_f64()
    });
    let payload =
        serde_json::to_vec(&Simulation::new(1, 0, 1).sample(0, flick_collector::now_millis()))
            .unwrap();
    for _ in 0..blast {
        nats.publish(format!("{}.raw", subjects.prefix()), payload.clone().into())
            .await
            .unwrap();
    }
    nats.flush().await.unwrap();
    let raw_rate = counter.await.unwrap();
    println!(
        "raw NATS: one subscriber receives {raw_rate:.0} msgs/s ({} bytes each)",
        payload.len()
    );

    for clients in clients_list {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_before = proc_status(pid, "VmRSS:");
        // N idle connections.
        let mut sockets = Vec::with_capacity(clients);
        let started = Instant::now();
        for chunk_start in (0..clients).step_by(250) {
            let mut opening = Vec::new();
            for _ in chunk_start..(chunk_start + 250).min(clients) {
                let request = ws_request(port, &token);
                opening.push(tokio::spawn(async move {
                    tokio_tungstenite::connect_async(request)
                        .await
                        .map(|(s, _)| s)
                }));
            }
            for socket in opening {
                sockets.push(socket.await.unwrap().expect("connect"));
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_idle = proc_status(pid, "VmRSS:");
        println!(
            "{clients} clients: connected in {:.1} s; gateway RSS {:.1} → {:.1} MB, {:.1} KB per idle connection (goal < 5 KB)",
            started.elapsed().as_secs_f64(),
            rss_before / 1024.0,
            rss_idle / 1024.0,
            (rss_idle - rss_before) / clients as f64
        );

        // Each watches three servers; every client records its latencies.
        let stop = Arc::new(AtomicBool::new(false));
        let publishing = Arc::new(AtomicBool::new(false));
        let mut watchers = vec![0u64; SERVERS];
        let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut readers = Vec::with_capacity(clients);
        for (i, mut socket) in sockets.into_iter().enumerate() {
            for k in 0..WATCHED {
                let index = (i * 7 + k * 331) % SERVERS;
                watchers[index] += 1;
                let server = &ids[index];
                socket
                    .send(Message::text(json!({ "type": "server_metrics.subscribe", "data": { "serverId": server } }).to_string()))
                    .await
                    .unwrap();
            }
            let (stop, acked) = (stop.clone(), acked.clone());
            readers.push(tokio::spawn(async move {
                let mut latencies: Vec<f32> = Vec::new();
                let mut acks = 0;
                // Why the gateway ended this client's connection before the end, if it did.
                let mut ended = None;
                while !stop.load(Ordering::Relaxed) {
                    match tokio::time::timeout(Duration::from_millis(500), socket.next()).await {
                        Ok(Some(Ok(Message::Text(text)))) => {
                            let text = text.as_str();
                            if text.starts_with("{\"type\":\"resource_metrics\"") {
                                if let Some(ms) = latency_ms(text) {
                                    latencies.push(ms as f32);
                                }
                            } else if text.contains("\"type\":\"ack\"") {
                                acks += 1;
                                acked.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ok(Some(Ok(Message::Close(frame)))) => {
                            ended =
                                Some(frame.map_or("closed".to_owned(), |f| f.reason.to_string()));
                        }
                        Ok(Some(Ok(_))) | Err(_) => {}
                        Ok(Some(Err(err))) => {
                            ended.get_or_insert(err.to_string());
                            break;
                        }
                        Ok(None) => {
                            ended.get_or_insert("ended".to_owned());
                            break;
                        }
                    }
                }
                let _ = socket.close(None).await;
                (latencies, acks, ended)
            }));
        }
        // The raw subscriber on the same traffic.
        let mut direct = nats
            .subscribe(subjects.all_servers(flick_shared::subjects::StreamKind::Metrics))
            .await
            .unwrap();
        let direct_stop = stop.clone();
        let direct_task = tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !direct_stop.load(Ordering::Relaxed) {
                if let Ok(Some(message)) =
                    tokio::time::timeout(Duration::from_millis(500), direct.next()).await
                    && let Ok(text) = std::str::from_utf8(&message.payload)
                    && let Some(ms) = latency_ms(text)
                {
                    latencies.push(ms);
                }
            }
            latencies
        });
        // Every subscription acknowledged before the first sample: a sample published before
        // its subscription exists is not due to that client.
        let deadline = Instant::now() + Duration::from_secs(120);
        while acked.load(Ordering::Relaxed) < clients * WATCHED && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let publisher = tokio::spawn(publish_live(
            nats.clone(),
            subjects.clone(),
            publishing.clone(),
            slots,
        ));
        tokio::time::sleep(Duration::from_secs(3)).await; // warm-up
        let cpu_before = cpu_secs(pid);
        let measured = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let cpu = (cpu_secs(pid) - cpu_before) / measured.elapsed().as_secs_f64() * 100.0;
        let rss_live = proc_status(pid, "VmRSS:");
        // The publisher stops first; the readers take what is in flight, then stop.
        publishing.store(true, Ordering::Relaxed);
        let published = publisher.await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::Relaxed);
        let expected: u64 = published.iter().zip(&watchers).map(|(p, w)| p * w).sum();
        let skipped =
            gateway_counter(&http, ops_port, "flick_gateway_ws_samples_skipped_total").await;
        let published: u64 = published.iter().sum();
        let mut latencies: Vec<f64> = Vec::new();
        let mut acks = 0;
        let mut ended: std::collections::BTreeMap<String, usize> = Default::default();
        for reader in readers {
            let (l, a, e) = reader.await.unwrap();
            latencies.extend(l.into_iter().map(f64::from));
            acks += a;
            if let Some(reason) = e {
                *ended.entry(reason).or_default() += 1;
            }
        }
        if !ended.is_empty() {
            println!("  connections the gateway ended: {ended:?}");
        }
        let mut direct = direct_task.await.unwrap();
        latencies.sort_by(f64::total_cmp);
        direct.sort_by(f64::total_cmp);
        let window = (secs + 3) as f64;
        let rate = latencies.len() as f64 / window;
        println!(
            "  {acks}/{} subscriptions acknowledged; {published} samples published; {}/{expected} frames delivered ({rate:.0} msgs/s); the gateway replaced {} unsent samples by newer ones (all stages so far)",
            clients * WATCHED,
            latencies.len(),
            skipped
        );
        let (p99, raw_p99) = (percentile(&latencies, 0.99), percentile(&direct, 0.99));
        println!(
            "  WebSocket latency p50 {:.1} ms, p99 {p99:.1} ms, max {:.1} ms; gateway {cpu:.1} % CPU ({:.1} ms of CPU per 1,000 frames), RSS {:.1} MB",
            percentile(&latencies, 0.5),
            latencies.last().copied().unwrap_or(f64::NAN),
            cpu / 100.0 * 1_000.0 / rate * 1_000.0,
            rss_live / 1024.0
        );
        println!(
            "  raw NATS subscriber on the same traffic: p50 {:.1} ms, p99 {raw_p99:.1} ms; WebSocket p99 = {:.1} × raw (goal ≤ 3); delivered/raw capacity = {:.3}",
            percentile(&direct, 0.5),
            p99 / raw_p99,
            rate / raw_rate
        );
    }
    fleet_stage(port, &token, &nats, &subjects, secs, slots).await;
    drop(gateway);
}

/// Dashboards on the fleet subscription: each socket holds all 1,000 servers and receives their
/// headlines once a second. Prints the headlines each received against those published, and the
/// age of a headline when it arrives (at most one interval of batching, by design).
async fn fleet_stage(
    port: u16,
    token: &str,
    nats: &async_nats::Client,
    subjects: &flick_shared::Subjects,
    secs: u64,
    slots: usize,
) {
    const DASHBOARDS: usize = 20;
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..DASHBOARDS {
        let (mut socket, _) = tokio_tungstenite::connect_async(ws_request(port, token))
            .await
            .unwrap();
        socket
            .send(Message::text(
                json!({ "type": "fleet.subscribe", "data": { "intervalMs": 1000 } }).to_string(),
            ))
            .await
            .unwrap();
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let (mut ages, mut listed, mut frames) = (Vec::new(), 0, 0);
            while !stop.load(Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_millis(500), socket.next()).await {
                    Ok(Some(Ok(Message::Text(text)))) => {
                        let frame: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                        match frame["type"].as_str() {
                            Some("fleet.servers") => {
                                listed += frame["data"]["added"].as_array().map_or(0, Vec::len);
                            }
                            Some("fleet.metrics") => {
                                frames += 1;
                                for sample in
                                    frame["data"]["samples"].as_array().into_iter().flatten()
                                {
                                    if let Some(ms) = latency_ms(&sample.to_string()) {
                                        ages.push(ms);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                    Ok(Some(Ok(_))) | Err(_) => {}
                    Ok(_) => break,
                }
            }
            (ages, listed, frames)
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let publishing = Arc::new(AtomicBool::new(false));
    let publisher = tokio::spawn(publish_live(
        nats.clone(),
        subjects.clone(),
        publishing.clone(),
        slots,
    ));
    tokio::time::sleep(Duration::from_secs(secs)).await;
    publishing.store(true, Ordering::Relaxed);
    let published: u64 = publisher.await.unwrap().iter().sum();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut ages, mut listed, mut frames) = (Vec::new(), 0, 0);
    for reader in readers {
        let (a, l, f) = reader.await.unwrap();
        ages.extend(a);
        listed += l;
        frames += f;
    }
    ages.sort_by(f64::total_cmp);
    println!(
        "fleet: {DASHBOARDS} sockets on fleet.subscribe, {} servers listed each; {published} samples published, {} headlines received ({:.3} of published × sockets) in {frames} frames; headline age p50 {:.0} ms, p99 {:.0} ms (batched once a second)",
        listed / DASHBOARDS,
        ages.len(),
        ages.len() as f64 / (published as f64 * DASHBOARDS as f64),
        percentile(&ages, 0.5),
        percentile(&ages, 0.99),
    );
}
