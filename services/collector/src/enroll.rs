//! `flick-collector enroll`: joins a hub with a token, and the state directory the collector
//! then runs from.
//!
//! The host's key pair is generated here and its seed never leaves the host: the gateway sees
//! only the public key and answers with the server id it assigned, a user JWT for that key
//! (allowed only this server's subjects), the NATS URLs and the hub's CA. With the seed the JWT
//! becomes a standard NATS `.creds` file. Enrolling again reuses the stored key, so the host
//! keeps its server id.
//!
//! ```text
//! <state dir>/host.nk            the host's nkey seed (0600)
//! <state dir>/host.creds         user JWT + seed, what NATS clients connect with (0600)
//! <state dir>/ca.pem             the hub's CA, checked against --ca-sha256
//! <state dir>/enrollment.json    server id, NATS URLs, prefix, inbox prefix
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use nkeys::KeyPair;
use serde::{Deserialize, Serialize};

use crate::Config;

/// The default state directory of an installed collector.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/flick-collector";

/// What enrolment stored, besides the keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrollment {
    pub server_id: String,
    pub nats_urls: Vec<String>,
    pub prefix: String,
    pub inbox_prefix: String,
    pub gateway: String,
}

/// The gateway's answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Enrolled {
    server_id: String,
    jwt: String,
    nats_urls: Vec<String>,
    ca: Option<String>,
    prefix: String,
    inbox_prefix: String,
}

#[derive(Debug, Clone)]
pub struct EnrollOptions {
    pub gateway: String,
    pub token: String,
    pub state_dir: PathBuf,
    /// `sha256:<hex>` of the hub's CA: the CA the gateway hands out must be this one.
    pub ca_sha256: Option<String>,
    pub hostname: String,
}

