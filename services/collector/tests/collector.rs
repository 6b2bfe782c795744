//! The collector against a real NATS server: what it publishes, and what it does when NATS dies.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream;
use chrono::Utc;

use flick_collector::{CollectorReport, Config};
use flick_shared::shutdown::CancellationToken;
use flick_shared::subjects::StreamKind;
use flick_shared::testkit::{self, NatsServer, eventually, next_json, read_stream};
use flick_shared::wire::{MetricSample, ServerStatus, StatusState, decode};

const INTERVAL_MS: u64 = 200;

fn config(url: &str, prefix: &str) -> Config {
    let mut config = Config::default();
    config.nats.url = url.to_owned();
    config.nats.prefix = prefix.to_owned();
    config.nats.request_timeout_ms = 1_000;
    config.collector.interval_ms = INTERVAL_MS;
    config.collector.server_id = Some("collector-test".to_owned());
    config.streams = testkit::stream_settings();
    config
}

fn start(
    config: Config,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<CollectorReport>>,
) {
    let stop = CancellationToken::new();
    let task = tokio::spawn(flick_collector::run(config, stop.clone()));
    (stop, task)
}

async fn stream_count(js: &jetstream::Context, stream: &str) -> Option<u64> {
    let mut stream = js.get_stream(stream).await.ok()?;
    Some(stream.info().await.ok()?.state.messages)
}

#[tokio::test]
async fn publishes_plausible_samples_that_decode_with_the_shared_types() {
    testkit::init_test_logs();
    let subjects = testkit::unique_subjects();
    let client = testkit::connect().await;
    let mut samples = client
        .subscribe(subjects.all_servers(StreamKind::Metrics))
        .await
        .expect("subscribe");
    let mut statuses = client
        .subscribe(subjects.status_all())
        .await
        .expect("subscribe");
    testkit::registered(&client).await;

    let (stop, task) = start(config(&testkit::nats_url(), subjects.prefix()));
    let starting: ServerStatus = next_json(&mut statuses, Duration::from_secs(10)).await;
    assert_eq!(starting.state, StatusState::Starting);

    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    let mut previous: Option<MetricSample> = None;
    for _ in 0..5 {
        let message = testkit::next_message(&mut samples, Duration::from_secs(5)).await;
        assert_eq!(
            message.subject.as_str(),
            subjects.metrics(&starting.server_id)
        );
        let sample: MetricSample = decode(&message.payload, Utc::now()).expect("a valid v1 sample");
        assert_eq!(sample.server_id.as_str(), "collector-test");
        for (name, value) in [
            ("cpu", sample.cpu_usage),
            ("memory", sample.memory_usage),
            ("disk", sample.disk_usage),
        ] {
            assert!((0.0..=100.0).contains(&value), "{name} {value}");
        }
        assert_eq!(sample.cpu_cores.len(), cores);
        assert!(sample.cpu_cores.iter().all(|c| (0.0..=100.0).contains(c)));
        let memory = sample.memory.expect("memory detail");
        assert!(memory.total_bytes > 0 && memory.used_bytes <= memory.total_bytes);
        assert!(sample.memory_usage > 0.0, "a running host uses some memory");
        assert!(
            sample.mounts.iter().any(|m| m.mount_point == "/"),
            "{:?}",
            sample.mounts
        );
        assert!(
            sample
                .mounts
                .iter()
                .all(|m| m.file_system != "tmpfs" && m.file_system != "proc")
        );
        assert!(sample.interfaces.iter().all(|i| i.name != "lo"));
        let network = sample.network.expect("network detail");
        assert_eq!(
            sample.network_usage,
            network.rx_bytes_per_sec + network.tx_bytes_per_sec
        );
        assert!(sample.load_average.is_some() && sample.uptime_secs.unwrap_or(0) > 0);
        assert!(sample.process_count.unwrap_or(0) > 1);
        assert!(sample.hostname.as_deref().is_some_and(|h| !h.is_empty()));
        assert!(sample.timestamp <= Utc::now());
        if let Some(previous) = &previous {
            let gap = sample.timestamp - previous.timestamp;
            assert!(
                gap.num_milliseconds() >= 100,
                "timestamps increase by about the interval: {gap}"
            );
        }
        previous = Some(sample);
    }

    // The same samples are in the stream, each with its Nats-Msg-Id.
    let js = jetstream::new(client.clone());
    let stored = read_stream(&js, &subjects.stream_name(StreamKind::Metrics)).await;
    let first = stored.first().expect("samples stored in JetStream");
    let sample: MetricSample = serde_json::from_slice(&first.payload).expect("decodes");
    let id = first
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Msg-Id"))
        .map(|v| v.as_str().to_owned());
    assert_eq!(id, Some(sample.message_id()));

    // A planned stop is announced.
    stop.cancel();
    let report = task.await.expect("join").expect("collector ran");
    assert_eq!(report.undelivered, 0);
    let stopping: ServerStatus = next_json(&mut statuses, Duration::from_secs(5)).await;
    assert_eq!(stopping.state, StatusState::Stopping);
}

