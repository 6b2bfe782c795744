//! Fault drills: the stack as separate processes (the real binaries) under load while one part
//! of it fails, checked the way an operator would check it: rows in PostgreSQL against the
//! samples JetStream accepted, `/readyz`, the dead-letter subjects and the services' own
//! Prometheus counters.
//!
//! Each drill loads the machine for a minute or two, so they are ignored by the normal test run;
//! `.ci/run` runs them after it, one at a time, and each prints its figures on stderr:
//!
//! ```sh
//! cargo test -p flick --test drills -- --ignored --nocapture --test-threads=1
//! ```
//!
//! - the persister SIGKILLed under a 1,000-server load and restarted 2 s later;
//! - NATS (a private server, JetStream on disk) killed and restarted under load: every service
//!   reconnects by itself and the collectors' buffers arrive;
//! - PostgreSQL (a private cluster) stopped for 60 s (six `ack_wait`s) and started again under
//!   load: the held batches are kept alive, not redelivered;
//! - 100,000 malformed messages on the metrics subjects among valid traffic: each one
//!   dead-lettered by every service that reads it, the valid samples stored on time.
//!
//! "Nothing lost, nothing twice" is checked sample by sample: the valid samples in the stream
//! (which JetStream de-duplicated by `Nats-Msg-Id`) against the `(server_id, ts)` keys of the
//! rows, and against the count the producers saw acknowledged. The services run with their
//! default settings (storage interval 1 s, redelivery after 10 s without an acknowledgement or
//! an in-progress one);
//! only the metrics stream is given room for a whole drill, so that nothing leaves it by age
//! or size before the persister has read it.

mod common;
mod drill_kit;

use std::time::{Duration, Instant};

use async_nats::jetstream;
use chrono::Utc;

use common::{Service, Stack};
use drill_kit::{
    Arrivals, BacklogWatch, ConsumerLag, DeadLetterCount, Endpoints, Ledger, Logged,
    STORAGE_INTERVAL, counter, delete_streams, drill_stack, flood, host_series, is_ready, live,
    opt_secs, percentile, rows, secs, stream_messages, time_until_published_since, wait_rows,
    wait_rows_at_least,
};
use flick_shared::subjects::StreamKind;
use flick_shared::testkit::{self, HubServer, PostgresServer, eventually};

/// Room for a loaded machine on top of a time goal (the figure is printed either way).
const LOADED_MACHINE_MARGIN: Duration = Duration::from_secs(10);

/// How long PostgreSQL is away in its drill: six times the consumer's `ack_wait`.
const DATABASE_OUTAGE: Duration = Duration::from_secs(60);

