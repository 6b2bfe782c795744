//! Persister throughput: a backlog of 1,000,000 samples from 1,000 simulated servers is
//! published to JetStream, then the release `flick-persister` binary drains it into a fresh
//! database. In the same run, on the same database server, the same rows are loaded with a plain
//! `COPY` into an empty table of the same shape: the physical limit of this machine.
//!
//! `cargo bench -p flick-persister --bench throughput`
//! (`FLICK_BENCH_SERVERS`, `FLICK_BENCH_SAMPLES_PER_SERVER` change the size; `DATABASE_URL`
//! picks the PostgreSQL or TimescaleDB server.)

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use flick_collector::simulate::Simulation;
use flick_shared::testkit::{self, TestDb};
use flick_shared::wire::MetricSample;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The benchmark's samples, generated identically for the NATS run and the COPY run.
fn samples(servers: usize, per_server: usize) -> impl Iterator<Item = MetricSample> {
    let mut simulation = Simulation::new(servers, 0, 7);
    let end = Utc::now().timestamp() - 60;
    let start = end - per_server as i64;
    (0..per_server).flat_map(move |step| {
        let at = DateTime::from_timestamp(start + step as i64, 0).unwrap();
        (0..servers)
            .map(|server| simulation.sample(server, at))
            .collect::<Vec<_>>()
    })
}

/// CPU seconds (user + system) used so far by the processes whose command name is `comm`.
fn cpu_secs_of(comm: &str) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != comm {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let used: f64 =
            fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
        total += used / ticks;
    }
    total
}

fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

async fn count(pool: &PgPool, table: &'static str) -> i64 {
    let sql = if table == "metrics" {
        "SELECT count(*) FROM metrics"
    } else {
        "SELECT count(*) FROM metrics_copy"
    };
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::main]
async fn main() {
    let servers = env_usize("FLICK_BENCH_SERVERS", 1_000);
    let per_server = env_usize("FLICK_BENCH_SAMPLES_PER_SERVER", 1_000);
    let total = (servers * per_server) as i64;
    println!("persister throughput: {total} samples from {servers} servers");

    let db = TestDb::new().await;
    let subjects = testkit::unique_subjects();
    let client = testkit::connect().await;
    let js = async_nats::jetstream::new(client.clone());
    let mut streams = testkit::stream_settings();
    streams.metrics_max_bytes = 4 << 30;
    flick_shared::streams::ensure_streams(
        &js,
        &subjects,
        &streams,
        &flick_shared::subjects::StreamKind::ALL,
    )
    .await
    .unwrap();

    // 1. The backlog, through JetStream with message ids, 1,024 acks in flight.
    let started = Instant::now();
    let mut in_flight = std::collections::VecDeque::new();
    for sample in samples(servers, per_server) {
        let message = flick_collector::outgoing(&subjects, &sample).unwrap();
        let publish = async_nats::jetstream::message::PublishMessage::build()
            .payload(message.payload)
            .message_id(&message.message_id);
        in_flight.push_back(js.send_publish(message.subject, publish).await.unwrap());
        if in_flight.len() >= 1_024 {
            in_flight.pop_front().unwrap().await.unwrap();
        }
    }
    for ack in in_flight {
        ack.await.unwrap();
    }
    let publish_secs = started.elapsed().as_secs_f64();
    println!(
        "  published to JetStream:   {:>9.0} samples/s ({publish_secs:.1} s)",
        total as f64 / publish_secs
    );

    // 2. The release persister drains it.
    let mut persister = Command::new(env!("CARGO_BIN_EXE_flick-persister"))
        .env("NATS_URL", testkit::nats_url())
        .env("FLICK_NATS__PREFIX", subjects.prefix())
        .env("DATABASE_URL", db.url())
        .env("FLICK_PERSISTER__OPS_LISTEN", "")
        .env(
            "FLICK_STREAMS__METRICS_MAX_BYTES",
            streams.metrics_max_bytes.to_string(),
        )
        .env(
            "FLICK_STREAMS__ALERTS_MAX_BYTES",
            streams.alerts_max_bytes.to_string(),
        )
        .env(
            "FLICK_STREAMS__LOGS_MAX_BYTES",
            streams.logs_max_bytes.to_string(),
        )
        .env(
            "FLICK_STREAMS__PROCESSES_MAX_BYTES",
            streams.processes_max_bytes.to_string(),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start flick-persister");
    // Completion is read from JetStream (nothing pending, nothing unacknowledged: every
    // message committed), not by counting rows, which would load the database being measured.
    let started = Instant::now();
    let cpu_before = [
        cpu_secs_of("flick-persister"),
        cpu_secs_of("nats-server"),
        cpu_secs_of("postgres"),
    ];
    let stream = js
        .get_stream(subjects.stream_name(flick_shared::subjects::StreamKind::Metrics))
        .await
        .unwrap();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(mut consumer) = stream
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>("persister")
            .await
        else {
            continue;
        };
        let info = consumer.info().await.unwrap();
        if info.num_pending == 0
            && info.num_ack_pending == 0
            && info.delivered.stream_sequence >= total as u64
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "persister stalled: {info:?}"
        );
    }
    let persist_secs = started.elapsed().as_secs_f64();
    let cpu_after = [
        cpu_secs_of("flick-persister"),
        cpu_secs_of("nats-server"),
        cpu_secs_of("postgres"),
    ];
    let rss = peak_rss_mb(persister.id());
    let _ = persister.kill();
    let _ = persister.wait();
    let persist_rate = total as f64 / persist_secs;
    println!(
        "  persisted (NATS -> PG):   {persist_rate:>9.0} samples/s ({persist_secs:.1} s, start-up included; peak RSS {rss:.0} MB)"
    );
    let per_k = |i: usize| (cpu_after[i] - cpu_before[i]) * 1_000_000.0 / total as f64;
    println!(
        "  CPU per 1,000 samples:    persister {:.1} ms, nats-server {:.1} ms, postgres {:.1} ms",
        per_k(0),
        per_k(1),
        per_k(2)
    );
    assert_eq!(
        count(&db.pool, "metrics").await,
        total,
        "every sample stored once"
    );
    // Let autovacuum finish with the table just written before measuring COPY on the same server.
    sqlx::query("VACUUM (ANALYZE) metrics")
        .execute(&db.pool)
        .await
        .unwrap();

    // 3. The physical limit: COPY of the same rows into an empty table of the same shape.
    sqlx::query("CREATE TABLE metrics_copy (LIKE metrics INCLUDING ALL)")
        .execute(&db.pool)
        .await
        .unwrap();
    let mut text = String::with_capacity(total as usize * 400);
    for sample in samples(servers, per_server) {
        copy_row(&mut text, &sample);
    }
    let mut conn = db.pool.acquire().await.unwrap();
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "COPY metrics_copy (server_id, ts, cpu, memory, disk, network, network_rx, network_tx,
                 load1, load5, load15, memory_used, memory_total, swap_used, swap_total, disk_read,
                 disk_write, uptime_secs, processes, cpu_cores, mounts, interfaces) FROM STDIN",
        )
        .await
        .unwrap();
    for chunk in text.as_bytes().chunks(1 << 20) {
        copy.send(chunk).await.unwrap();
    }
    copy.finish().await.unwrap();
    let copy_secs = started.elapsed().as_secs_f64();
    drop(conn);
    assert_eq!(count(&db.pool, "metrics_copy").await, total);
    let copy_rate = total as f64 / copy_secs;
    println!("  raw COPY, same rows:      {copy_rate:>9.0} rows/s ({copy_secs:.1} s)");
    println!(
        "persister / raw COPY = {:.2} (goals: >= 50,000 samples/s and >= 0.5)",
        persist_rate / copy_rate
    );
    let _ = js
        .delete_stream(subjects.stream_name(flick_shared::subjects::StreamKind::Metrics))
        .await;
}

