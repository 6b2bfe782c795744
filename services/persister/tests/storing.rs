//! What the persister stores, and that storing twice stores once.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;

use common::{Harness, samples};
use flick_shared::wire::{InterfaceRates, MetricSample, MountUsage, Temperature};

#[tokio::test]
async fn ten_thousand_samples_from_a_hundred_servers_become_ten_thousand_equal_rows() {
    let harness = Harness::new().await;
    let persister = harness.start(harness.config());
    let mut published = samples(100, 100);
    harness.publish(&published).await;
    harness
        .wait_for_rows("metrics", 10_000, Duration::from_secs(60))
        .await;

    assert_all_stored(&harness, &mut published).await;
    // One sensor over time, as the migration's comment charts it.
    let series: Vec<(DateTime<Utc>, f32)> = sqlx::query_as(
        "SELECT ts, (t->>'celsius')::real FROM metrics, json_array_elements(temperatures) t
         WHERE server_id = $1 AND t->>'label' = 'coretemp Package id 0' ORDER BY ts",
    )
    .bind(published[0].server_id.as_str())
    .fetch_all(&harness.db.pool)
    .await
    .expect("a temperature series");
    assert_eq!(series.len(), 100, "one point per sample of the server");

    let servers: i64 = harness.count("servers").await;
    assert_eq!(servers, 100, "one server row per server seen");
    let stale: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM servers s
                  WHERE s.owner_id IS NOT NULL OR s.hostname IS NULL
            OR s.last_seen_at > (SELECT max(ts) FROM metrics m WHERE m.server_id = s.id)
            OR s.last_seen_at < (SELECT max(ts) FROM metrics m WHERE m.server_id = s.id) - interval '10 seconds'",
    )
    .fetch_one(&harness.db.pool)
    .await
    .expect("query");
    assert_eq!(
        stale, 0,
        "discovered servers have no owner, a host name, and last_seen_at within 10 s of the latest sample"
    );
    persister.stop().await;
}

/// Every row equals the sample it came from, column by column.
async fn assert_all_stored(harness: &Harness, published: &mut [MetricSample]) {
    let rows = sqlx::query(
        "SELECT server_id, ts, cpu, memory, disk, network, network_rx, network_tx, load1, load5,
                load15, memory_used, memory_total, swap_used, swap_total, disk_read, disk_write,
                uptime_secs, processes, cpu_cores, mounts::text AS mounts, interfaces::text AS interfaces,
                temperatures::text AS temperatures
         FROM metrics ORDER BY server_id, ts",
    )
    .fetch_all(&harness.db.pool)
    .await
    .expect("read rows");
    published.sort_by(|a, b| {
        (a.server_id.as_str(), a.timestamp).cmp(&(b.server_id.as_str(), b.timestamp))
    });
    assert_eq!(rows.len(), published.len());
    for (row, sample) in rows.iter().zip(published.iter()) {
        assert_stored(row, sample);
    }
}

fn assert_stored(row: &sqlx::postgres::PgRow, s: &MetricSample) {
    let get_i64 = |name: &str| row.get::<Option<i64>, _>(name);
    assert_eq!(row.get::<String, _>("server_id"), s.server_id.as_str());
    assert_eq!(row.get::<DateTime<Utc>, _>("ts"), s.timestamp);
    assert_eq!(row.get::<f32, _>("cpu"), s.cpu_usage as f32);
    assert_eq!(row.get::<f32, _>("memory"), s.memory_usage as f32);
    assert_eq!(row.get::<f32, _>("disk"), s.disk_usage as f32);
    assert_eq!(row.get::<i64, _>("network"), s.network_usage as i64);
    let network = s.network.expect("simulated samples are complete");
    assert_eq!(get_i64("network_rx"), Some(network.rx_bytes_per_sec as i64));
    assert_eq!(get_i64("network_tx"), Some(network.tx_bytes_per_sec as i64));
    let load = s.load_average.expect("load");
    assert_eq!(row.get::<Option<f32>, _>("load1"), Some(load.one as f32));
    assert_eq!(
        row.get::<Option<f32>, _>("load15"),
        Some(load.fifteen as f32)
    );
    let memory = s.memory.expect("memory");
    assert_eq!(get_i64("memory_used"), Some(memory.used_bytes as i64));
    assert_eq!(get_i64("memory_total"), Some(memory.total_bytes as i64));
    assert_eq!(get_i64("swap_used"), s.swap.map(|w| w.used_bytes as i64));
    let io = s.disk_io.expect("disk io");
    assert_eq!(get_i64("disk_read"), Some(io.read_bytes_per_sec as i64));
    assert_eq!(get_i64("disk_write"), Some(io.write_bytes_per_sec as i64));
    assert_eq!(get_i64("uptime_secs"), s.uptime_secs.map(|u| u as i64));
    assert_eq!(
        row.get::<Option<i32>, _>("processes"),
        s.process_count.map(|p| p as i32)
    );
    let cores: Vec<f32> = s.cpu_cores.iter().map(|c| *c as f32).collect();
    assert_eq!(row.get::<Option<Vec<f32>>, _>("cpu_cores"), Some(cores));
    let mounts: Vec<MountUsage> =
        serde_json::from_str(&row.get::<String, _>("mounts")).expect("mounts JSON");
    assert_eq!(mounts, s.mounts);
    let interfaces: Vec<InterfaceRates> =
        serde_json::from_str(&row.get::<String, _>("interfaces")).expect("interfaces JSON");
    assert_eq!(interfaces, s.interfaces);
    let temperatures: Vec<Temperature> =
        serde_json::from_str(&row.get::<String, _>("temperatures")).expect("temperatures JSON");
    assert_eq!(temperatures, s.temperatures);
}

