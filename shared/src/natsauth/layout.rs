//! The files `flick init --dir DIR` writes, once: every secret a hub needs, and the
//! configuration that points the NATS server and the services at them.
//!
//! ```text
//! DIR/flick.toml                  FLICK_CONFIG=DIR/flick.toml: every service and `flick all`
//! DIR/nats/nats-server.conf       nats-server -c DIR/nats/nats-server.conf (the repository's nats.conf)
//! DIR/nats/auth.conf              operator, accounts, resolver, TLS (included by the above)
//! DIR/nats/nats-cluster.conf      with --cluster-node: the above plus the `cluster {}` block of
//!                                 a node of that cluster (every node runs the same file)
//! DIR/keys/*.nk                   nkey seeds of the operator and the accounts (0600)
//! DIR/creds/<role>.creds          one NATS user per service role (0600)
//! DIR/tls/ca.pem, ca.key          the hub's CA; server.pem, server.key for NATS's client port
//!                                 (server.names: the names it was issued for)
//! DIR/secrets/*                   JWT signing key, encryption key (0600), PostgreSQL password
//! ```
//!
//! A file that exists is never rewritten: running it again keeps every secret and only fills in
//! what is missing (NATS's certificate alone is re-issued, by the same CA, when `--tls-name`
//! changes). Everything derived (JWTs, `auth.conf`) comes from the stored seeds.

use std::path::{Path, PathBuf};

use super::hub::{self, HubKeys, SEED_FILES, ServerPaths};
use super::roles::Role;
use super::tls;
use crate::Subjects;

/// The repository's top-level NATS configuration, copied beside the generated `auth.conf`.
pub const NATS_CONF: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../nats.conf"));

/// What to generate for.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub dir: PathBuf,
    /// Where the server and the services see `dir` (a container's mount point); `dir` itself
    /// when they run on this machine.
    pub seen_as: PathBuf,
    pub prefix: String,
    /// Host names and addresses in NATS's certificate (how collectors reach the hub).
    pub tls_names: Vec<String>,
    /// The NATS-based account resolver's directory, as the server sees it.
    pub resolver_dir: String,
    /// `nats.url` of flick.toml (how the services reach NATS).
    pub nats_url: String,
    /// NATS URLs given to enrolled hosts.
    pub public_nats_urls: Vec<String>,
    /// The host names of a NATS cluster's nodes (compose's `nats`, `nats-2`, `nats-3`), which
    /// reach each other's route port by them: when set, `nats/nats-cluster.conf` is written and
    /// NATS's certificate names them too (clients dial them, and routes verify each other).
    pub cluster_nodes: Vec<String>,
    /// `database.url` of flick.toml; `{password}` is replaced by the generated password.
    pub database_url: String,
}

/// What one run did.
#[derive(Debug, Default)]
pub struct InitReport {
    pub written: Vec<PathBuf>,
    pub kept: Vec<PathBuf>,
}

fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|err| std::io::Error::other(err.to_string()))?;
    Ok(hex::encode(buffer))
}

/// Writes `text` to `path` unless it exists (`private`: readable by its owner only).
fn write_once(
    report: &mut InitReport,
    path: &Path,
    private: bool,
    text: impl FnOnce() -> std::io::Result<String>,
) -> std::io::Result<String> {
    if path.exists() {
        report.kept.push(path.to_owned());
        return std::fs::read_to_string(path);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let text = text()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, if private { 0o600 } else { 0o644 });
    use std::io::Write as _;
    options.open(path)?.write_all(text.as_bytes())?;
    report.written.push(path.to_owned());
    Ok(text)
}

fn io(err: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(err.to_string())
}

