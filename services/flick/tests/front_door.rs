//! The stack's front door: the repository's Caddyfile run by a real Caddy (Debian's `caddy`) in
//! front of the real gateway on a hub `flick init` made. Plain HTTP and the WebSocket pass
//! through; HTTPS is served with a certificate from the hub's own CA; a host enrols over that
//! HTTPS with nothing but the install command (the pinned CA); a spoofed `X-Forwarded-For`
//! does not escape the per-address login budget.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _};

use common::{Api, Stack, binary};
use flick_shared::testkit::{self, HubServer, Process, eventually};

/// Caddy with the repository's Caddyfile, in front of the gateway at `gateway_port`.
struct FrontDoor {
    _caddy: Process,
    _storage: tempfile::TempDir,
    http: u16,
    https: u16,
}

impl FrontDoor {
    async fn start(hub: &HubServer, gateway_port: u16) -> Self {
        let storage = tempfile::tempdir().expect("Caddy's storage");
        let (http, https) = (testkit::free_port(), testkit::free_port());
        let caddyfile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Caddyfile");
        let caddy = Process::spawn(
            Command::new("caddy")
                .args(["run", "--adapter", "caddyfile", "--config"])
                .arg(caddyfile)
                .env("FLICK_SECRETS", hub.dir.path())
                .env("FLICK_GATEWAY_HOST", "127.0.0.1")
                .env("FLICK_GATEWAY_PORT", gateway_port.to_string())
                .env("FLICK_PROXY_HTTP_PORT", http.to_string())
                .env("FLICK_PROXY_HTTPS_PORT", https.to_string())
                .env("FLICK_DOMAIN", "localhost")
                .env("FLICK_TLS", "internal")
                // Caddy keeps its certificates under XDG_DATA_HOME; never the user's.
                .env("XDG_DATA_HOME", storage.path())
                .env("XDG_CONFIG_HOME", storage.path())
                .env("HOME", storage.path()),
        );
        let door = Self {
            _caddy: caddy,
            _storage: storage,
            http,
            https,
        };
        let http = testkit::http();
        let url = format!("http://127.0.0.1:{}/healthz", door.http);
        eventually("Caddy passing /healthz on", Duration::from_secs(20), || {
            let (http, url) = (&http, &url);
            async move {
                let response = http.get(url).send().await.ok()?;
                (response.status() == StatusCode::OK).then_some(())
            }
        })
        .await;
        door
    }
}

/// A client that trusts the hub's CA and nothing else.
fn trusting_only(hub: &HubServer) -> reqwest::Client {
    let pem = std::fs::read(hub.ca()).expect("the hub's CA");
    let ca = reqwest::Certificate::from_pem(&pem).expect("a certificate");
    let _ = testkit::http(); // installs the TLS crypto provider
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .expect("a client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_door_serves_http_websockets_and_https_from_the_hubs_ca_and_hosts_enrol_through_it()
 {
    let hub = HubServer::start(&testkit::unique_subjects());
    let stack = Stack::on_hub(&hub)
        .await
        .with_env("FLICK_GATEWAY__TRUST_FORWARDED_FOR", "true")
        .with_env("FLICK_GATEWAY__TRUSTED_PROXIES", "1");
    let _backend = stack.start_backend().await;
    let door = FrontDoor::start(&hub, stack.gateway_port).await;

    // Through the plain-HTTP door: the API and the live WebSocket.
    let api = Api {
        http: testkit::http(),
        base: format!("http://127.0.0.1:{}", door.http),
    };
    let alice = api.register("alice@example.com").await;
    let mut request = format!("ws://127.0.0.1:{}/api/v1/ws", door.http)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {alice}").parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the WebSocket upgrade passes the proxy");
    socket
        .send(Message::text(
            json!({ "type": "alerts.subscribe", "id": 7 }).to_string(),
        ))
        .await
        .expect("send");
    let ack = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message {
                let frame: Value = serde_json::from_str(&text).expect("json");
                if frame["type"] == "ack" && frame["id"] == 7 {
                    return frame;
                }
            }
        }
        panic!("the socket closed before the ack")
    })
    .await
    .expect("an ack through the proxy");
    assert_eq!(ack["id"], 7);

    // HTTPS with a certificate the hub's CA issued: a client trusting only that CA accepts it.
    let secure = trusting_only(&hub);
    let https = format!("https://localhost:{}", door.https);
    let health = secure
        .get(format!("{https}/healthz"))
        .send()
        .await
        .expect("HTTPS verified against the hub's CA");
    assert_eq!(health.status(), StatusCode::OK);

    // The dashboard's command, asked for over HTTPS, names the HTTPS address (the proxy's
    // X-Forwarded-Proto, trusted from one proxy).
    let secure_api = Api {
        http: secure.clone(),
        base: https.clone(),
    };
    let (status, token) = secure_api
        .call(
            Method::POST,
            "/enrollments",
            Some(&alice),
            Some(json!({ "name": "through-the-door" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let command = token["command"].as_str().expect("command").to_owned();
    assert!(
        command.starts_with(&format!(
            "curl -fsSLk {https}/install.sh -o flick-install.sh"
        )),
        "{command}"
    );
    let pin = token["caSha256"].as_str().expect("pin").to_owned();

    // A host told another pin refuses the hub before sending the token (which stays usable).
    let states = tempfile::tempdir().expect("state");
    let wrong = Command::new(binary("flick-collector"))
        .args(["enroll", "--gateway", &https, "--token"])
        .arg(token["token"].as_str().expect("token"))
        .args(["--ca-sha256", &format!("sha256:{}", "0".repeat(64))])
        .arg("--state-dir")
        .arg(states.path().join("wrong"))
        .output()
        .expect("enroll");
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        !wrong.status.success() && stderr.contains("where the command says"),
        "{stderr}"
    );

    // The whole command, as shown, over HTTPS from a host that trusts nothing yet: the script is
    // checked against the command's checksum, the binary against the script's, the CA against
    // the pin; then the enrolment goes over verified HTTPS.
    let root = tempfile::tempdir().expect("a root");
    let run = command.replace(
        "sudo sh flick-install.sh",
        &format!(
            "sh flick-install.sh --root {} --no-systemctl",
            root.path().display()
        ),
    );
    let output = Command::new("sh")
        .args(["-c", &run])
        .current_dir(states.path())
        .output()
        .expect("run the command");
    assert!(
        output.status.success(),
        "the install command over HTTPS: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let enrolled: Value = serde_json::from_str(
        &std::fs::read_to_string(root.path().join("var/lib/flick-collector/enrollment.json"))
            .expect("enrollment.json"),
    )
    .expect("json");
    let id = enrolled["serverId"].as_str().expect("server id");
    let server = secure_api.get(&format!("/servers/{id}"), &alice).await;
    assert_eq!(server["name"], "through-the-door");
    assert!(pin.starts_with("sha256:"));

    // X-Forwarded-For set by a client is not believed: six bad logins "from six addresses" are
    // one address to the gateway, and its budget (5) runs out.
    let mut last = StatusCode::OK;
    for i in 0..6 {
        let response = testkit::http()
            .post(format!("http://127.0.0.1:{}/api/v1/auth/login", door.http))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .json(&json!({ "email": "alice@example.com", "password": "wrong password here" }))
            .send()
            .await
            .expect("login");
        last = response.status();
    }
    assert_eq!(
        last,
        StatusCode::TOO_MANY_REQUESTS,
        "a spoofed X-Forwarded-For must not buy a fresh budget"
    );
}
