//! Hosts join a hub with one command and each gets its own NATS identity: the real persister,
//! alerter, gateway and collectors (processes) on a nats-server in operator mode with TLS, as
//! `flick init` sets it up, and the real PostgreSQL.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{Api, Stack, binary};
use flick_shared::testkit::{self, HubServer, Process, eventually};
use flick_shared::wire::ServerId;

/// `flick-collector enroll …` into `state_dir`.
fn enroll(stack: &Stack, token: &str, state_dir: &Path, ca_sha256: Option<&str>) -> Output {
    let mut command = Command::new(binary("flick-collector"));
    command
        .args([
            "enroll",
            "--gateway",
            &stack.gateway_url(),
            "--token",
            token,
            "--state-dir",
        ])
        .arg(state_dir)
        .env("RUST_LOG", "warn");
    if let Some(fp) = ca_sha256 {
        command.args(["--ca-sha256", fp]);
    }
    command.output().expect("run flick-collector enroll")
}

/// The collector running as the host enrolled in `state_dir`.
fn run_collector(state_dir: &Path) -> Process {
    Process::spawn(
        Command::new(binary("flick-collector"))
            .arg("--state-dir")
            .arg(state_dir)
            .env(
                "RUST_LOG",
                std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env("FLICK_COLLECTOR__SHUTDOWN_FLUSH_MS", "500")
            .stdin(std::process::Stdio::null()),
    )
}

fn server_id_of(state_dir: &Path) -> String {
    let text = std::fs::read_to_string(state_dir.join("enrollment.json")).expect("enrollment.json");
    let value: Value = serde_json::from_str(&text).expect("json");
    value["serverId"].as_str().expect("serverId").to_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn new_token(api: &Api, user: &str, body: Value) -> Value {
    let (status, created) = api
        .call(Method::POST, "/enrollments", Some(user), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_enrol_with_a_token_report_as_their_own_servers_and_are_cut_off_when_deleted() {
    let hub = HubServer::start(&testkit::unique_subjects());
    let stack = Stack::on_hub(&hub)
        .await
        .with_env("FLICK_PERSISTER__FLUSH_INTERVAL_MS", "200");
    let _backend = stack.start_backend().await;
    let api = Api::of(&stack);
    let _admin = api.register("admin@example.com").await;
    let alice = api.register("alice@example.com").await;
    let bob = api.register("bob@example.com").await;
    let states = tempfile::tempdir().expect("state dirs");
    let dir_a = states.path().join("a");
    let dir_b = states.path().join("b");

    // Alice and Bob each create a token; the command carries the hub's CA fingerprint.
    let token_a = new_token(
        &api,
        &alice,
        json!({ "name": "alice-host", "tags": ["prod"] }),
    )
    .await;
    let token_b = new_token(&api, &bob, json!({})).await;
    assert!(
        token_a["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("flick_enrol_")),
        "{token_a}"
    );
    let fingerprint = token_a["caSha256"].as_str().expect("caSha256").to_owned();
    assert_eq!(
        Some(fingerprint.as_str()),
        flick_shared::natsauth::tls::fingerprint(&std::fs::read_to_string(hub.ca()).expect("ca"))
            .as_deref()
    );
    assert_eq!(
        token_a["natsUrls"],
        json!([hub.url()]),
        "where hosts will connect, for the dashboard to check"
    );
    let command = token_a["command"].as_str().expect("command");
    assert!(
        command.starts_with("curl -fsSL ")
            && command.contains("/install.sh -o flick-install.sh && echo '")
            && command
                .contains("  flick-install.sh' | sha256sum -c - && sudo sh flick-install.sh ")
            && command.contains(token_a["token"].as_str().expect("token"))
            && command.contains(&fingerprint),
        "{command}"
    );

    // A host whose CA check fails does not enrol.
    let wrong = enroll(
        &stack,
        token_a["token"].as_str().expect("t"),
        &dir_a,
        Some("sha256:00"),
    );
    assert!(
        !wrong.status.success() && stderr(&wrong).contains("CA"),
        "{}",
        stderr(&wrong)
    );
    let token_a = new_token(
        &api,
        &alice,
        json!({ "name": "alice-host", "tags": ["prod"] }),
    )
    .await;

    for (token, dir) in [(&token_a, &dir_a), (&token_b, &dir_b)] {
        let output = enroll(
            &stack,
            token["token"].as_str().expect("token"),
            dir,
            Some(&fingerprint),
        );
        assert!(output.status.success(), "enroll: {}", stderr(&output));
    }
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir_a), 0o700);
        assert_eq!(mode(&dir_a.join("host.creds")), 0o600);
        assert_eq!(mode(&dir_a.join("host.nk")), 0o600);
    }
    let creds = std::fs::read_to_string(dir_a.join("host.creds")).expect("creds");
    assert!(creds.contains("BEGIN NATS USER JWT") && creds.contains("BEGIN USER NKEY SEED"));
    let id_a = server_id_of(&dir_a);
    let id_b = server_id_of(&dir_b);
    assert_ne!(id_a, id_b);

    // Each collector's samples arrive under its own id, owned by its token's creator.
    let observer = hub.connect_observer().await;
    let mut samples_a = observer
        .subscribe(
            stack
                .subjects
                .metrics(&ServerId::parse(id_a.as_str()).expect("id")),
        )
        .await
        .expect("subscribe");
    let mut collector_a = run_collector(&dir_a);
    let _collector_b = run_collector(&dir_b);
    for (user, mine, theirs) in [(&alice, &id_a, &id_b), (&bob, &id_b, &id_a)] {
        let server = eventually(
            "the enrolled server online",
            Duration::from_secs(60),
            || {
                let api = &api;
                async move {
                    let servers = api.get("/servers", user).await;
                    let list = servers.as_array()?;
                    assert!(
                        list.iter().all(|s| s["id"] != theirs.as_str()),
                        "another's host: {servers}"
                    );
                    list.iter()
                        .find(|s| s["id"] == mine.as_str() && s["status"] == "online")
                        .cloned()
                }
            },
        )
        .await;
        assert_eq!(server["origin"], "enrolled", "{server}");
        let (status, _) = api
            .call(Method::GET, &format!("/servers/{theirs}"), Some(user), None)
            .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "the other user's host is invisible"
        );
    }
    let a = api.get(&format!("/servers/{id_a}"), &alice).await;
    assert_eq!(
        (a["name"].as_str(), a["tags"][0].as_str()),
        (Some("alice-host"), Some("prod"))
    );

    // A's identity can publish nothing but its own samples.
    let a_client = hub
        .connect_with(&dir_a.join("host.creds"), &format!("_INBOX.host.{id_a}"))
        .await
        .expect("A's creds connect");
    let (tx, mut violations) = tokio::sync::mpsc::unbounded_channel();
    let violating = async_nats::ConnectOptions::with_credentials_file(dir_a.join("host.creds"))
        .await
        .expect("creds")
        .add_root_certificates(hub.ca())
        .require_tls(true)
        .custom_inbox_prefix(format!("_INBOX.host.{id_a}"))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(err) = event {
                    let _ = tx.send(err.to_string());
                }
            }
        })
        .connect(hub.url())
        .await
        .expect("connect");
    violating
        .publish(
            stack
                .subjects
                .metrics(&ServerId::parse(id_b.as_str()).expect("id")),
            "{}".into(),
        )
        .await
        .expect("send");
    violating.flush().await.expect("flush");
    let violation = tokio::time::timeout(Duration::from_secs(3), violations.recv())
        .await
        .expect("a violation")
        .expect("message");
    assert!(
        violation.to_lowercase().contains("permissions violation"),
        "{violation}"
    );
    drop(a_client);

    // Bad tokens: used, expired, unknown; each refused with words that say so.
    let used = enroll(
        &stack,
        token_a["token"].as_str().expect("t"),
        &states.path().join("c"),
        None,
    );
    assert!(
        !used.status.success() && stderr(&used).contains("has been used"),
        "{}",
        stderr(&used)
    );
    let expiring = new_token(&api, &alice, json!({ "expiresInSecs": 60 })).await;
    sqlx::query(
        "UPDATE enrollment_tokens SET expires_at = now() - interval '1 second' WHERE id = $1",
    )
    .bind(uuid::Uuid::parse_str(expiring["id"].as_str().expect("id")).expect("uuid"))
    .execute(&stack.db.pool)
    .await
    .expect("expire");
    let expired = enroll(
        &stack,
        expiring["token"].as_str().expect("t"),
        &states.path().join("d"),
        None,
    );
    assert!(
        !expired.status.success() && stderr(&expired).contains("expired"),
        "{}",
        stderr(&expired)
    );
    let unknown = enroll(&stack, "no-such-token", &states.path().join("e"), None);
    assert!(
        !unknown.status.success() && stderr(&unknown).contains("unknown"),
        "{}",
        stderr(&unknown)
    );

    // Enrolling the same host again keeps its server id.
    let again = new_token(&api, &alice, json!({})).await;
    let output = enroll(
        &stack,
        again["token"].as_str().expect("t"),
        &dir_a,
        Some(&fingerprint),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(server_id_of(&dir_a), id_a, "the same host keeps its server");

    // Alice deletes A: its collector is cut off within seconds and cannot come back; B stays.
    samples_a.next().await.expect("A reports");
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/servers/{id_a}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let deleted = Instant::now();
    let cut_off = loop {
        assert!(
            deleted.elapsed() < Duration::from_secs(60),
            "A still publishing a minute after its deletion"
        );
        match tokio::time::timeout(Duration::from_secs(3), samples_a.next()).await {
            Err(_) => break deleted.elapsed(),
            Ok(_) => continue,
        }
    };
    assert!(
        hub.connect_with(&dir_a.join("host.creds"), &format!("_INBOX.host.{id_a}"))
            .await
            .is_err(),
        "A's identity is refused"
    );
    let b_online = api.get(&format!("/servers/{id_b}"), &bob).await;
    assert_eq!(b_online["status"], "online", "B unaffected: {b_online}");
    eprintln!(
        "host A cut off within {:.1?} of its deletion (3 s of silence observed)",
        cut_off.saturating_sub(Duration::from_secs(3))
    );

    // A new token enrols A again (a new server: the old one is deleted), and it reports.
    collector_a.kill();
    let fresh = new_token(&api, &alice, json!({})).await;
    let output = enroll(
        &stack,
        fresh["token"].as_str().expect("t"),
        &dir_a,
        Some(&fingerprint),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let id_a2 = server_id_of(&dir_a);
    assert_ne!(id_a2, id_a);
    let _collector_a = run_collector(&dir_a);
    eventually("A reporting again", Duration::from_secs(60), || {
        let api = &api;
        let alice = alice.clone();
        let id = id_a2.clone();
        async move {
            let server = api.get(&format!("/servers/{id}"), &alice).await;
            (server["status"] == "online").then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_sh_lays_out_the_binary_the_unit_and_the_state_into_a_root_and_the_unit_verifies() {
    let hub = HubServer::start(&testkit::unique_subjects());
    let stack = Stack::on_hub(&hub).await;
    let _backend = stack.start_backend().await;
    let api = Api::of(&stack);
    let alice = api.register("alice@example.com").await;
    let token = new_token(&api, &alice, json!({ "name": "installed" })).await;
    let root = tempfile::tempdir().expect("a root");

    // The dashboard's command, with the documented flags for a root that is not this system,
    // run where a user would run it (it downloads flick-install.sh into the current directory).
    let shown = token["command"].as_str().expect("command").to_owned();
    let for_root = |command: &str| {
        command.replace(
            "sudo sh flick-install.sh",
            &format!(
                "sh flick-install.sh --root {} --no-systemctl",
                root.path().display()
            ),
        )
    };
    let work = tempfile::tempdir().expect("a working directory");
    let run = |command: String| {
        let cwd = work.path().to_owned();
        tokio::task::spawn_blocking(move || {
            Command::new("sh")
                .args(["-c", &command])
                .current_dir(cwd)
                .output()
                .expect("run the installer")
        })
    };

    // A script that is not the one the dashboard vouched for does not run.
    let tampered = {
        let command = for_root(&shown);
        let at = command.find("echo '").expect("the checksum") + "echo '".len();
        format!(
            "{}{}{}",
            &command[..at],
            "0".repeat(64),
            &command[at + 64..]
        )
    };
    let refused = run(tampered).await.expect("join");
    assert!(
        !refused.status.success() && !root.path().join("usr").exists(),
        "a script whose checksum differs must not run: {}",
        stderr(&refused)
    );

    let output = run(for_root(&shown)).await.expect("join");
    assert!(
        output.status.success(),
        "install.sh: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
    let binary = root.path().join("usr/local/bin/flick-collector");
    let unit = root
        .path()
        .join("etc/systemd/system/flick-collector.service");
    let state = root.path().join("var/lib/flick-collector");
    #[cfg(unix)]
    {
        assert_eq!(mode(&binary), 0o755, "the binary");
        assert_eq!(mode(&unit), 0o644, "the unit");
        assert_eq!(mode(&state), 0o700, "the state directory");
        assert_eq!(
            mode(&state.join("host.creds")),
            0o600,
            "the host's credentials"
        );
    }
    let installed = std::fs::read(&binary).expect("binary");
    assert_eq!(
        installed,
        std::fs::read(binary_path()).expect("built binary"),
        "the hub's collector build"
    );
    let unit_text = std::fs::read_to_string(&unit).expect("unit");
    for hardening in [
        "User=flick-collector",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        "NoNewPrivileges=yes",
        "ExecStart=/usr/local/bin/flick-collector --state-dir /var/lib/flick-collector",
    ] {
        assert!(unit_text.contains(hardening), "{hardening} in the unit");
    }
    assert!(!server_id_of(&state).is_empty(), "enrolled");

    // systemd's own check, against the root with this system's unit library in it.
    let library = root.path().join("usr/lib/systemd");
    std::fs::create_dir_all(&library).expect("mkdir");
    let copied = Command::new("cp")
        .args(["-r", "/usr/lib/systemd/system"])
        .arg(&library)
        .status()
        .expect("cp");
    assert!(copied.success());
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .arg("flick-collector.service")
        .output()
        .expect("systemd-analyze (Debian's systemd package)");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        stderr(&verify)
    );

    // The installed collector reports under its enrolled id.
    let id = server_id_of(&state);
    let _collector = run_collector_binary(&binary, &state);
    eventually("the installed host online", Duration::from_secs(60), || {
        let api = &api;
        let alice = alice.clone();
        let id = id.clone();
        async move {
            let server = api.get(&format!("/servers/{id}"), &alice).await;
            (server["status"] == "online").then_some(())
        }
    })
    .await;
}

fn binary_path() -> std::path::PathBuf {
    binary("flick-collector")
}

fn run_collector_binary(binary: &Path, state_dir: &Path) -> Process {
    Process::spawn(
        Command::new(binary)
            .arg("--state-dir")
            .arg(state_dir)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null()),
    )
}

/// A token is random base64url, so one may begin with `-`: the command line takes it as the
/// token's value, not as an option (this once failed one run in 64).
#[test]
fn a_token_beginning_with_a_dash_is_a_value_not_an_option() {
    let state = tempfile::tempdir().expect("state");
    let output = Command::new(binary("flick-collector"))
        .args([
            "enroll",
            "--gateway",
            "http://127.0.0.1:9",
            "--token",
            "-uK4x",
        ])
        .arg("--state-dir")
        .arg(state.path())
        .output()
        .expect("run flick-collector enroll");
    let text = stderr(&output);
    assert!(
        !output.status.success()
            && text.contains("cannot reach the hub")
            && !text.contains("unexpected argument"),
        "{text}"
    );
}