/// Generates what is missing in `options.dir`.
pub fn init(options: &InitOptions) -> std::io::Result<InitReport> {
    let mut report = InitReport::default();
    let dir = &options.dir;
    let seen = |relative: &str| options.seen_as.join(relative).display().to_string();
    let subjects = Subjects::new(options.prefix.clone()).map_err(io)?;
    let now = chrono::Utc::now().timestamp();

    let fresh = HubKeys::generate();
    let fresh_seeds = fresh.seeds().map_err(io)?;
    let mut seeds: [String; 5] = Default::default();
    for (i, name) in SEED_FILES.iter().enumerate() {
        let seed = fresh_seeds[i].clone();
        seeds[i] = write_once(&mut report, &dir.join("keys").join(name), true, || Ok(seed))?;
    }
    let keys = HubKeys::from_seeds(&seeds).map_err(io)?;

    for role in Role::ALL {
        write_once(
            &mut report,
            &dir.join("creds").join(format!("{}.creds", role.name())),
            true,
            || keys.role_creds(role, &subjects, now).map_err(io),
        )?;
    }
    write_once(
        &mut report,
        &dir.join("creds/registrar.creds"),
        true,
        || keys.registrar_creds(now).map_err(io),
    )?;

    let ca_cert_path = dir.join("tls/ca.pem");
    let ca_key_path = dir.join("tls/ca.key");
    let ca = match (ca_cert_path.exists(), ca_key_path.exists()) {
        (true, true) => tls::Pem {
            cert: std::fs::read_to_string(&ca_cert_path)?,
            key: std::fs::read_to_string(&ca_key_path)?,
        },
        _ => tls::new_ca().map_err(io)?,
    };
    write_once(&mut report, &ca_key_path, true, || Ok(ca.key.clone()))?;
    write_once(&mut report, &ca_cert_path, false, || Ok(ca.cert.clone()))?;
    // NATS's certificate is the one derived file that follows the options: when the names it
    // must carry change (a hub given its public name later), it is re-issued by the same CA,
    // so enrolled hosts, which trust the CA, keep connecting.
    let server_cert = dir.join("tls/server.pem");
    let server_key = dir.join("tls/server.key");
    let names_path = dir.join("tls/server.names");
    let mut tls_names = options.tls_names.clone();
    for node in &options.cluster_nodes {
        if !tls_names.contains(node) {
            tls_names.push(node.clone());
        }
    }
    let names = tls_names.join("\n") + "\n";
    let current = std::fs::read_to_string(&names_path).ok();
    if !(server_cert.exists() && server_key.exists() && current.as_deref() == Some(&names)) {
        let server = tls::server_certificate(&ca, &tls_names).map_err(io)?;
        for path in [&server_cert, &server_key, &names_path] {
            let _ = std::fs::remove_file(path);
        }
        write_once(&mut report, &server_key, true, || Ok(server.key.clone()))?;
        write_once(&mut report, &server_cert, false, || Ok(server.cert.clone()))?;
        write_once(&mut report, &names_path, false, || Ok(names.clone()))?;
    } else {
        report.kept.extend([server_cert, server_key, names_path]);
    }

    write_once(&mut report, &dir.join("nats/auth.conf"), false, || {
        let paths = ServerPaths {
            resolver_dir: options.resolver_dir.clone(),
            tls: Some((seen("tls/server.pem"), seen("tls/server.key"))),
        };
        hub::auth_conf(&keys, &paths, now).map_err(io)
    })?;
    write_once(
        &mut report,
        &dir.join("nats/nats-server.conf"),
        false,
        || Ok(NATS_CONF.to_owned()),
    )?;
    if !options.cluster_nodes.is_empty() {
        write_once(
            &mut report,
            &dir.join("nats/nats-cluster.conf"),
            false,
            || Ok(nats_cluster_conf(&options.cluster_nodes, &seen)),
        )?;
    }

    let jwt_secret = write_once(&mut report, &dir.join("secrets/jwt-secret"), true, || {
        random_hex(48)
    })?;
    let encryption_key = write_once(
        &mut report,
        &dir.join("secrets/encryption-key"),
        true,
        || random_hex(32),
    )?;
    // Readable by all: the database image reads it (POSTGRES_PASSWORD_FILE) as its own user, not
    // as the one that ran init; the directory is only ever mounted into the stack's containers.
    let postgres_password = write_once(
        &mut report,
        &dir.join("secrets/postgres-password"),
        false,
        || random_hex(24),
    )?;
    write_once(&mut report, &dir.join("flick.toml"), true, || {
        Ok(flick_toml(
            options,
            &keys,
            &seen,
            FlickSecrets {
                jwt_secret: jwt_secret.trim(),
                encryption_key: encryption_key.trim(),
                postgres_password: postgres_password.trim(),
            },
        ))
    })?;
    Ok(report)
}