/// A 1,000-server fleet at 1 Hz: the load of the first three drills.
const FLEET: Service = Service::Simulator {
    servers: 1_000,
    hot: 0,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault drill: .ci/run runs these with --ignored"]
async fn persister_killed_under_load_loses_and_duplicates_nothing() {
    let hub = HubServer::start(&testkit::unique_subjects());
    let stack = drill_stack(Stack::on_hub(&hub).await);
    let js = jetstream::new(hub.connect_observer().await);
    let pool = stack.db.pool.clone();
    let mut backend = stack.start_backend().await;
    let endpoints = Endpoints::of(&stack);
    let load = Logged::spawn(&stack, &FLEET, &[]);

    wait_rows_at_least(&pool, 10_000, Duration::from_secs(60)).await;
    let status = backend.persister.kill();
    assert!(!status.success(), "the persister was killed: {status}");
    let rows_at_kill = rows(&pool).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    backend.persister = stack.spawn(&Service::Persister, &[]);
    let restart = BacklogWatch::start(&pool);
    let ready = drill_kit::time_until_ready(
        &endpoints.persister,
        Instant::now(),
        Duration::from_secs(60),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(15)).await;

    let simulator = load.stop().await.published();
    let load_stopped = Instant::now();
    let published = stream_messages(&js, &stack.subjects).await;
    let all_stored = wait_rows(&pool, published, Duration::from_secs(150)).await;
    let ledger = Ledger::take(&js, &stack.subjects, &pool).await;
    let backlog = ledger.published_until(restart.cutoff());
    let rewritten = counter(&endpoints.persister, "flick_persister_duplicates_total", "")
        .await
        .unwrap_or(0);
    let redelivered = counter(
        &endpoints.persister,
        "flick_persister_redeliveries_total",
        "",
    )
    .await
    .unwrap_or(0);
    let caught_up = restart.stored_after(backlog);

    eprintln!(
        "\n[drill] persister SIGKILLed under a 1,000-server load, restarted 2 s later\n\
         \x20 rows when killed            {rows_at_kill}\n\
         \x20 samples published           {} (stream) / {simulator} (simulator)\n\
         \x20 rows                        {}\n\
         \x20 lost                        {}\n\
         \x20 duplicated                  {}\n\
         \x20 ready after the restart     {}\n\
         \x20 redelivered                 {redelivered}, of which already stored {rewritten} (written again as no-ops)\n\
         \x20 the {backlog} samples taken before the restart stored {} after it \
         (what the killed persister held unacknowledged is redelivered after ack_wait, 10 s)\n\
         \x20 everything stored           {} after the restart, {} after the load stopped",
        ledger.stream_valid,
        ledger.rows,
        ledger.lost,
        ledger.duplicated(),
        opt_secs(ready),
        opt_secs(caught_up),
        opt_secs(all_stored.map(|at| at.duration_since(restart.started()))),
        opt_secs(all_stored.map(|at| at.duration_since(load_stopped))),
    );
    ledger.assert_exact(simulator);
    // The goal is 15 s; the drill shares two cores with the whole stack and its load.
    let caught_up = caught_up.expect("the backlog stored");
    assert!(
        caught_up < Duration::from_secs(15) + LOADED_MACHINE_MARGIN,
        "what the killed persister held was stored {caught_up:?} after the restart"
    );
    assert!(
        rewritten <= redelivered,
        "{rewritten} rewritten, {redelivered} redelivered"
    );
    drop(backend);
    delete_streams(&js, &stack.subjects).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault drill: .ci/run runs these with --ignored"]
async fn nats_restarted_under_load_every_service_reconnects_and_nothing_is_lost() {
    let mut hub = HubServer::start(&testkit::unique_subjects());
    let stack = drill_stack(Stack::on_hub(&hub).await);
    let js = jetstream::new(hub.connect_observer().await);
    let pool = stack.db.pool.clone();
    let _backend = stack.start_backend().await;
    let endpoints = Endpoints::of(&stack);
    let host = "drill-host";
    let collector = Logged::spawn(&stack, &Service::Collector, &[("FLICK_SERVER_ID", host)]);
    let load = Logged::spawn(&stack, &FLEET, &[]);
    wait_rows_at_least(&pool, 5_000, Duration::from_secs(60)).await;

    hub.server.kill();
    let outage_from = Utc::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during_outage = endpoints.readiness().await;
    tokio::task::block_in_place(|| hub.server.restart());
    let restarted = Instant::now();
    let outage_to = Utc::now();

    let within = Duration::from_secs(60);
    let sim_subject = stack
        .subjects
        .metrics(&flick_collector::simulate::server_id(999));
    let host_subject = format!("{}.metrics.{host}", stack.subjects.prefix());
    let (services_back, collector_back, simulator_back) = tokio::join!(
        endpoints.time_until_ready(restarted, within),
        time_until_published_since(&js, &stack.subjects, &host_subject, outage_to, within),
        time_until_published_since(&js, &stack.subjects, &sim_subject, outage_to, within),
    );
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(restarted.elapsed())).await;

    let simulator = load.stop().await.published();
    let host_log = collector.stop().await;
    let host_delivered = host_log.collector_field("delivered");
    let host_dropped = host_log.collector_field("dropped");
    let published = stream_messages(&js, &stack.subjects).await;
    let all_stored = wait_rows(&pool, published, Duration::from_secs(120)).await;
    let evaluated = endpoints
        .alerter_evaluated(published, Duration::from_secs(60))
        .await;
    let ledger = Ledger::take(&js, &stack.subjects, &pool).await;
    let series = host_series(&pool, host).await;
    let largest_gap = drill_kit::largest_gap(&series);
    let in_outage = series
        .iter()
        .filter(|&&ms| ms > outage_from.timestamp_millis() && ms < outage_to.timestamp_millis())
        .count();

    eprintln!(
        "\n[drill] NATS (JetStream on disk) killed under load (1,000 simulated servers and the real collector), restarted\n\
         \x20 outage                      {}\n\
         \x20 /readyz during the outage   {during_outage:?}\n\
         \x20 /readyz 200 again after     {}\n\
         \x20 publishing again, buffer replayed: collector {}, simulator {}\n\
         \x20 samples published           {} (stream) = {simulator} (simulator) + {host_delivered} (collector, {host_dropped} dropped)\n\
         \x20 rows                        {}, lost {}, duplicated {}\n\
         \x20 collector's series          {} rows, {in_outage} taken during the outage, largest gap {largest_gap} ms\n\
         \x20 alerter                     {evaluated} samples evaluated\n\
         \x20 everything stored           {} after the restart",
        secs((outage_to - outage_from).to_std().unwrap_or_default()),
        figures(&services_back),
        opt_secs(collector_back),
        opt_secs(simulator_back),
        ledger.stream_valid,
        ledger.rows,
        ledger.lost,
        ledger.duplicated(),
        series.len(),
        opt_secs(all_stored.map(|at| at.duration_since(restarted))),
    );
    assert!(
        during_outage.iter().all(|(_, ready)| !ready),
        "every service reported the outage on /readyz: {during_outage:?}"
    );
    for (service, back) in services_back
        .iter()
        .copied()
        .chain([("collector", collector_back), ("simulator", simulator_back)])
    {
        assert!(back.is_some(), "the {service} did not come back by itself");
    }
    ledger.assert_exact(simulator + host_delivered);
    assert_eq!(host_dropped, 0, "the collector dropped samples");
    assert_eq!(
        series.len() as u64,
        host_delivered,
        "every sample of the real collector stored"
    );
    assert!(
        in_outage >= 3,
        "samples taken by the real collector during the outage arrived ({in_outage})"
    );
    assert!(
        largest_gap < 2_500,
        "no hole in the real collector's series: largest gap {largest_gap} ms"
    );
    assert_eq!(
        evaluated, published,
        "the alerter evaluated every sample once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault drill: .ci/run runs these with --ignored"]
async fn postgres_restarted_under_load_loses_nothing() {
    let mut postgres = tokio::task::block_in_place(PostgresServer::start);
    let database_url = postgres.url("flick_drill");
    let hub = HubServer::start(&testkit::unique_subjects());
    let stack = drill_stack(Stack::on_hub(&hub).await).with_env("DATABASE_URL", &database_url);
    let js = jetstream::new(hub.connect_observer().await);
    let backend = stack.start_backend().await;
    let endpoints = Endpoints::of(&stack);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy(&database_url)
        .expect("a pool for the private cluster");
    let load = Logged::spawn(&stack, &FLEET, &[]);
    wait_rows_at_least(&pool, 5_000, Duration::from_secs(60)).await;

    tokio::task::block_in_place(|| postgres.stop());
    let stopped = Instant::now();
    let noticed = eventually(
        "the persister reporting the database outage on /readyz",
        Duration::from_secs(10),
        || async { (!is_ready(&endpoints.persister).await).then(|| stopped.elapsed()) },
    )
    .await;
    tokio::time::sleep(DATABASE_OUTAGE.saturating_sub(stopped.elapsed())).await;
    tokio::task::block_in_place(|| postgres.start_again());
    let outage = stopped.elapsed();
    let restart = BacklogWatch::start(&pool);

    let services_back = endpoints
        .time_until_ready(restart.started(), Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(restart.started().elapsed())).await;
    let simulator = load.stop().await.published();
    let published = stream_messages(&js, &stack.subjects).await;
    let all_stored = wait_rows(&pool, published, Duration::from_secs(120)).await;
    let ledger = Ledger::take(&js, &stack.subjects, &pool).await;
    let backlog = ledger.published_until(restart.cutoff());
    let persister_counter = |name| counter(&endpoints.persister, name, "");
    let redelivered = persister_counter("flick_persister_redeliveries_total")
        .await
        .unwrap_or(0);
    let rewritten = persister_counter("flick_persister_duplicates_total")
        .await
        .unwrap_or(0);
    let kept_alive = persister_counter("flick_persister_progress_acks_total")
        .await
        .unwrap_or(0);

    eprintln!(
        "\n[drill] PostgreSQL (a private cluster) stopped with -m immediate under a 1,000-server load, started again\n\
         \x20 outage                      {} (persister's /readyz 503 after {})\n\
         \x20 /readyz 200 again after     {}\n\
         \x20 samples published           {} (stream) / {simulator} (simulator)\n\
         \x20 rows                        {}, lost {}, duplicated {}\n\
         \x20 held batches kept alive     {kept_alive} in-progress acks; {redelivered} redelivered, \
         {rewritten} written twice (no-ops)\n\
         \x20 the {backlog} samples taken before PostgreSQL returned stored {} after it\n\
         \x20 everything stored           {} after PostgreSQL returned",
        secs(outage),
        secs(noticed),
        figures(&services_back),
        ledger.stream_valid,
        ledger.rows,
        ledger.lost,
        ledger.duplicated(),
        opt_secs(restart.stored_after(backlog)),
        opt_secs(all_stored.map(|at| at.duration_since(restart.started()))),
    );
    for (service, back) in &services_back {
        assert!(back.is_some(), "the {service} did not come back by itself");
    }
    ledger.assert_exact(simulator);
    // Held batches are kept alive; only the pull buffer of each pipeline (1,000 messages at
    // most, three pipelines) may time out, however long the outage.
    assert!(
        kept_alive > 0,
        "nothing was kept alive through a {DATABASE_OUTAGE:?} outage"
    );
    assert!(
        redelivered <= 3 * 1_000,
        "{redelivered} redelivered during a {DATABASE_OUTAGE:?} outage"
    );
    // Pulling pauses while the writers are stuck: what was redelivered had not been taken in,
    // so nothing is written twice, bar one batch whose commit answer died with the server.
    assert!(
        rewritten <= 5_000,
        "{rewritten} written twice after a {DATABASE_OUTAGE:?} outage"
    );
    drop(backend);
    delete_streams(&js, &stack.subjects).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault drill: .ci/run runs these with --ignored"]
async fn malformed_flood_is_dead_lettered_and_valid_traffic_is_stored_on_time() {
    const FLOOD: u64 = 100_000;
    /// Fifty times the valid traffic of the 20 servers, and as much as the stack, built for
    /// debugging and sharing two cores with the test, takes in without falling behind.
    const FLOOD_RATE: u64 = 1_000;
    let hub = HubServer::start(&testkit::unique_subjects());
    let stack = drill_stack(Stack::on_hub(&hub).await);
    let observer = hub.connect_observer().await;
    let js = jetstream::new(observer.clone());
    let pool = stack.db.pool.clone();
    let mut backend = stack.start_backend().await;
    let endpoints = Endpoints::of(&stack);
    let mut load = Logged::spawn(
        &stack,
        &Service::Simulator {
            servers: 20,
            hot: 0,
        },
        &[],
    );

    // A live client watches one simulated server, so the gateway reads that server's subject.
    let watched = flick_collector::simulate::server_id(0);
    let live = live::watch(&stack, &pool, watched.as_str()).await;
    // Dead letters are counted from before the flood; valid rows are timed as they appear.
    let dead = DeadLetterCount::start(observer.clone(), &stack.subjects).await;
    let arrivals = Arrivals::start(pool.clone());
    let metrics_stream = stack.subjects.stream_name(StreamKind::Metrics);
    let persister_lag = ConsumerLag::start(&js, metrics_stream.clone(), "persister");
    let alerter_lag = ConsumerLag::start(&js, metrics_stream, "alerter");

    let prepared = Instant::now();
    let flood = flood::prepare(&stack.subjects, FLOOD, &watched);
    let prepared = prepared.elapsed();
    let flood_started = Utc::now();
    let flood = flood.publish(&js, FLOOD_RATE).await;
    let flood_published = Utc::now();
    let expected = [
        ("persister", FLOOD),
        ("alerter", FLOOD),
        ("gateway", flood.on_watched),
    ];
    // Until every malformed message is counted and forwarded by each service (or two minutes).
    let deadline = Instant::now() + Duration::from_secs(120);
    let counted = loop {
        let mut counted = Vec::new();
        for ((service, want), (_, base)) in expected.iter().zip(endpoints.all()) {
            let by_counter = counter(base, "flick_deadletter_total", service)
                .await
                .unwrap_or(0);
            counted.push((*service, *want, by_counter, dead.count(service)));
        }
        let done = counted
            .iter()
            .all(|(_, want, by_counter, on_subject)| by_counter >= want && on_subject >= want);
        if done || Instant::now() >= deadline {
            break counted;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let flood_processed = Utc::now();
    // Valid samples taken until now get one storage interval, and a margin, to be stored.
    tokio::time::sleep(STORAGE_INTERVAL + Duration::from_secs(3)).await;

    let running = [
        ("persister", backend.persister.is_running()),
        ("alerter", backend.alerter.is_running()),
        ("gateway", backend.gateway.is_running()),
        ("simulator", load.process.is_running()),
    ];
    let ready = endpoints.readiness().await;
    let simulator = load.stop().await.published();
    let all_stored = wait_rows(&pool, simulator, Duration::from_secs(60)).await;
    let delays: Vec<Duration> = arrivals
        .stop()
        .await
        .into_iter()
        .filter(|(ts, _)| *ts >= flood_started && *ts <= flood_processed)
        .map(|(_, delay)| delay)
        .collect();
    let frames = live.stop().await;
    let ledger = Ledger::take(&js, &stack.subjects, &pool).await;
    let seconds = |to: chrono::DateTime<Utc>| {
        (to - flood_started)
            .to_std()
            .unwrap_or_default()
            .as_secs_f64()
    };

    eprintln!(
        "\n[drill] {FLOOD} malformed messages on the metrics subjects among a 20-server load\n\
         \x20 flood                       {:.1} MB ({} of 100 KB to 1 MiB; built in {}) published in {:.1} s: {:.0} msg/s\n\
         \x20 kinds                       {:?}\n\
         \x20 all dead-lettered after     {:.1} s\n\
         \x20 consumers' peak backlog    persister {}, alerter {} messages\n\
         \x20 dead letters (service, expected, counter, on subject)  {counted:?}\n\
         \x20 reasons on the subjects     {:?}\n\
         \x20 processes running           {running:?}\n\
         \x20 /readyz after the flood     {ready:?}\n\
         \x20 live frames of the watched server  {frames}\n\
         \x20 valid samples               {simulator} published, {} rows, lost {}, duplicated {}\n\
         \x20 delay of the {} valid samples taken during the flood: median {}, max {} (storage interval {})\n\
         \x20 everything stored           {}",
        flood.bytes as f64 / 1e6,
        flood.huge,
        secs(prepared),
        seconds(flood_published),
        FLOOD as f64 / seconds(flood_published).max(1e-3),
        flood.kinds,
        seconds(flood_processed),
        persister_lag.peak(),
        alerter_lag.peak(),
        dead.reasons(),
        ledger.rows,
        ledger.lost,
        ledger.duplicated(),
        delays.len(),
        secs(percentile(&delays, 0.5)),
        secs(percentile(&delays, 1.0)),
        secs(STORAGE_INTERVAL),
        if all_stored.is_some() { "yes" } else { "no" },
    );
    for (service, want, by_counter, on_subject) in &counted {
        assert_eq!(
            (*by_counter, *on_subject),
            (*want, *want),
            "{service}: dead letters (counter, subject)"
        );
    }
    assert!(
        running.iter().all(|(_, running)| *running),
        "no process crashed: {running:?}"
    );
    assert!(
        ready.iter().all(|(_, ready)| *ready),
        "every service ready after the flood: {ready:?}"
    );
    assert!(frames > 0, "the watched server kept streaming live");
    ledger.assert_exact(simulator);
    assert!(
        !delays.is_empty(),
        "valid samples were taken during the flood"
    );
    let margin = Duration::from_secs(2);
    assert!(
        percentile(&delays, 1.0) <= STORAGE_INTERVAL + margin,
        "valid samples stored within the storage interval plus {margin:?}"
    );
    drop(backend);
    delete_streams(&js, &stack.subjects).await;
}

/// `persister 0.2 s, alerter 0.3 s, gateway never`.
fn figures(times: &[(&str, Option<Duration>)]) -> String {
    times
        .iter()
        .map(|(service, time)| format!("{service} {}", opt_secs(*time)))
        .collect::<Vec<_>>()
        .join(", ")
}