#[tokio::test]
async fn a_minimal_sample_is_stored_with_its_detail_empty() {
    let harness = Harness::new().await;
    let persister = harness.start(harness.config());
    let id = flick_shared::wire::ServerId::parse("script-host").expect("valid");
    let sample = MetricSample::minimal(
        id.clone(),
        flick_collector::now_millis(),
        12.5,
        40.0,
        70.0,
        99,
    );
    harness.publish(std::slice::from_ref(&sample)).await;
    harness
        .wait_for_rows("metrics", 1, Duration::from_secs(20))
        .await;
    let (cpu, rx, cores, temperatures): (f32, Option<i64>, Option<Vec<f32>>, Option<String>) =
        sqlx::query_as("SELECT cpu, network_rx, cpu_cores, temperatures::text FROM metrics")
            .fetch_one(&harness.db.pool)
            .await
            .expect("row");
    assert_eq!(
        (cpu, rx, cores, temperatures),
        (12.5, None, None, None),
        "no sensors: NULL, not an empty array"
    );
    let name: String = sqlx::query_scalar("SELECT name FROM servers WHERE id = 'script-host'")
        .fetch_one(&harness.db.pool)
        .await
        .expect("server row");
    assert_eq!(
        name, "script-host",
        "a server without a host name is named by its id"
    );
    persister.stop().await;
}

#[tokio::test]
async fn mount_points_with_backslashes_tabs_quotes_and_unicode_are_stored_as_written() {
    let harness = Harness::new().await;
    let persister = harness.start(harness.config());
    let mut published = samples(2, 3);
    let awkward = [
        "C:\\Data\\new",
        "/mnt/tab\there",
        "/mnt/line\nbreak\r",
        "/mnt/\"quoted\" \\N",
        "/mnt/données/日本",
    ];
    for (sample, name) in published.iter_mut().zip(awkward.iter().cycle()) {
        sample.mounts[0].mount_point = (*name).to_owned();
        sample.mounts[0].device = format!("{name}\\dev");
        if let Some(interface) = sample.interfaces.first_mut() {
            interface.name = format!("{name}\t0");
        }
    }
    harness.publish(&published).await;
    harness
        .wait_for_rows("metrics", published.len() as i64, Duration::from_secs(30))
        .await;
    assert_all_stored(&harness, &mut published).await;
    persister.stop().await;
}

#[tokio::test]
async fn samples_published_twice_or_redelivered_are_stored_once() {
    let harness = Harness::new().await;
    let published = samples(20, 100);
    // Twice with the same Nats-Msg-Id: JetStream drops the repeats.
    harness.publish(&published).await;
    harness.publish(&published).await;
    // Again without ids, as after the duplicate window: the stream now holds every sample
    // twice and the persister must store each once.
    harness.publish_with_ids(&published, false).await;
    let mut stream = harness
        .js
        .get_stream(
            harness
                .subjects
                .stream_name(flick_shared::subjects::StreamKind::Metrics),
        )
        .await
        .expect("stream");
    let in_stream = stream.info().await.expect("info").state.messages;
    assert_eq!(
        in_stream, 4_000,
        "the same id was dropped, the id-less repeats were not"
    );

    let persister = harness.start(harness.config());
    harness
        .wait_for_rows("metrics", 2_000, Duration::from_secs(60))
        .await;
    // Every message, repeats included, was acknowledged.
    harness.wait_all_acked().await;
    persister.stop().await;
    assert_eq!(harness.count("metrics").await, 2_000);
}

#[tokio::test]
async fn container_lists_are_stored_with_their_samples_and_an_empty_list_as_none_left() {
    let harness = Harness::new().await;
    let persister = harness.start(harness.config());
    let mut published = samples(1, 3);
    let container = |name: &str| flick_shared::wire::ContainerUsage {
        id: "aaaaaaaaaaaa".into(),
        name: name.into(),
        image: "nginx".into(),
        state: "running".into(),
        health: None,
        exit_code: None,
        restarts: 0,
        cpu_percent: 2.5,
        memory_bytes: 1 << 20,
        memory_limit_bytes: None,
        net_rx_bytes: 1,
        net_tx_bytes: 2,
        block_read_bytes: 3,
        block_write_bytes: 4,
    };
    // Two containers; then the engine has none; then a sample between two lists (no field).
    published[0].containers = Some(vec![container("web"), container("db")]);
    published[1].containers = Some(vec![]);
    published[2].containers = None;
    harness.publish(&published).await;
    harness
        .wait_for_rows("metrics", 3, Duration::from_secs(30))
        .await;
    let rows: Vec<(DateTime<Utc>, String)> =
        sqlx::query_as("SELECT ts, name FROM containers ORDER BY ts, name")
            .fetch_all(&harness.db.pool)
            .await
            .expect("containers");
    assert_eq!(
        rows,
        [
            (published[0].timestamp, "db".to_owned()),
            (published[0].timestamp, "web".to_owned()),
            (published[1].timestamp, String::new()),
        ],
        "the empty list is one row with no name, so it is the newest list"
    );
    persister.stop().await;
}