/// A node of the cluster of `nodes`: the single server's configuration and the `cluster {}`
/// block, the same for every node. What differs between nodes comes from outside the file: the
/// server name (`--server_name`), the store (`-sd`) and the account resolver's directory (each
/// node's own data volume, at the same path).
fn nats_cluster_conf(nodes: &[String], seen: &dyn Fn(&str) -> String) -> String {
    use super::cluster::{ClusterOptions, ROUTE_PORT, RouteTls, cluster_block};
    let block = cluster_block(&ClusterOptions {
        listen: format!("0.0.0.0:{ROUTE_PORT}"),
        routes: nodes
            .iter()
            .map(|node| format!("{node}:{ROUTE_PORT}"))
            .collect(),
        tls: Some(RouteTls {
            cert: seen("tls/server.pem"),
            key: seen("tls/server.key"),
            ca: seen("tls/ca.pem"),
        }),
    });
    format!(
        "# Written by `flick init`: one node of the NATS cluster of {nodes}. Every node runs this\n\
         # file with its own --server_name, store (-sd) and data volume (the account resolver's\n\
         # directory); streams are given 3 replicas by the services (streams.replicas).\n\
         include \"nats-server.conf\"\n\n{block}",
        nodes = nodes.join(", "),
    )
}

struct FlickSecrets<'a> {
    jwt_secret: &'a str,
    encryption_key: &'a str,
    postgres_password: &'a str,
}

fn toml_string(text: &str) -> String {
    format!("{text:?}")
}

fn flick_toml(
    options: &InitOptions,
    keys: &HubKeys,
    seen: &dyn Fn(&str) -> String,
    secrets: FlickSecrets<'_>,
) -> String {
    let seed = |key: &nkeys::KeyPair| key.seed().unwrap_or_default();
    let urls: Vec<String> = options
        .public_nats_urls
        .iter()
        .map(|u| toml_string(u))
        .collect();
    format!(
        "# Written by `flick init`: the settings every FLick service reads with\n\
         # FLICK_CONFIG=<this file>. It holds secrets: keep it private (mode 0600).\n\
         # Environment variables still override any of it.\n\n\
         [nats]\nurl = {nats_url}\nprefix = {prefix}\n\
         # Each service connects as <creds_dir>/<its role>.creds.\n\
         creds_dir = {creds_dir}\nca = {ca}\n\n\
         [database]\nurl = {database}\n\n\
         [encryption]\nkey = {key}\n\n\
         [gateway]\njwt_secret = {jwt}\n\n\
         [enrollment]\n\
         # Enrolled hosts connect to these NATS URLs and trust this CA.\n\
         nats_urls = [{urls}]\nca = {ca}\n\
         account = {account}\naccount_signing_seed = {account_seed}\n\
         operator_signing_seed = {operator_seed}\nregistrar_creds = {registrar}\n",
        nats_url = toml_string(&options.nats_url),
        prefix = toml_string(&options.prefix),
        creds_dir = toml_string(&seen("creds")),
        ca = toml_string(&seen("tls/ca.pem")),
        database = toml_string(
            &options
                .database_url
                .replace("{password}", secrets.postgres_password)
        ),
        key = toml_string(secrets.encryption_key),
        jwt = toml_string(secrets.jwt_secret),
        urls = urls.join(", "),
        account = toml_string(&keys.account.public_key()),
        account_seed = toml_string(&seed(&keys.account_signing)),
        operator_seed = toml_string(&seed(&keys.operator_signing)),
        registrar = toml_string(&seen("creds/registrar.creds")),
    )
}