fn write_private(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    let temporary = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    options
        .open(&temporary)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .with_context(|| format!("write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("write {}", path.display()))
}

/// The host's key pair: the stored one, or a new one (stored).
fn host_key(state_dir: &Path) -> anyhow::Result<KeyPair> {
    let path = state_dir.join("host.nk");
    if path.exists() {
        let seed =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        return KeyPair::from_seed(seed.trim())
            .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()));
    }
    let key = KeyPair::new_user();
    let seed = key.seed().map_err(|err| anyhow::anyhow!("{err}"))?;
    write_private(&path, &seed, 0o600)?;
    Ok(key)
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("flick-collector/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(30))
}

/// The client the enrolment is sent with. Over HTTPS with a pinned CA, the hub's CA is fetched
/// first without trusting the connection (`/api/v1/enroll/ca`), checked against the pin, and
/// then trusted beside the system's roots: a hub with its own CA (the stack's front door by
/// default) is verified as strictly as one with a public certificate, and a different one is
/// refused before the token is sent.
async fn http_client(gateway: &str, ca_sha256: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let (true, Some(expected)) = (gateway.starts_with("https://"), ca_sha256) else {
        return client_builder().build().context("build the HTTP client");
    };
    let unverified = client_builder()
        .danger_accept_invalid_certs(true)
        .build()
        .context("build the HTTP client")?;
    let response = unverified
        .get(format!("{gateway}/api/v1/enroll/ca"))
        .send()
        .await
        .with_context(|| format!("cannot reach the hub at {gateway}"))?;
    if !response.status().is_success() {
        bail!(
            "the hub at {gateway} does not hand out its CA ({}): is this a FLick hub with enrolment configured?",
            response.status()
        );
    }
    let pem = response.text().await.context("read the hub's CA")?;
    let actual = flick_shared::natsauth::tls::fingerprint(&pem);
    if actual.as_deref() != Some(expected) {
        bail!(
            "the hub's CA is {} where the command says {expected}: not enrolling (is this the right hub?)",
            actual.as_deref().unwrap_or("not a certificate")
        );
    }
    let ca = reqwest::Certificate::from_pem(pem.as_bytes()).context("the hub's CA")?;
    client_builder()
        .tls_certs_merge([ca])
        .build()
        .context("build the HTTP client with the hub's CA")
}

/// Enrols this host; what was stored.
pub async fn enroll(options: &EnrollOptions) -> anyhow::Result<Enrollment> {
    create_state_dir(&options.state_dir)?;
    let key = host_key(&options.state_dir)?;
    let gateway = options.gateway.trim_end_matches('/');
    if gateway.starts_with("http://") && !is_loopback(gateway) {
        tracing::warn!(
            gateway,
            "Enrolling over plain HTTP: the token travels unencrypted; use the hub's https:// address"
        );
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = http_client(gateway, options.ca_sha256.as_deref()).await?;
    let response = http
        .post(format!("{gateway}/api/v1/enroll"))
        .json(&serde_json::json!({
            "token": options.token,
            "publicKey": key.public_key(),
            "hostname": options.hostname,
        }))
        .send()
        .await
        .with_context(|| format!("cannot reach the hub at {gateway}"))?;
    let status = response.status();
    let body = response.text().await.context("read the hub's answer")?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(200).collect());
        bail!("the hub refused the enrolment ({status}): {message}");
    }
    let enrolled: Enrolled =
        serde_json::from_str(&body).context("the hub's answer is not an enrolment")?;
    if let Some(expected) = &options.ca_sha256 {
        let actual = enrolled
            .ca
            .as_deref()
            .and_then(flick_shared::natsauth::tls::fingerprint);
        if actual.as_deref() != Some(expected.as_str()) {
            bail!(
                "the hub's CA is {} where the command says {expected}: not enrolling (is this the right hub?)",
                actual.as_deref().unwrap_or("missing")
            );
        }
    }
    let seed = key.seed().map_err(|err| anyhow::anyhow!("{err}"))?;
    write_private(
        &options.state_dir.join("host.creds"),
        &flick_shared::natsauth::jwt::creds(&enrolled.jwt, &seed),
        0o600,
    )?;
    if let Some(ca) = &enrolled.ca {
        write_private(&options.state_dir.join("ca.pem"), ca, 0o644)?;
    }
    let enrollment = Enrollment {
        server_id: enrolled.server_id,
        nats_urls: enrolled.nats_urls,
        prefix: enrolled.prefix,
        inbox_prefix: enrolled.inbox_prefix,
        gateway: gateway.to_owned(),
    };
    write_private(
        &options.state_dir.join("enrollment.json"),
        &serde_json::to_string_pretty(&enrollment)?,
        0o600,
    )?;
    Ok(enrollment)
}

fn is_loopback(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

fn create_state_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restrict {}", dir.display()))?;
    }
    Ok(())
}

/// Points `config` at what enrolment stored in `state_dir`: the server id, the NATS URLs, the
/// `.creds`, the CA and the inbox prefix its identity may read.
pub fn apply(config: &mut Config, state_dir: &Path) -> anyhow::Result<Enrollment> {
    let path = state_dir.join("enrollment.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} is not enrolled (no {}): run `flick-collector enroll --gateway <hub> --token <token> --state-dir {}`",
            state_dir.display(),
            path.display(),
            state_dir.display()
        )
    })?;
    let enrollment: Enrollment = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an enrolment", path.display()))?;
    config.nats.url = enrollment.nats_urls.join(",");
    config.nats.prefix = enrollment.prefix.clone();
    config.nats.creds = Some(state_dir.join("host.creds"));
    config.nats.creds_dir = None;
    config.nats.user = None;
    config.nats.password = None;
    config.nats.inbox_prefix = Some(enrollment.inbox_prefix.clone());
    let ca = state_dir.join("ca.pem");
    if ca.exists() {
        config.nats.ca = Some(ca);
    }
    config.collector.server_id = Some(enrollment.server_id.clone());
    Ok(enrollment)
}
