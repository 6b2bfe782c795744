//! README's Python integrations (`examples/python/`), run with nats-py against a real hub: one
//! enrols through the API and publishes samples of its own under the server id the hub assigns,
//! the other reads the fleet with the read-only `integration` identity. Needs `pip install
//! nats-py nkeys` (`.ci/run` installs them).

mod common;

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use common::{Api, Stack};
use flick_shared::natsauth::Role;
use flick_shared::testkit::{self, HubServer, eventually};
use flick_shared::wire::ServerId;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/python")
        .join(name)
}

fn python() -> Command {
    let check = Command::new("python3")
        .args(["-c", "import nats, nkeys"])
        .output()
        .expect("python3 (CPython 3.8 or newer)");
    assert!(
        check.status.success(),
        "the Python integrations need nats-py and nkeys: pip install nats-py nkeys ({})",
        String::from_utf8_lossy(&check.stderr).trim()
    );
    Command::new("python3")
}

#[test]
fn readme_shows_the_examples_as_they_are() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md");
    for name in ["subscribe.py", "enrol_and_publish.py"] {
        let script = std::fs::read_to_string(example(name)).expect("the example");
        assert!(
            readme.contains(&script),
            "README.md shows examples/python/{name} exactly (copy the file into its code block)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_integration_enrols_and_publishes_and_a_read_only_one_subscribes() {
    let hub = HubServer::start(&testkit::unique_subjects());
    let stack = Stack::on_hub(&hub)
        .await
        .with_env("FLICK_PERSISTER__FLUSH_INTERVAL_MS", "200");
    let _backend = stack.start_backend().await;
    let api = Api::of(&stack);
    let _admin = api.register("admin@example.com").await;
    let alice = api.register("alice@example.com").await;
    let bob = api.register("bob@example.com").await;

    // The read-only integration, listening before anything is published.
    let mut reader = python()
        .arg(example("subscribe.py"))
        .env("FLICK_NATS_URL", hub.url())
        .env("FLICK_CREDS", hub.creds(Role::Integration))
        .env("FLICK_CA", hub.ca())
        .env("FLICK_PREFIX", hub.subjects.prefix())
        .env("FLICK_COUNT", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start subscribe.py");
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let stdout = reader.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });
    let subscribed = tokio::time::timeout(Duration::from_secs(20), lines.recv())
        .await
        .expect("subscribe.py connects within 20 s")
        .expect("a line");
    assert_eq!(subscribed, "subscribed");

    // Alice's token; the script enrols with it and publishes two samples.
    let (status, token) = api
        .call(
            Method::POST,
            "/enrollments",
            Some(&alice),
            Some(json!({ "name": "py-script" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let work = tempfile::tempdir().expect("a working directory");
    let writer = python()
        .arg(example("enrol_and_publish.py"))
        .current_dir(work.path())
        .env("FLICK_HUB", stack.gateway_url())
        .env("FLICK_TOKEN", token["token"].as_str().expect("token"))
        .env("FLICK_SAMPLES", "2")
        .output()
        .expect("run enrol_and_publish.py");
    let out = String::from_utf8_lossy(&writer.stdout).into_owned();
    assert!(
        writer.status.success(),
        "enrol_and_publish.py: {out}{}",
        String::from_utf8_lossy(&writer.stderr)
    );
    let server_id = out
        .lines()
        .find_map(|line| line.strip_prefix("published "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the script prints the server id it published under")
        .to_owned();
    assert!(ServerId::parse(&server_id).is_ok(), "{server_id}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(work.path().join("my-script.creds"))
            .expect("the creds it wrote")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the seed is readable by its owner only"
        );
    }

    // Stored under the assigned id, Alice's, with the figures the script sent; Bob sees nothing.
    let stored = eventually(
        "the script's samples stored",
        Duration::from_secs(20),
        || {
            let api = &api;
            let (alice, id) = (&alice, &server_id);
            async move {
                let server = api.get(&format!("/servers/{id}"), alice).await;
                (server["latest"]["cpuUsage"].as_f64() == Some(12.5)).then_some(server)
            }
        },
    )
    .await;
    assert_eq!(stored["name"], "py-script");
    assert_eq!(stored["origin"], "enrolled");
    let (status, _) = api
        .call(
            Method::GET,
            &format!("/servers/{server_id}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another user does not see it"
    );

    // The reader saw both samples; it exits after them.
    let mut samples = Vec::new();
    while samples.len() < 2 {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.recv())
            .await
            .expect("subscribe.py prints each sample")
            .expect("a line");
        if line.starts_with("sample ") {
            samples.push(line);
        }
    }
    assert!(
        samples
            .iter()
            .all(|line| line == &format!("sample {server_id} 12.5")),
        "{samples:?}"
    );
    let exit = tokio::task::spawn_blocking(move || reader.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(
        exit.success(),
        "subscribe.py exits 0 after FLICK_COUNT samples"
    );
}