#[tokio::test]
async fn a_nats_outage_loses_no_sample_and_duplicates_none() {
    testkit::init_test_logs();
    let mut nats = NatsServer::start();
    let subjects = testkit::unique_subjects();
    let stream = subjects.stream_name(StreamKind::Metrics);
    let (stop, task) = start(config(&nats.url(), subjects.prefix()));

    let client = async_nats::ConnectOptions::new()
        .max_reconnects(None)
        .connect(nats.url())
        .await
        .expect("connect");
    let js = jetstream::new(client.clone());
    eventually(
        "five samples stored before the outage",
        Duration::from_secs(10),
        || async { stream_count(&js, &stream).await.filter(|n| *n >= 5) },
    )
    .await;

    nats.kill();
    let outage_started = Utc::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let outage_ended = Utc::now();
    nats.restart();

    // Give the collector time to reconnect and take a few more samples after the outage.
    eventually(
        "samples taken after the outage stored",
        Duration::from_secs(30),
        || async {
            let n = stream_count(&js, &stream).await?;
            (n >= 5 + 25 + 5).then_some(n)
        },
    )
    .await;
    stop.cancel();
    let report = task.await.expect("join").expect("collector ran");
    assert_eq!(report.undelivered, 0, "{report:?}");
    assert_eq!(report.dropped, 0, "{report:?}");

    let messages = read_stream(&js, &stream).await;
    let samples: Vec<MetricSample> = messages
        .iter()
        .map(|m| serde_json::from_slice(&m.payload).expect("decodes"))
        .collect();
    assert_eq!(
        samples.len() as u64,
        report.taken,
        "every sample taken is in the stream exactly once ({report:?})"
    );
    let unique: HashSet<_> = samples.iter().map(MetricSample::message_id).collect();
    assert_eq!(unique.len(), samples.len(), "no sample twice");
    for pair in samples.windows(2) {
        assert!(pair[0].timestamp < pair[1].timestamp, "stored in order");
    }
    let during = samples
        .iter()
        .filter(|s| s.timestamp > outage_started && s.timestamp < outage_ended)
        .count();
    assert!(
        during >= 20,
        "samples taken during the 5 s outage arrived: {during}"
    );
    let max_gap = samples
        .windows(2)
        .map(|p| (p[1].timestamp - p[0].timestamp).num_milliseconds())
        .max()
        .unwrap_or(0);
    assert!(
        max_gap < 3 * INTERVAL_MS as i64,
        "no hole in the series: largest gap {max_gap} ms"
    );
    drop(client);
}

