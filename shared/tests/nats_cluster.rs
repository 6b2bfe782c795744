//! The test kit's three-node JetStream cluster, and FLick's NATS connection given all three
//! URLs: a stream with 3 replicas keeps taking and serving messages when its leader's node is
//! SIGKILLed, the node comes back with its store, and in operator mode (the hub `flick init`
//! generates, every node with the same accounts and mutual TLS on the routes) each service
//! identity connects through whichever node is up.

use std::time::Duration;

use async_nats::jetstream;

use flick_shared::config::{NatsSettings, StreamSettings};
use flick_shared::natsauth::Role;
use flick_shared::streams::ensure_streams;
use flick_shared::subjects::StreamKind;
use flick_shared::testkit::{self, Hub, HubCluster, NatsCluster};

/// Test streams with 3 replicas.
fn replicated() -> StreamSettings {
    StreamSettings {
        replicas: 3,
        ..testkit::stream_settings()
    }
}

/// Publishes `count` messages on `subject`, retrying each until JetStream acknowledges it (a
/// stream without a leader for a moment answers with an error or not at all).
async fn publish_acked(js: &jetstream::Context, subject: &str, from: u64, count: u64) {
    for n in from..from + count {
        testkit::eventually(
            &format!("message {n} acknowledged"),
            Duration::from_secs(30),
            || async {
                let ack = js
                    .publish(subject.to_owned(), n.to_string().into())
                    .await
                    .ok()?;
                ack.await.ok()
            },
        )
        .await;
    }
}

async fn messages(js: &jetstream::Context, stream: &str) -> u64 {
    let mut stream = js.get_stream(stream).await.expect("the stream");
    stream.info().await.expect("its info").state.messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_stream_survives_its_leaders_node() {
    let mut cluster = tokio::task::block_in_place(NatsCluster::start);
    let urls = cluster.urls();
    assert_eq!(urls.split(',').count(), 3, "{urls}");
    let subjects = testkit::unique_subjects();
    let settings = NatsSettings {
        url: urls,
        prefix: subjects.prefix().to_owned(),
        ..NatsSettings::default()
    };
    let client = flick_shared::nats::connect(&settings, "test")
        .await
        .expect("connect to the cluster");
    let js = jetstream::new(client);
    ensure_streams(&js, &subjects, &replicated(), &[StreamKind::Metrics])
        .await
        .expect("a stream with 3 replicas");
    let stream = subjects.stream_name(StreamKind::Metrics);
    let subject = subjects.metrics(&flick_shared::wire::ServerId::parse("a").expect("id"));
    publish_acked(&js, &subject, 0, 100).await;

    let (leader, _) = cluster
        .wait_replicas_current(&js, &stream, Duration::from_secs(30))
        .await
        .expect("every replica current");
    tokio::task::block_in_place(|| cluster.kill(leader));
    publish_acked(&js, &subject, 100, 100).await;
    let new_leader = cluster
        .stream_leader(&js, &stream)
        .await
        .expect("a new leader");
    assert_ne!(new_leader, leader, "the dead node no longer leads");
    assert_eq!(messages(&js, &stream).await, 200);

    tokio::task::block_in_place(|| cluster.restart(leader));
    cluster
        .wait_replicas_current(&js, &stream, Duration::from_secs(30))
        .await
        .expect("the restarted node catches up");
    // Every node holds every message: read it from the restarted node alone.
    let alone = async_nats::connect(cluster.url(leader))
        .await
        .expect("connect to the restarted node");
    let js_alone = jetstream::new(alone);
    assert_eq!(messages(&js_alone, &stream).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_operator_mode_every_service_connects_through_any_node() {
    let subjects = testkit::unique_subjects();
    let mut hub = tokio::task::block_in_place(|| HubCluster::start(&subjects));
    let persister = flick_shared::nats::connect(&hub.settings(Role::Persister), "persister")
        .await
        .expect("the persister connects to the cluster");
    let js = jetstream::new(persister);
    ensure_streams(&js, &subjects, &replicated(), &StreamKind::ALL)
        .await
        .expect("the persister creates the streams with 3 replicas");
    let stream = subjects.stream_name(StreamKind::Metrics);
    let (leader, _) = hub
        .cluster
        .wait_replicas_current(&js, &stream, Duration::from_secs(30))
        .await
        .expect("three replicas");

    // With one node down, each identity still gets in (through one of the other two) over TLS.
    tokio::task::block_in_place(|| hub.cluster.kill(leader));
    for role in [
        Role::Collector,
        Role::Persister,
        Role::Alerter,
        Role::Gateway,
    ] {
        let client = flick_shared::nats::connect(&hub.settings(role), role.name())
            .await
            .unwrap_or_else(|err| panic!("{} connects with a node down: {err}", role.name()));
        client.flush().await.expect("flush");
    }
    let observer = hub.connect_observer().await;
    let js = jetstream::new(observer);
    let subject = subjects.metrics(&flick_shared::wire::ServerId::parse("b").expect("id"));
    publish_acked(&js, &subject, 0, 10).await;
    assert_eq!(messages(&js, &stream).await, 10);
    let new_leader = testkit::eventually(
        "a leader among the two nodes left",
        Duration::from_secs(30),
        || hub.cluster.stream_leader(&js, &stream),
    )
    .await;
    assert_ne!(new_leader, leader);
}
