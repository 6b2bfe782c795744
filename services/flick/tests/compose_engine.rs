//! compose.yaml on a real Docker engine, as a user runs it: `docker compose up -d`, then what a
//! user checks. Ignored by `cargo test` (it builds every image: about 20 minutes on 2 cores);
//! `.ci/compose-check/run` runs it, after making stand-ins for the base images where no registry
//! can be reached, and says so.
//!
//! It uses the project name `flickcheck` and removes its containers and volumes before and
//! after; the ports are compose's defaults (8080, 8443, 14222), which must be free.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _};

use common::Api;
use flick_shared::testkit::{self, Process, eventually};

const PROJECT: &str = "flickcheck";
const FRONT: &str = "http://127.0.0.1:8080";
const PASSWORD: &str = "correct horse battery staple";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `docker compose -p flickcheck …` (or `$COMPOSE`, e.g. `docker-compose`), without a `.env`.
fn compose(args: &[&str]) -> Output {
    let program = std::env::var("COMPOSE").unwrap_or_else(|_| "docker compose".into());
    let mut words = program.split_whitespace();
    let mut command = Command::new(words.next().expect("a compose command"));
    command.args(words);
    let no_env = repository().join("target/compose-check.env");
    std::fs::write(&no_env, "").expect("an empty env file");
    command
        .args(["--env-file"])
        .arg(&no_env)
        .args(["-p", PROJECT, "-f", "compose.yaml"])
        .args(args)
        .current_dir(repository());
    command.output().expect("run compose")
}

fn ok(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn docker(args: &[&str]) -> String {
    ok(
        Command::new("docker").args(args).output().expect("docker"),
        &format!("docker {args:?}"),
    )
}

/// The container ids of a service.
fn containers(service: &str) -> Vec<String> {
    ok(compose(&["ps", "-q", service]), "compose ps")
        .lines()
        .map(str::to_owned)
        .filter(|id| !id.is_empty())
        .collect()
}

fn health(id: &str) -> String {
    docker(&[
        "inspect",
        "-f",
        "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
        id,
    ])
    .trim()
    .to_owned()
}

/// The services that keep running (`init` runs once and exits).
const RUNNING: &[&str] = &[
    "nats",
    "timescaledb",
    "persister",
    "alerter",
    "gateway",
    "proxy",
    "collector",
];

/// Every container of every running service healthy.
async fn all_healthy(within: Duration) -> Duration {
    let started = Instant::now();
    eventually("every container healthy", within, || async {
        RUNNING
            .iter()
            .all(|service| {
                let ids = containers(service);
                !ids.is_empty() && ids.iter().all(|id| health(id) == "healthy")
            })
            .then_some(())
    })
    .await;
    started.elapsed()
}

fn ip_of(id: &str) -> String {
    docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
        id,
    ])
    .split_whitespace()
    .next()
    .expect("an address on the stack's network")
    .to_owned()
}

/// The sum of a Prometheus counter's samples whose line contains `filter`.
fn metric(text: &str, name: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(name) && line.contains(filter))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn replica_metrics(http: &reqwest::Client) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for id in containers("gateway") {
        let url = format!("http://{}:9103/metrics", ip_of(&id));
        let text = http
            .get(&url)
            .send()
            .await
            .expect("a replica's /metrics")
            .text()
            .await
            .expect("text");
        out.push((id[..12].to_owned(), text));
    }
    out
}

fn psql(sql: &str) -> String {
    ok(
        compose(&[
            "exec",
            "-T",
            "timescaledb",
            "psql",
            "-U",
            "flick",
            "-d",
            "flick",
            "-Atc",
            sql,
        ]),
        "psql",
    )
    .trim()
    .to_owned()
}

/// The largest gap (seconds) between consecutive stored samples of `server` in the last
/// `window` seconds, and how many there are.
fn stored_gap(server: &str, window: u64) -> (f64, i64) {
    let row = psql(&format!(
        "SELECT coalesce(max(gap), 0), count(*) FROM (SELECT extract(epoch FROM ts - lag(ts) OVER (ORDER BY ts)) AS gap \
         FROM metrics WHERE server_id = '{server}' AND ts > now() - interval '{window} seconds') g"
    ));
    let (gap, count) = row.split_once('|').expect("gap|count");
    (
        gap.parse().expect("a number"),
        count.parse().expect("a count"),
    )
}

