//! The stored detail is queryable: an hour of samples with cores, mounts, interfaces, swap,
//! load, disk I/O and temperatures, published on NATS and stored by the real persister, comes back from the
//! real gateway's `/servers/{id}/metrics/detail`, bucketed, equal to what the samples say
//! (the average, minimum and maximum of each line in each bucket, computed here).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, DurationRound as _, Utc};
use reqwest::{Method, StatusCode};
use serde_json::json;

use common::{Api, Stack};
use flick_shared::testkit::{self, eventually};
use flick_shared::wire::{
    DiskIo, InterfaceRates, LoadAverage, MetricSample, MountUsage, ServerId, SwapStats, Temperature,
};

const SERVER: &str = "detail-1";
const BUCKET_SECS: i64 = 300;

/// The samples of second `s`: every figure moves, differently per line.
fn sample(id: &ServerId, at: DateTime<Utc>, s: i64) -> MetricSample {
    let sf = s as f64;
    let mounts: Vec<MountUsage> = serde_json::from_value(json!([
        // A current collector: df's percent from used and available.
        { "mountPoint": "/", "device": "/dev/vda1", "totalBytes": 1_000_000_000_000_u64,
          "usedBytes": 400_000_000_000 + s * 1_000_000, "availableBytes": 550_000_000_000 - s * 1_000_000 },
        // An older collector's mount, without availableBytes: used / total.
        { "mountPoint": "/data", "device": "/dev/vdb", "totalBytes": 10_000_000_000_000_u64,
          "usedBytes": s * 1_000_000_000 },
    ]))
    .expect("mounts");
    MetricSample {
        cpu_cores: (0..4).map(|k| ((s * (k + 1)) % 97) as f64 + 0.25).collect(),
        mounts,
        interfaces: vec![
            InterfaceRates {
                name: "eth0".into(),
                rx_bytes_per_sec: (s * 10) as u64,
                tx_bytes_per_sec: (5_000 - s) as u64,
            },
            InterfaceRates {
                name: "wlan0".into(),
                rx_bytes_per_sec: ((s % 60) * 100) as u64,
                tx_bytes_per_sec: 7,
            },
        ],
        swap: Some(SwapStats {
            total_bytes: 1_000_000_000,
            used_bytes: ((s % 100) * 1_000_000) as u64,
        }),
        load_average: Some(LoadAverage {
            one: (s % 50) as f64 / 4.0,
            five: 2.5,
            fifteen: sf / 1_000.0,
        }),
        disk_io: Some(DiskIo {
            read_bytes_per_sec: (s * 3) as u64,
            write_bytes_per_sec: (1_000 + s) as u64,
        }),
        temperatures: vec![
            Temperature {
                label: "coretemp Package id 0".into(),
                celsius: 40.0 + (s % 30) as f64,
                max_celsius: None,
                critical_celsius: Some(100.0),
            },
            Temperature {
                label: "nvme Composite".into(),
                celsius: 35.5,
                max_celsius: None,
                critical_celsius: None,
            },
        ],
        ..MetricSample::minimal(id.clone(), at, 10.0, 20.0, 40.0, 1_000)
    }
}

/// `line → bucket start → values` for one series, from the samples themselves.
type Expected = BTreeMap<String, BTreeMap<i64, Vec<f64>>>;

fn expected(samples: &[MetricSample], series: &str) -> Expected {
    let mut lines = Expected::new();
    for sample in samples {
        let bucket = sample.timestamp.timestamp().div_euclid(BUCKET_SECS) * BUCKET_SECS;
        let mut add = |name: String, value: f64| {
            lines
                .entry(name)
                .or_default()
                .entry(bucket)
                .or_default()
                .push(value);
        };
        match series {
            "cores" => {
                for (i, v) in sample.cpu_cores.iter().enumerate() {
                    add(format!("core {i}"), *v);
                }
            }
            "mounts" => {
                for m in &sample.mounts {
                    add(m.mount_point.clone(), m.usage_percent());
                }
            }
            "interfaces" => {
                for i in &sample.interfaces {
                    add(format!("{} received", i.name), i.rx_bytes_per_sec as f64);
                    add(format!("{} sent", i.name), i.tx_bytes_per_sec as f64);
                }
            }
            "swap" => {
                let swap = sample.swap.expect("swap");
                add(
                    "swap used".into(),
                    100.0 * swap.used_bytes as f64 / swap.total_bytes as f64,
                );
            }
            "load" => {
                let load = sample.load_average.expect("load");
                add("1 min".into(), load.one);
                add("5 min".into(), load.five);
                add("15 min".into(), load.fifteen);
            }
            "disk_io" => {
                let io = sample.disk_io.expect("disk I/O");
                add("read".into(), io.read_bytes_per_sec as f64);
                add("write".into(), io.write_bytes_per_sec as f64);
            }
            "temperatures" => {
                for t in &sample.temperatures {
                    add(t.label.clone(), t.celsius);
                }
            }
            other => panic!("no series {other}"),
        }
    }
    lines
}

