//! Containers through the whole stack, on a real Docker engine (Debian's dockerd, started by
//! the test kit on its own socket): the real collector given the engine's socket lists a
//! container the test starts, with its stats, on its samples; the persister stores the list
//! and the gateway serves it; `docker stop` fires `container_stopped` for that container
//! exactly once (one firing transition published and stored), naming it; `docker start`
//! resolves it. A container failing its health check and one crashing in a loop get their
//! warnings.

mod common;

use std::time::Duration;

use futures::StreamExt as _;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use common::{Api, Service, Stack};
use flick_shared::subjects::StreamKind;
use flick_shared::testkit::{self, DockerEngine, TEST_IMAGE, eventually};
use flick_shared::wire::{AlertEvent, AlertState, MetricSample, ServerId};

const SERVER: &str = "container-host";

fn find<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
}

#[tokio::test]
async fn a_started_container_is_listed_with_its_stats_and_stopping_it_fires_once_until_it_runs_again()
 {
    let docker = DockerEngine::shared();
    let stack = Stack::new()
        .await
        .with_env("FLICK_PERSISTER__FLUSH_INTERVAL_MS", "200");
    let _backend = stack.start_backend().await;
    let api = Api::of(&stack);
    let admin = api.register("root@example.com").await;

    let tag = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("web-{}", &tag[..8]);
    // Busy (a core's worth of `yes`), so its CPU figure is not zero.
    let web = docker.run(&name, &[], &["sh", "-c", "yes > /dev/null"]);
    // One whose health check fails, one that crashes in a loop under `--restart always`.
    let sick = docker.run(
        &format!("api-{}", &tag[..8]),
        &[
            "--health-cmd",
            "false",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
        ],
        &["sleep", "600"],
    );
    let looping = docker.run(
        &format!("loop-{}", &tag[..8]),
        &["--restart", "always"],
        &["sh", "-c", "sleep 0.3; exit 1"],
    );

    let client = testkit::connect().await;
    let server = ServerId::parse(SERVER).expect("id");
    let mut samples = client
        .subscribe(stack.subjects.metrics(&server))
        .await
        .expect("subscribe to the samples");
    let socket = docker.socket();
    let _collector = stack.spawn(
        &Service::Collector,
        &[
            ("FLICK_SERVER_ID", SERVER),
            ("FLICK_COLLECTOR__DOCKER_SOCKET", socket.as_str()),
            ("FLICK_COLLECTOR__CONTAINERS_INTERVAL_MS", "1000"),
        ],
    );

    // On the wire: a sample carries the list, with the container running.
    let listed = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(message) = samples.next().await {
            let sample: MetricSample = serde_json::from_slice(&message.payload).expect("a sample");
            if let Some(c) = sample
                .containers
                .as_ref()
                .and_then(|l| l.iter().find(|c| c.name == name))
            {
                return c.clone();
            }
        }
        panic!("the sample subscription ended");
    })
    .await
    .expect("a sample listing the container within 30 s");
    assert_eq!(listed.state, "running");
    assert_eq!(listed.image, TEST_IMAGE);
    assert_eq!(listed.id, web.id[..12]);

    // Through the API, from what the persister stored: its stats.
    let path = format!("/servers/{SERVER}/containers");
    let container = eventually(
        "the gateway lists the container with its CPU and memory",
        Duration::from_secs(30),
        || {
            let (api, path, admin, name) = (&api, path.clone(), admin.clone(), name.clone());
            async move {
                // 404 until the persister has recorded the server.
                let (status, list) = api.call(Method::GET, &path, Some(&admin), None).await;
                (status == StatusCode::OK).then_some(())?;
                find(&list, &name)
                    .filter(|c| {
                        c["cpuPercent"].as_f64().is_some_and(|p| p > 1.0)
                            && c["memoryBytes"].as_u64().is_some_and(|m| m > 0)
                    })
                    .cloned()
            }
        },
    )
    .await;
    assert_eq!(container["state"], "running", "{container}");
    assert_eq!(container["image"], TEST_IMAGE, "{container}");
    assert_eq!(container["restarts"], 0, "{container}");
    for field in [
        "netRxBytes",
        "netTxBytes",
        "blockReadBytes",
        "blockWriteBytes",
    ] {
        assert!(container[field].is_u64(), "{field}: {container}");
    }

    // The unhealthy one and the looping one: a warning each, naming them.
    for (metric, container, words) in [
        ("container_unhealthy", &sick.name, "is unhealthy on"),
        ("container_restarting", &looping.name, "is restarting"),
    ] {
        let alert = eventually(
            &format!("a firing {metric} alert for {container}"),
            Duration::from_secs(40),
            || {
                let (api, admin) = (&api, admin.clone());
                async move {
                    let page = api
                        .get(&format!("/alerts?serverId={SERVER}&state=firing"), &admin)
                        .await;
                    page["items"]
                        .as_array()?
                        .iter()
                        .find(|a| a["metric"] == metric && a["container"] == container.as_str())
                        .cloned()
                }
            },
        )
        .await;
        assert_eq!(alert["severity"], "warning", "{alert}");
        let message = alert["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!("container {container} {words}")),
            "{alert}"
        );
    }

    // Stopped: one critical alert naming it. (`sh` as PID 1 ignores SIGTERM, so the engine
    // kills it after a second: exit 137.)
    web.stop();
    let firing = eventually(
        "a firing container_stopped alert",
        Duration::from_secs(30),
        || {
            let (api, admin, name) = (&api, admin.clone(), name.clone());
            async move {
                let page = api
                    .get(&format!("/alerts?serverId={SERVER}&state=firing"), &admin)
                    .await;
                page["items"]
                    .as_array()?
                    .iter()
                    .find(|a| a["metric"] == "container_stopped" && a["container"] == name)
                    .cloned()
            }
        },
    )
    .await;
    assert_eq!(firing["severity"], "critical", "{firing}");
    let message = firing["message"].as_str().unwrap_or_default();
    assert_eq!(
        message,
        format!("container {name} stopped (exited 137) on {}", hostname()),
        "{firing}"
    );

    // Running again: the same alert resolves.
    web.start();
    let alert_id = firing["id"].as_str().expect("an id").to_owned();
    eventually("the alert resolved", Duration::from_secs(30), || {
        let (api, admin, alert_id) = (&api, admin.clone(), alert_id.clone());
        async move {
            let page = api.get(&format!("/alerts?serverId={SERVER}"), &admin).await;
            page["items"]
                .as_array()?
                .iter()
                .find(|a| a["id"] == alert_id.as_str() && a["state"] == "resolved")
                .map(|_| ())
        }
    })
    .await;

    // Exactly once: a few more lists later, the stream and the database hold one firing and
    // one resolution for this container, and nothing fires for it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let js = async_nats::jetstream::new(client);
    let events: Vec<AlertEvent> =
        testkit::read_stream(&js, &stack.subjects.stream_name(StreamKind::Alerts))
            .await
            .iter()
            .map(|m| serde_json::from_slice(&m.payload).expect("an AlertEvent"))
            .filter(|e: &AlertEvent| e.container.as_deref() == Some(name.as_str()))
            .collect();
    let states: Vec<(String, AlertState)> =
        events.iter().map(|e| (e.metric.clone(), e.state)).collect();
    assert_eq!(
        states,
        [
            ("container_stopped".to_owned(), AlertState::Firing),
            ("container_stopped".to_owned(), AlertState::Resolved),
        ],
        "{events:?}"
    );
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT metric, state FROM alert_events WHERE container = $1 ORDER BY at")
            .bind(&name)
            .fetch_all(&stack.db.pool)
            .await
            .expect("alert_events");
    assert_eq!(
        stored,
        [
            ("container_stopped".to_owned(), "firing".to_owned()),
            ("container_stopped".to_owned(), "resolved".to_owned()),
        ]
    );
    let armed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM alert_state WHERE container = $1 AND phase = 'firing'",
    )
    .bind(&name)
    .fetch_one(&stack.db.pool)
    .await
    .expect("alert_state");
    assert_eq!(armed, 0, "nothing fires for it any more");
}

/// The host name the collector reports (the kernel's), which alert messages name.
fn hostname() -> String {
    flick_shared::nats::sysname()
}