async fn login(api: &Api, email: &str) -> String {
    let (status, session) = api
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "email": email, "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "login: {session}");
    session["accessToken"].as_str().expect("token").to_owned()
}

async fn websocket(
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut request = format!("{}/api/v1/ws", FRONT.replace("http", "ws"))
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .expect("the WebSocket through the front door")
        .0
}

async fn next_frame(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    matches: impl Fn(&Value) -> bool,
) -> Value {
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message {
                let frame: Value = serde_json::from_str(&text).expect("json");
                if matches(&frame) {
                    return frame;
                }
            }
        }
        panic!("the socket closed")
    })
    .await
    .expect("a frame within 20 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "builds and runs the whole stack on a Docker engine: .ci/compose-check/run"]
async fn compose_up_serves_one_address_scales_heals_and_keeps_the_data() {
    let _ = compose(&["down", "-v", "--remove-orphans"]);
    let http = testkit::http();
    let api = Api {
        http: http.clone(),
        base: FRONT.to_owned(),
    };

    let started = Instant::now();
    ok(compose(&["build"]), "compose build");
    let build = started.elapsed();
    let started = Instant::now();
    ok(compose(&["up", "-d"]), "compose up -d");
    let healthy = all_healthy(Duration::from_secs(300)).await;
    eprintln!(
        "compose check: build {:.0} s; up -d then every container healthy in {:.0} s",
        build.as_secs_f64(),
        started.elapsed().as_secs_f64().max(healthy.as_secs_f64())
    );

    // The dashboard and the API on the front door; the first account is the admin.
    let page = http
        .get(format!("{FRONT}/"))
        .send()
        .await
        .expect("the dashboard");
    assert_eq!(page.status(), StatusCode::OK);
    let admin = api.register("admin@example.com").await;

    // The host's own collector reports: a discovered server, online, with samples.
    let local = eventually(
        "the host's collector listed, online",
        Duration::from_secs(60),
        || {
            let (api, admin) = (&api, &admin);
            async move {
                let servers = api.get("/servers", admin).await;
                servers
                    .as_array()?
                    .iter()
                    .find(|s| s["origin"] == "discovered" && s["status"] == "online")
                    .cloned()
            }
        },
    )
    .await;
    let local_id = local["id"].as_str().expect("id").to_owned();
    eprintln!("compose check: the host's collector reports as {local_id}");

    // Its live stream through the front door.
    let mut socket = websocket(&admin).await;
    socket
        .send(Message::text(
            json!({ "type": "server_metrics.subscribe", "id": 1, "data": { "serverId": local_id } })
                .to_string(),
        ))
        .await
        .expect("subscribe");
    for _ in 0..3 {
        next_frame(&mut socket, |f| f["type"] == "resource_metrics").await;
    }
    drop(socket);

    // HTTPS on 8443 with a certificate from the hub's CA (read from the secrets volume).
    let ca = ok(
        compose(&[
            "run",
            "--rm",
            "--no-deps",
            "--entrypoint",
            "cat",
            "init",
            "/flick/tls/ca.pem",
        ]),
        "read the CA",
    );
    let secure = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).expect("the CA")])
        .build()
        .expect("a client");
    let health = secure
        .get("https://localhost:8443/healthz")
        .send()
        .await
        .expect("HTTPS verified against the hub's CA");
    assert_eq!(health.status(), StatusCode::OK);

    // Another host enrols with the dashboard's command over HTTPS and reports through the
    // published NATS port (TLS, its own identity).
    let secure_api = Api {
        http: secure.clone(),
        base: "https://localhost:8443".into(),
    };
    let (status, token) = secure_api
        .call(
            Method::POST,
            "/enrollments",
            Some(&admin),
            Some(json!({ "name": "enrolled-host" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let root = tempfile::tempdir().expect("a root");
    let command = token["command"].as_str().expect("command").replace(
        "sudo sh flick-install.sh",
        &format!(
            "sh flick-install.sh --root {} --no-systemctl",
            root.path().display()
        ),
    );
    ok(
        Command::new("sh")
            .args(["-c", &command])
            .current_dir(root.path())
            .output()
            .expect("sh"),
        "the install command",
    );
    let _enrolled = Process::spawn(
        Command::new(root.path().join("usr/local/bin/flick-collector"))
            .arg("--state-dir")
            .arg(root.path().join("var/lib/flick-collector"))
            .env_clear()
            .env("RUST_LOG", "warn"),
    );
    eventually("the enrolled host online", Duration::from_secs(60), || {
        let (api, admin) = (&api, &admin);
        async move {
            let servers = api.get("/servers", admin).await;
            servers
                .as_array()?
                .iter()
                .any(|s| s["name"] == "enrolled-host" && s["status"] == "online")
                .then_some(())
        }
    })
    .await;
    eprintln!("compose check: a host enrolled over HTTPS with the dashboard's command and reports");

    // Three gateways behind the same address: requests and WebSockets reach each of them.
    ok(
        compose(&["up", "-d", "--no-recreate", "--scale", "gateway=3"]),
        "scale gateway=3",
    );
    all_healthy(Duration::from_secs(180)).await;
    assert_eq!(containers("gateway").len(), 3);
    tokio::time::sleep(Duration::from_secs(6)).await; // the proxy re-reads the name every 5 s
    let before = replica_metrics(&http).await;
    for _ in 0..90 {
        api.get("/auth/me", &admin).await;
    }
    let mut sockets = Vec::new();
    for _ in 0..9 {
        let mut socket = websocket(&admin).await;
        socket
            .send(Message::text(
                json!({ "type": "ping", "id": 9 }).to_string(),
            ))
            .await
            .expect("ping");
        next_frame(&mut socket, |f| f["id"] == 9).await;
        sockets.push(socket);
    }
    let after = replica_metrics(&http).await;
    let mut counts = Vec::new();
    for ((id, text), (_, old)) in after.iter().zip(&before) {
        let filter = "route=\"/api/v1/auth/me\"";
        let requests = metric(text, "flick_gateway_requests_total", filter)
            - metric(old, "flick_gateway_requests_total", filter);
        let sockets = metric(text, "flick_gateway_ws_clients", "");
        counts.push(format!("{id}: {requests} requests, {sockets} WebSockets"));
        assert!(
            requests > 0.0 && sockets > 0.0,
            "every replica gets requests and WebSockets: {counts:?}"
        );
    }
    eprintln!(
        "compose check: --scale gateway=3 behind {FRONT}: {}",
        counts.join("; ")
    );
    drop(sockets);

    // NATS restarts: the collector's buffer fills the outage, nothing is missing afterwards.
    let restarted = Instant::now();
    ok(compose(&["restart", "nats"]), "restart nats");
    all_healthy(Duration::from_secs(120)).await;
    let healed = restarted.elapsed();
    tokio::time::sleep(Duration::from_secs(15)).await; // replayed and stored (5 s interval)
    let (gap, count) = stored_gap(&local_id, 60);
    eprintln!(
        "compose check: NATS restarted, every container healthy again after {:.1} s; the host's last 60 s: {count} samples stored, largest gap {gap:.1} s",
        healed.as_secs_f64()
    );
    assert!(
        gap <= 2.5,
        "the collector's series has a gap of {gap} s across the NATS restart"
    );

    // down / up three times: the same address, the same account, the history kept.
    let stored = |server: &str| {
        psql(&format!(
            "SELECT count(*) FROM metrics WHERE server_id = '{server}'"
        ))
        .parse::<i64>()
        .expect("a count")
    };
    for round in 1..=3 {
        let kept = stored(&local_id);
        ok(compose(&["down"]), "compose down");
        let started = Instant::now();
        ok(compose(&["up", "-d"]), "compose up -d");
        all_healthy(Duration::from_secs(180)).await;
        let token = eventually("the front door answering", Duration::from_secs(60), || {
            let api = &api;
            async move {
                let (status, session) = api
                    .call(
                        Method::POST,
                        "/auth/login",
                        None,
                        Some(json!({ "email": "admin@example.com", "password": PASSWORD })),
                    )
                    .await;
                (status == StatusCode::OK)
                    .then(|| session["accessToken"].as_str().map(str::to_owned))?
            }
        })
        .await;
        let _ = login(&api, "admin@example.com").await;
        api.get(&format!("/servers/{local_id}"), &token).await;
        assert!(stored(&local_id) >= kept, "round {round}: samples lost");
        eprintln!(
            "compose check: down/up {round}: {FRONT} again after {:.0} s, the account and {} samples kept",
            started.elapsed().as_secs_f64(),
            kept
        );
    }

    ok(
        compose(&["down", "-v", "--remove-orphans"]),
        "compose down -v",
    );
}