fn close(a: f64, b: f64) -> bool {
    // Cores and load are stored as `real`: 7 significant digits.
    (a - b).abs() <= 1e-5 * a.abs().max(b.abs()).max(1.0)
}

#[tokio::test]
async fn an_hour_of_every_detail_figure_comes_back_bucketed_as_stored() {
    let stack = Stack::new()
        .await
        .with_env("FLICK_PERSISTER__FLUSH_INTERVAL_MS", "200");
    let _backend = stack.start_backend().await;
    let api = Api::of(&stack);
    let ada = api.register("ada@example.com").await;
    let (status, body) = api
        .call(
            Method::POST,
            "/servers",
            Some(&ada),
            Some(json!({ "id": SERVER, "name": SERVER })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let start = (Utc::now() - chrono::Duration::minutes(62))
        .duration_trunc(chrono::Duration::minutes(5))
        .expect("whole minutes");
    let id = ServerId::parse(SERVER).expect("id");
    let samples: Vec<MetricSample> = (0..3_600)
        .map(|s| sample(&id, start + chrono::Duration::seconds(s), s))
        .collect();
    let client = testkit::connect().await;
    let js = async_nats::jetstream::new(client.clone());
    testkit::publish_samples(&js, &stack.subjects, &samples, true).await;
    eventually("an hour stored", Duration::from_secs(90), || {
        let pool = stack.db.pool.clone();
        async move {
            let stored: i64 =
                sqlx::query_scalar("SELECT count(*) FROM metrics WHERE server_id = $1")
                    .bind(SERVER)
                    .fetch_one(&pool)
                    .await
                    .ok()?;
            (stored == 3_600).then_some(())
        }
    })
    .await;

    let from = start.to_rfc3339();
    let to = (start + chrono::Duration::hours(1)).to_rfc3339();
    for series in [
        "cores",
        "mounts",
        "interfaces",
        "swap",
        "load",
        "disk_io",
        "temperatures",
    ] {
        let path = format!(
            "/servers/{SERVER}/metrics/detail?series={series}&bucket=5m&from={}&to={}",
            urlencode(&from),
            urlencode(&to)
        );
        let answer = api.get(&path, &ada).await;
        assert_eq!(answer["bucketSecs"], BUCKET_SECS, "{series}");
        let want = expected(&samples, series);
        let lines = answer["lines"].as_array().expect("lines");
        let names: Vec<&str> = lines.iter().filter_map(|l| l["name"].as_str()).collect();
        let mut wanted: Vec<&str> = want.keys().map(String::as_str).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        wanted.sort_unstable();
        assert_eq!(sorted, wanted, "{series}: the lines");
        for line in lines {
            let name = line["name"].as_str().expect("name");
            let buckets = &want[name];
            let points = line["points"].as_array().expect("points");
            assert_eq!(points.len(), buckets.len(), "{series} {name}: 12 buckets");
            for (point, (bucket, values)) in points.iter().zip(buckets) {
                let t = DateTime::parse_from_rfc3339(point["t"].as_str().expect("t"))
                    .expect("RFC 3339")
                    .timestamp();
                assert_eq!(t, *bucket, "{series} {name}");
                assert_eq!(point["samples"], values.len(), "{series} {name} at {t}");
                let avg = values.iter().sum::<f64>() / values.len() as f64;
                let min = values.iter().copied().fold(f64::INFINITY, f64::min);
                let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                for (field, want) in [("avg", avg), ("min", min), ("max", max)] {
                    let got = point[field].as_f64().expect("a number");
                    assert!(
                        close(got, want),
                        "{series} {name} at {t}: {field} {got}, the samples say {want}"
                    );
                }
            }
        }
    }
    // Cores in numeric order, a bad series named, another user's server unseen.
    let cores = api
        .get(
            &format!(
                "/servers/{SERVER}/metrics/detail?series=cores&from={}&to={}",
                urlencode(&from),
                urlencode(&to)
            ),
            &ada,
        )
        .await;
    assert_eq!(cores["lines"][0]["name"], "core 0");
    let (status, body) = api
        .call(
            Method::GET,
            &format!("/servers/{SERVER}/metrics/detail?series=fans"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("series"), "{body}");
    let bob = api.register("bob@example.com").await;
    let (status, _) = api
        .call(
            Method::GET,
            &format!("/servers/{SERVER}/metrics/detail?series=mounts"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}
