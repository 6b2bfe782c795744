//! The NATS cluster drill: the stack as separate processes (the real binaries) on a three-node
//! JetStream cluster (`testkit::HubCluster`: operator mode with TLS, as `flick init` sets a
//! hub up, the nodes routed to each other with mutual TLS), the streams at 3 replicas and every
//! service given all three URLs. Under the 1,000-server load and one real collector, a node
//! that leads nothing of the metrics stream is SIGKILLed, restarted; then the node that leads
//! the metrics stream is SIGKILLed, and restarted too.
//!
//! Checked as the other drills check (`drills.rs`): the valid samples in the stream against the
//! rows and against what the producers saw acknowledged (nothing lost, nothing twice), `/readyz`
//! of every service, the real collector's series without a gap, the alerter's evaluated count;
//! and, for each kill, how long the stream took no message and how long after the kill every
//! sample taken before it was stored.
//!
//! It loads the machine for about two minutes, so it is ignored by the normal test run;
//! `.ci/run` runs it after the other drills and it prints its figures on stderr:
//!
//! ```sh
//! cargo test -p flick --test cluster_drills -- --ignored --nocapture --test-threads=1
//! ```

mod common;
// The kit serves drills.rs too: what only those drills use is re-exported unused here.
#[allow(unused_imports)]
mod drill_kit;

use std::time::{Duration, Instant};

use async_nats::jetstream;
use chrono::{DateTime, Utc};

use common::{Service, Stack};
use drill_kit::cluster::{READINESS_POLL, ReadinessWatch, StreamProgress, ready_figures};
use drill_kit::{
    BacklogWatch, Endpoints, Ledger, Logged, drill_stack, host_series, opt_secs, secs,
    stream_messages, time_until_published_since, wait_rows, wait_rows_at_least,
};
use flick_shared::subjects::StreamKind;
use flick_shared::testkit::{self, Hub, HubCluster, eventually};

/// A 1,000-server fleet at 1 Hz, as in the other drills.
const FLEET: Service = Service::Simulator {
    servers: 1_000,
    hot: 0,
};

/// How long the load runs with a node down before it is restarted.
const NODE_DOWN: Duration = Duration::from_secs(15);