#[tokio::test]
async fn a_sample_published_twice_is_stored_once() {
    let subjects = testkit::unique_subjects();
    let client = testkit::connect().await;
    let js = jetstream::new(client);
    flick_shared::streams::ensure_streams(
        &js,
        &subjects,
        &testkit::stream_settings(),
        &[StreamKind::Metrics],
    )
    .await
    .expect("streams");
    let sample = flick_collector::simulate::Simulation::new(1, 0, 1)
        .sample(0, flick_collector::now_millis());
    let message = flick_collector::outgoing(&subjects, &sample).expect("serialises");
    let mut acks = Vec::new();
    for _ in 0..2 {
        let publish = jetstream::message::PublishMessage::build()
            .payload(message.payload.clone())
            .message_id(&message.message_id);
        acks.push(
            js.send_publish(message.subject.clone(), publish)
                .await
                .expect("publish")
                .await
                .expect("ack"),
        );
    }
    assert!(!acks[0].duplicate && acks[1].duplicate, "{acks:?}");
    let stored = read_stream(&js, &subjects.stream_name(StreamKind::Metrics)).await;
    assert_eq!(stored.len(), 1);
    let mut stream = js
        .get_stream(subjects.stream_name(StreamKind::Metrics))
        .await
        .expect("stream");
    let info = stream.info().await.expect("info");
    assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
    assert_eq!(info.config.max_age, Duration::from_secs(24 * 3600));
    assert_eq!(
        info.config.max_bytes,
        testkit::stream_settings().metrics_max_bytes
    );
}

#[tokio::test]
async fn an_outage_longer_than_the_buffer_drops_the_oldest_and_counts_them() {
    let mut nats = NatsServer::start();
    let subjects = testkit::unique_subjects();
    let stream = subjects.stream_name(StreamKind::Metrics);
    let mut config = config(&nats.url(), subjects.prefix());
    config.collector.buffer_secs = 1; // five samples at 200 ms
    let (stop, task) = start(config);
    let client = async_nats::ConnectOptions::new()
        .max_reconnects(None)
        .connect(nats.url())
        .await
        .expect("connect");
    let js = jetstream::new(client.clone());
    eventually(
        "samples stored before the outage",
        Duration::from_secs(10),
        || async { stream_count(&js, &stream).await.filter(|n| *n >= 2) },
    )
    .await;
    nats.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    nats.restart();
    let before_stop = eventually(
        "the newest samples stored",
        Duration::from_secs(30),
        || async { stream_count(&js, &stream).await.filter(|n| *n >= 12) },
    )
    .await;
    stop.cancel();
    let report = task.await.expect("join").expect("collector ran");
    assert!(
        report.dropped >= 5,
        "about ten samples fell out of a five-sample buffer: {report:?}"
    );
    assert_eq!(report.undelivered, 0);
    let stored = read_stream(&js, &stream).await.len() as u64;
    assert!(stored >= before_stop);
    assert_eq!(stored + report.dropped, report.taken, "{report:?}");
}

#[tokio::test]
async fn runs_with_the_collector_identity_of_a_hub_and_leaves_the_streams_to_the_services() {
    use flick_shared::natsauth::Role;
    let subjects = testkit::unique_subjects();
    let hub = testkit::HubServer::start(&subjects);
    let persister = hub.connect_as(Role::Persister).await;
    flick_shared::streams::ensure_streams(
        &async_nats::jetstream::new(persister),
        &subjects,
        &testkit::stream_settings(),
        &[StreamKind::Metrics],
    )
    .await
    .expect("the persister creates the metrics stream");
    let integration = hub.connect_as(Role::Integration).await;
    let mut live = integration
        .subscribe(subjects.all_servers(StreamKind::Metrics))
        .await
        .expect("subscribe");
    integration.flush().await.expect("flush");

    let mut config = config(&hub.url(), subjects.prefix());
    config.nats = hub.settings(Role::Collector);
    let (stop, task) = start(config);
    let sample: MetricSample = next_json(&mut live, Duration::from_secs(10)).await;
    assert_eq!(sample.server_id.as_str(), "collector-test");
    stop.cancel();
    let report = task
        .await
        .expect("join")
        .expect("collector ran with least privilege");
    assert!(
        report.delivered >= 1 && report.undelivered == 0,
        "{report:?}"
    );
}
