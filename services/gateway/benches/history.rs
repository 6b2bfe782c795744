//! Metric history latency: 1,000 servers with 24 h of 5-second samples (about 17 million rows),
//! then p50/p99 of `GET /servers/{id}/metrics` for 1 h, 24 h and 7 days at the default bucket,
//! and of `GET /servers`, through the real gateway over HTTP.
//!
//! `cargo bench -p flick-gateway --bench history` (`FLICK_BENCH_SERVERS`, `FLICK_BENCH_REQUESTS`;
//! `DATABASE_URL` may point at a TimescaleDB server: its aggregates are refreshed after loading).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Instant;

use serde_json::Value;

use flick_shared::testkit::{self, TestDb};

use support::percentile;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let servers = env_usize("FLICK_BENCH_SERVERS", 1_000);
    let requests = env_usize("FLICK_BENCH_REQUESTS", 300);
    let db = TestDb::new().await;
    let subjects = testkit::unique_subjects();

    let started = Instant::now();
    sqlx::query("INSERT INTO servers (id, name, last_seen_at) SELECT 'srv-' || s, 'server ' || s, now() FROM generate_series(1, $1) AS s")
        .bind(servers as i32)
        .execute(&db.pool)
        .await
        .unwrap();
    for first in (1..=servers).step_by(50) {
        let last = (first + 49).min(servers);
        sqlx::query(
            "INSERT INTO metrics (server_id, ts, cpu, memory, disk, network, network_rx, network_tx, load1)
             SELECT 'srv-' || s, ts, 20 + 60 * random(), 30 + 40 * random(), 50 + 10 * random(),
                    (random() * 1e6)::bigint, (random() * 6e5)::bigint, (random() * 4e5)::bigint, 2 * random()
             FROM generate_series($1::int, $2::int) AS s,
                  generate_series(now() - interval '24 hours', now(), interval '5 seconds') AS ts
             ORDER BY 1, 2",
        )
        .bind(first as i32)
        .bind(last as i32)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    sqlx::query("VACUUM (ANALYZE) metrics")
        .execute(&db.pool)
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM metrics")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let timescale = flick_shared::db::has_timescaledb(&db.pool).await.unwrap();
    if timescale {
        for view in ["metrics_1m", "metrics_1h"] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CALL refresh_continuous_aggregate('{view}', NULL, NULL)"
            )))
            .execute(&db.pool)
            .await
            .unwrap();
        }
    }
    println!(
        "loaded {rows} rows ({servers} servers x 24 h at 5 s) in {:.0} s; TimescaleDB: {timescale}",
        started.elapsed().as_secs_f64()
    );

    let gateway = support::InProcess::start(&db, &subjects).await;
    let base = gateway.base.clone();
    let http = testkit::http();
    let token = support::admin_session(&http, &base).await;

    let now = chrono::Utc::now();
    let cases: Vec<(&str, Option<chrono::Duration>)> = vec![
        ("1 h", Some(chrono::Duration::hours(1))),
        ("24 h", Some(chrono::Duration::hours(24))),
        ("7 days", Some(chrono::Duration::days(7))),
        ("GET /servers", None),
    ];
    for (name, range) in cases {
        let mut latencies = Vec::with_capacity(requests);
        let mut points = 0;
        for i in 0..requests {
            let url = match range {
                Some(range) => {
                    let server = 1 + (i * 7919) % servers;
                    let from = (now - range).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    let to = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    format!("{base}/api/v1/servers/srv-{server}/metrics?from={from}&to={to}")
                }
                None => format!("{base}/api/v1/servers"),
            };
            let started = Instant::now();
            let response = http.get(url).bearer_auth(&token).send().await.unwrap();
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            latencies.push(started.elapsed().as_secs_f64() * 1_000.0);
            points = body["points"]
                .as_array()
                .map_or_else(|| body.as_array().map_or(0, Vec::len), Vec::len);
        }
        latencies.sort_by(f64::total_cmp);
        println!(
            "{name:>13}: p50 {:6.1} ms, p99 {:6.1} ms, max {:6.1} ms ({} items per answer, {requests} requests)",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or(0.0),
            points
        );
    }
    println!("goal: p99 under 50 ms for 24 h");
    gateway.stop().await;
}