/// The bound on "every service ready again": the figure printed is what counts, this is the
/// margin of a loaded two-core machine.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// What one kill did, as printed.
struct KillFigures {
    node: String,
    /// The metrics stream's leader after the kill.
    leader_after: String,
    stall: Duration,
    ready_again: Vec<(&'static str, Option<Duration>)>,
    collector_back: Option<Duration>,
    simulator_back: Option<Duration>,
    backlog: BacklogWatch,
    killed_at: DateTime<Utc>,
    /// From the restart until the node was back in the cluster and every replica of the stream
    /// current again.
    caught_up: Option<Duration>,
}

/// Kills node `node` of the cluster under load, waits [`NODE_DOWN`] and restarts it; measures
/// around the kill. `drill` holds what every kill needs.
async fn kill_and_restart(drill: &mut Drill<'_>, node: usize) -> KillFigures {
    let name = drill.hub.cluster.name(node).to_owned();
    tokio::task::block_in_place(|| drill.hub.cluster.kill(node));
    let killed = Instant::now();
    let killed_at = Utc::now();
    let backlog = BacklogWatch::start(&drill.stack.db.pool);
    let within = Duration::from_secs(60);
    let (collector_back, simulator_back) = tokio::join!(
        time_until_published_since(
            drill.js,
            &drill.stack.subjects,
            &drill.host_subject,
            killed_at,
            within
        ),
        time_until_published_since(
            drill.js,
            &drill.stack.subjects,
            &drill.sim_subject,
            killed_at,
            within
        ),
    );
    let leader_after = eventually(
        "a metrics stream leader among the nodes left",
        Duration::from_secs(60),
        || drill.hub.cluster.stream_leader(drill.js, &drill.stream),
    )
    .await;
    tokio::time::sleep(NODE_DOWN.saturating_sub(killed.elapsed())).await;
    let stall = drill.progress.longest_stall(killed, Instant::now());
    let ready_again = drill.readiness.ready_again_after(killed, Instant::now());

    let restarted = Instant::now();
    tokio::task::block_in_place(|| drill.hub.cluster.restart(node));
    let caught_up = drill
        .hub
        .cluster
        .wait_replicas_current(drill.js, &drill.stream, Duration::from_secs(120))
        .await
        .map(|_| restarted.elapsed());
    KillFigures {
        node: name,
        leader_after: drill.hub.cluster.name(leader_after).to_owned(),
        stall,
        ready_again,
        collector_back,
        simulator_back,
        backlog,
        killed_at,
        caught_up,
    }
}

/// What the kills share.
struct Drill<'a> {
    hub: &'a mut HubCluster,
    stack: &'a Stack,
    js: &'a jetstream::Context,
    stream: String,
    host_subject: String,
    sim_subject: String,
    progress: StreamProgress,
    readiness: ReadinessWatch,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault drill: .ci/run runs these with --ignored"]
async fn a_node_then_the_stream_leader_killed_under_load_lose_and_duplicate_nothing() {
    let subjects = testkit::unique_subjects();
    let mut hub = tokio::task::block_in_place(|| HubCluster::start(&subjects));
    let stack = drill_stack(Stack::on_hub(&hub).await).with_env("FLICK_STREAMS__REPLICAS", "3");
    let js = jetstream::new(hub.connect_observer().await);
    let pool = stack.db.pool.clone();
    let _backend = stack.start_backend().await;
    let endpoints = Endpoints::of(&stack);
    let host = "drill-host";
    let collector = Logged::spawn(&stack, &Service::Collector, &[("FLICK_SERVER_ID", host)]);
    let load = Logged::spawn(&stack, &FLEET, &[]);
    wait_rows_at_least(&pool, 5_000, Duration::from_secs(90)).await;

    let stream = stack.subjects.stream_name(StreamKind::Metrics);
    let (leader, _) = hub
        .cluster
        .wait_replicas_current(&js, &stream, Duration::from_secs(60))
        .await
        .expect("the metrics stream has 3 current replicas");
    let replicas = {
        let mut handle = js.get_stream(&stream).await.expect("the stream");
        handle.info().await.expect("its info").config.num_replicas
    };
    let mut drill = Drill {
        host_subject: format!("{}.metrics.{host}", stack.subjects.prefix()),
        sim_subject: stack
            .subjects
            .metrics(&flick_collector::simulate::server_id(999)),
        progress: StreamProgress::start(&js, stream.clone()),
        readiness: ReadinessWatch::start(&endpoints),
        stream: stream.clone(),
        hub: &mut hub,
        stack: &stack,
        js: &js,
    };
    // A quiet second of polls before the first kill, so the watches have a baseline.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // First a node that does not lead the metrics stream, then, with it back, the one that does.
    let follower = (0..drill.hub.cluster.len())
        .find(|&i| i != leader)
        .expect("a follower");
    let first = kill_and_restart(&mut drill, follower).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let leader = drill
        .hub
        .cluster
        .stream_leader(&js, &stream)
        .await
        .expect("the metrics stream's leader");
    let second = kill_and_restart(&mut drill, leader).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ready_at_end = drill.readiness.all_ready_now();

    let simulator = load.stop().await.published();
    let host_log = collector.stop().await;
    let host_delivered = host_log.collector_field("delivered");
    let host_dropped = host_log.collector_field("dropped");
    let published = stream_messages(&js, &stack.subjects).await;
    let stopped = Instant::now();
    let all_stored = wait_rows(&pool, published, Duration::from_secs(120)).await;
    let evaluated = endpoints
        .alerter_evaluated(published, Duration::from_secs(90))
        .await;
    let resumes = drill_kit::counter(
        &endpoints.alerter,
        "flick_alerter_consumer_resumes_total",
        "",
    )
    .await
    .unwrap_or(0);
    let ledger = Ledger::take(&js, &stack.subjects, &pool).await;
    let series = host_series(&pool, host).await;
    let largest_gap = drill_kit::largest_gap(&series);
    let around_kills = [&first, &second]
        .iter()
        .map(|kill| {
            let from = kill.killed_at.timestamp_millis();
            let to = from + NODE_DOWN.as_millis() as i64;
            series.iter().filter(|&&ms| ms > from && ms < to).count()
        })
        .collect::<Vec<_>>();

    let describe = |what: &str, kill: &KillFigures| {
        format!(
            "\x20 {what} {} SIGKILLed (leader of the metrics stream afterwards: {})\n\
             \x20   the stream took no message for   {}\n\
             \x20   publishing again after           collector {}, simulator {}\n\
             \x20   /readyz 200 again after          {} (polled every {} ms)\n\
             \x20   samples taken before the kill    all stored {} after it\n\
             \x20   restarted {} s later: back, every replica current, after {}",
            kill.node,
            kill.leader_after,
            secs(kill.stall),
            opt_secs(kill.collector_back),
            opt_secs(kill.simulator_back),
            ready_figures(&kill.ready_again),
            READINESS_POLL.as_millis(),
            opt_secs(
                kill.backlog
                    .stored_after(ledger.published_until(kill.backlog.cutoff()))
            ),
            NODE_DOWN.as_secs(),
            opt_secs(kill.caught_up),
        )
    };
    eprintln!(
        "\n[drill] NATS cluster (3 nodes, operator mode, streams with {replicas} replicas, every service given the 3 URLs) under a 1,000-server load and the real collector\n\
         {}\n{}\n\
         \x20 samples published           {} (stream) = {simulator} (simulator) + {host_delivered} (collector, {host_dropped} dropped)\n\
         \x20 rows                        {}, lost {}, duplicated {}\n\
         \x20 collector's series          {} rows, {:?} taken while a node was down, largest gap {largest_gap} ms\n\
         \x20 alerter                     {evaluated} samples evaluated ({published} in the stream), read again after a hole {resumes} times\n\
         \x20 every service ready at the end: {ready_at_end}; everything stored {} after the load stopped",
        describe("a node leading nothing of the metrics stream,", &first),
        describe("the metrics stream's leader,", &second),
        ledger.stream_valid,
        ledger.rows,
        ledger.lost,
        ledger.duplicated(),
        series.len(),
        around_kills,
        opt_secs(all_stored.map(|at| at.duration_since(stopped))),
    );
    assert_eq!(
        replicas, 3,
        "the services created the stream with 3 replicas"
    );
    assert_ne!(
        second.leader_after, second.node,
        "another node leads the metrics stream after its leader's node died"
    );
    for kill in [&first, &second] {
        for (service, again) in &kill.ready_again {
            assert!(
                again.is_none_or(|again| again <= READY_WITHIN),
                "{service} ready again within {READY_WITHIN:?} of {} dying: {again:?}",
                kill.node
            );
        }
        for (producer, back) in [
            ("collector", kill.collector_back),
            ("simulator", kill.simulator_back),
        ] {
            assert!(
                back.is_some(),
                "the {producer} published again after {} died",
                kill.node
            );
        }
        assert!(
            kill.caught_up.is_some(),
            "{} caught up after its restart",
            kill.node
        );
    }
    assert!(ready_at_end, "every service ready at the end");
    ledger.assert_exact(simulator + host_delivered);
    assert_eq!(host_dropped, 0, "the collector dropped samples");
    assert_eq!(
        series.len() as u64,
        host_delivered,
        "every sample of the real collector stored"
    );
    assert!(
        largest_gap < 2_500,
        "no hole in the real collector's series: largest gap {largest_gap} ms"
    );
    assert!(
        evaluated >= published,
        "the alerter evaluated every sample ({evaluated} of {published})"
    );
}
