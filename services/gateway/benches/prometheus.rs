//! Prometheus scrape cost: N servers (1,000 by default) with 5 minutes of 5-second samples
//! (4 cores, 2 mounts, 2 interfaces, 1 sensor each) and a firing alert on one in twenty, then
//! p50/p99 of `GET /api/v1/prometheus` with a `metrics:scrape` API token through the real
//! gateway over HTTP, the size of the answer and its series.
//!
//! `cargo bench -p flick-gateway --bench prometheus` (`FLICK_BENCH_SERVERS=1000,10000`,
//! `FLICK_BENCH_REQUESTS`).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Instant;

use serde_json::{Value, json};

use flick_shared::testkit::{self, TestDb};

use support::percentile;

async fn load(db: &TestDb, servers: usize) {
    sqlx::query(
        "INSERT INTO servers (id, name, hostname, tags, last_seen_at)
         SELECT 'srv-' || s, 'server ' || s, 'host-' || s || '.example', ARRAY['prod', 'team=core'], now()
         FROM generate_series(1, $1) AS s",
    )
    .bind(servers as i32)
    .execute(&db.pool)
    .await
    .unwrap();
    for first in (1..=servers).step_by(500) {
        let last = (first + 499).min(servers);
        sqlx::query(
            r#"INSERT INTO metrics (server_id, ts, cpu, memory, disk, network, network_rx, network_tx,
                                 load1, load5, load15, memory_used, memory_total, swap_used, swap_total,
                                 disk_read, disk_write, uptime_secs, processes, cpu_cores, mounts,
                                 interfaces, temperatures)
             SELECT 'srv-' || s, ts, 20 + 60 * random(), 30 + 40 * random(), 50 + 10 * random(),
                    (random() * 1e6)::bigint, (random() * 6e5)::bigint, (random() * 4e5)::bigint,
                    2 * random(), 1.5, 1.2, 4000000000, 8000000000, 0, 2000000000,
                    (random() * 1e6)::bigint, (random() * 1e6)::bigint, 86400, 250,
                    ARRAY[10 * random(), 20, 30, 40]::real[],
                    '[{"mountPoint":"/","device":"/dev/vda1","fileSystem":"ext4","totalBytes":100000000000,"usedBytes":40000000000,"availableBytes":55000000000},
                      {"mountPoint":"/data","device":"/dev/vdb","fileSystem":"xfs","totalBytes":1000000000000,"usedBytes":10000000000,"availableBytes":990000000000}]'::json,
                    '[{"name":"eth0","rxBytesPerSec":1000,"txBytesPerSec":2000},{"name":"eth1","rxBytesPerSec":3,"txBytesPerSec":4}]'::json,
                    '[{"label":"coretemp Package id 0","celsius":48.5}]'::json
             FROM generate_series($1::int, $2::int) AS s,
                  generate_series(now() - interval '5 minutes' + interval '5 seconds', now(), interval '5 seconds') AS ts
             ORDER BY 1, 2"#,
        )
        .bind(first as i32)
        .bind(last as i32)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO alerts (id, server_id, metric, severity, state, value, threshold, started_at)
         SELECT gen_random_uuid(), 'srv-' || s, 'cpu', 'critical', 'firing', 95, 90, now()
         FROM generate_series(1, $1, 20) AS s",
    )
    .bind(servers as i32)
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query("VACUUM (ANALYZE) metrics")
        .execute(&db.pool)
        .await
        .unwrap();
}

async fn run(servers: usize, requests: usize) {
    let db = TestDb::new().await;
    let subjects = testkit::unique_subjects();
    let started = Instant::now();
    load(&db, servers).await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM metrics")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    println!(
        "{servers} servers: loaded {rows} rows in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let gateway = support::InProcess::start(&db, &subjects).await;
    let base = gateway.base.clone();
    let http = testkit::http();
    let access = support::admin_session(&http, &base).await;
    let created: Value = http
        .post(format!("{base}/api/v1/tokens"))
        .bearer_auth(&access)
        .json(&json!({ "name": "prometheus", "scopes": ["metrics:scrape"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = created["token"].as_str().unwrap().to_owned();

    let mut latencies = Vec::with_capacity(requests);
    let (mut bytes, mut series) = (0, 0);
    for _ in 0..requests {
        let started = Instant::now();
        let response = http
            .get(format!("{base}/api/v1/prometheus"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        latencies.push(started.elapsed().as_secs_f64() * 1_000.0);
        bytes = text.len();
        series = text.lines().filter(|l| !l.starts_with('#')).count();
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "{servers} servers: p50 {:7.1} ms, p99 {:7.1} ms, max {:7.1} ms; {:.1} MB, {series} series ({:.0} per server), {requests} scrapes",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0),
        bytes as f64 / 1e6,
        series as f64 / servers as f64,
    );
    gateway.stop().await;
}

#[tokio::main]
async fn main() {
    let fleets: Vec<usize> = std::env::var("FLICK_BENCH_SERVERS")
        .unwrap_or_else(|_| "1000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let requests = std::env::var("FLICK_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    for servers in fleets {
        run(servers, requests).await;
    }
    println!("reference: a 15 s scrape interval leaves 15,000 ms per scrape");
}
