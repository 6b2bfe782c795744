//! The collector's container reader against a real Docker engine (Debian's dockerd, started by
//! the test kit): a container the test starts is listed with its image, state and usage; a
//! stopped one with its exit code; a health check's verdict and the restart count come through.

use std::time::Duration;

use flick_collector::containers::Engine;
use flick_shared::testkit::{DockerEngine, TEST_IMAGE};
use flick_shared::wire::ContainerUsage;

fn find<'a>(list: &'a [ContainerUsage], name: &str) -> Option<&'a ContainerUsage> {
    list.iter().find(|c| c.name == name)
}

#[tokio::test]
async fn running_and_stopped_containers_are_listed_with_their_figures() {
    let docker = DockerEngine::shared();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let busy_name = format!("flick-busy-{}", &tag[..8]);
    let done_name = format!("flick-done-{}", &tag[..8]);
    // A container that burns CPU and writes to its disk, one that exits with 3, one that
    // fails its health check.
    let busy = docker.run(
        &busy_name,
        &[
            "--health-cmd",
            "false",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
        ],
        &[
            "sh",
            "-c",
            "yes > /dev/null & while true; do echo x >> /tmp/f; sleep 1; done",
        ],
    );
    let done = docker.run(&done_name, &[], &["sh", "-c", "exit 3"]);

    let mut engine = Engine::new(docker.socket());
    let first = engine.refresh().await.expect("the engine answers");
    assert!(find(&first, &busy.name).is_some(), "{first:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let list = engine.refresh().await.expect("the engine answers");

    let c = find(&list, &busy.name).expect("the busy container is listed");
    assert_eq!(c.image, TEST_IMAGE);
    assert_eq!(c.state, "running");
    assert_eq!(c.id, busy.id[..12]);
    assert!(c.cpu_percent > 1.0, "it burns a core: {c:?}");
    assert!(c.memory_bytes > 0, "{c:?}");
    assert!(
        c.memory_limit_bytes.is_some_and(|l| l > c.memory_bytes),
        "{c:?}"
    );
    assert_eq!(c.health.as_deref(), Some("unhealthy"), "{c:?}");
    assert_eq!(c.exit_code, None);

    let d = find(&list, &done.name).expect("the exited container is listed");
    assert_eq!(d.state, "exited");
    assert_eq!(d.exit_code, Some(3));
    assert_eq!((d.cpu_percent, d.memory_bytes), (0.0, 0));
    assert!(d.health.is_none());

    // The wire takes the list as it is.
    let mut sample = flick_shared::wire::MetricSample::minimal(
        flick_shared::wire::ServerId::parse("h").expect("id"),
        chrono::Utc::now(),
        1.0,
        1.0,
        1.0,
        0,
    );
    sample.containers = Some(list);
    let bytes = serde_json::to_vec(&sample).expect("json");
    flick_shared::wire::decode::<flick_shared::wire::MetricSample>(&bytes, chrono::Utc::now())
        .expect("a valid sample");
}

#[tokio::test]
async fn restarts_are_counted() {
    let docker = DockerEngine::shared();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let looping = docker.run(
        &format!("flick-loop-{}", &tag[..8]),
        &["--restart", "always"],
        &["sh", "-c", "sleep 0.2; exit 1"],
    );
    let mut engine = Engine::new(docker.socket());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let list = engine.refresh().await.expect("the engine answers");
        let c = find(&list, &looping.name).expect("listed");
        if c.restarts >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no restarts counted: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn a_renamed_container_is_listed_under_its_new_name_at_the_next_refresh() {
    // A rename changes neither the state nor the status the engine lists, so a reader that
    // keeps its inspections must still take the name from the list.
    let docker = DockerEngine::shared();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (old, new) = (
        format!("flick-old-{}", &tag[..8]),
        format!("flick-new-{}", &tag[..8]),
    );
    let container = docker.run(&old, &[], &["sleep", "600"]);
    let mut engine = Engine::new(docker.socket());
    let before = engine.refresh().await.expect("the engine answers");
    assert!(find(&before, &old).is_some(), "{before:?}");
    docker.docker(&["rename", &old, &new]);
    let after = engine.refresh().await.expect("the engine answers");
    let renamed = find(&after, &new).expect("listed under its new name");
    assert_eq!(renamed.id, container.id[..12]);
    assert!(find(&after, &old).is_none(), "{after:?}");
}