/// One row in COPY text format (tab-separated, `\N` for NULL, backslashes escaped).
fn copy_row(out: &mut String, s: &MetricSample) {
    fn opt<T: std::fmt::Display>(out: &mut String, value: Option<T>) {
        match value {
            Some(v) => write!(out, "\t{v}").unwrap(),
            None => out.push_str("\t\\N"),
        }
    }
    fn json<T: serde::Serialize>(out: &mut String, values: &[T]) {
        out.push('\t');
        if values.is_empty() {
            out.push_str("\\N");
        } else {
            let text = serde_json::to_string(values).unwrap();
            out.push_str(&text.replace('\\', "\\\\"));
        }
    }
    write!(
        out,
        "{}\t{}\t{}\t{}\t{}\t{}",
        s.server_id,
        s.timestamp.to_rfc3339(),
        s.cpu_usage as f32,
        s.memory_usage as f32,
        s.disk_usage as f32,
        s.network_usage
    )
    .unwrap();
    opt(out, s.network.map(|n| n.rx_bytes_per_sec));
    opt(out, s.network.map(|n| n.tx_bytes_per_sec));
    opt(out, s.load_average.map(|l| l.one as f32));
    opt(out, s.load_average.map(|l| l.five as f32));
    opt(out, s.load_average.map(|l| l.fifteen as f32));
    opt(out, s.memory.map(|m| m.used_bytes));
    opt(out, s.memory.map(|m| m.total_bytes));
    opt(out, s.swap.map(|m| m.used_bytes));
    opt(out, s.swap.map(|m| m.total_bytes));
    opt(out, s.disk_io.map(|d| d.read_bytes_per_sec));
    opt(out, s.disk_io.map(|d| d.write_bytes_per_sec));
    opt(out, s.uptime_secs);
    opt(out, s.process_count);
    let cores: Vec<String> = s
        .cpu_cores
        .iter()
        .map(|c| (*c as f32).to_string())
        .collect();
    opt(
        out,
        (!cores.is_empty()).then(|| format!("{{{}}}", cores.join(","))),
    );
    json(out, &s.mounts);
    json(out, &s.interfaces);
    out.push('\n');
}
