//! A private `nats-server` in operator mode, as `flick init` sets one up: the generated
//! `nats-server.conf` (the repository's `nats.conf` including the generated `auth.conf`), TLS
//! with the hub's own CA, and a `.creds` file per service role; or three of them clustered
//! ([`HubCluster`]).

use std::path::{Path, PathBuf};

use crate::Subjects;
use crate::config::NatsSettings;
use crate::natsauth::layout::{InitOptions, init};
use crate::natsauth::{HubKeys, Role};

use super::{NatsCluster, NatsServer};

/// What tests use of a hub, whether its NATS is one server ([`HubServer`]) or a cluster
/// ([`HubCluster`]): the files `flick init` wrote, the prefix, and where NATS answers.
pub trait Hub {
    /// The hub directory (`flick init --dir`).
    fn dir(&self) -> &Path;

    fn subjects(&self) -> &Subjects;

    /// `tls://127.0.0.1:<port>`, or every node's such URL separated by commas: what a service's
    /// `nats.url` holds.
    fn url(&self) -> String;

    fn path(&self, relative: &str) -> PathBuf {
        self.dir().join(relative)
    }

    fn ca(&self) -> PathBuf {
        self.path("tls/ca.pem")
    }

    fn creds(&self, role: Role) -> PathBuf {
        self.path(&format!("creds/{}.creds", role.name()))
    }

    fn keys(&self) -> HubKeys {
        read_keys(self.dir())
    }

    /// NATS settings of a service connecting as `role` (TLS, its `.creds`, the hub's prefix).
    fn settings(&self, role: Role) -> NatsSettings {
        NatsSettings {
            url: self.url(),
            prefix: self.subjects().prefix().to_owned(),
            creds: Some(self.creds(role)),
            ca: Some(self.ca()),
            ..NatsSettings::default()
        }
    }

    /// A client with the `.creds` at `creds` and the inbox prefix `inbox`.
    fn connect_with(
        &self,
        creds: &Path,
        inbox: &str,
    ) -> impl Future<Output = Result<async_nats::Client, async_nats::ConnectError>> + Send {
        let (creds, inbox, ca, url) = (creds.to_owned(), inbox.to_owned(), self.ca(), self.url());
        async move {
            async_nats::ConnectOptions::with_credentials_file(creds)
                .await
                .map_err(|err| {
                    async_nats::ConnectError::with_source(
                        async_nats::ConnectErrorKind::Authentication,
                        err,
                    )
                })?
                .add_root_certificates(ca)
                .require_tls(true)
                .custom_inbox_prefix(inbox)
                .connect(servers(&url))
                .await
        }
    }

    /// A client that may do anything (the tests' observer: streams, dead letters), reconnecting
    /// forever (to any node of a cluster), with room for a flood.
    fn connect_observer(&self) -> impl Future<Output = async_nats::Client> + Send {
        let (creds, ca, url) = (self.path(OBSERVER_CREDS), self.ca(), self.url());
        async move {
            async_nats::ConnectOptions::with_credentials_file(creds)
                .await
                .expect("the observer's creds")
                .add_root_certificates(ca)
                .require_tls(true)
                .max_reconnects(None)
                .subscription_capacity(1 << 20)
                .connect(servers(&url))
                .await
                .expect("the observer connects")
        }
    }
}

/// The tests' own observer, allowed every subject (it reads streams and dead letters).
const OBSERVER_CREDS: &str = "creds/test-observer.creds";

fn servers(url: &str) -> Vec<async_nats::ServerAddr> {
    crate::nats::server_addrs(url).unwrap_or_else(|err| panic!("{url}: {err}"))
}

/// Generates a hub for `subjects` (what `flick init` writes), with the observer's `.creds`.
fn generate(subjects: &Subjects) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a hub directory");
    let options = InitOptions {
        dir: dir.path().to_owned(),
        seen_as: dir.path().to_owned(),
        prefix: subjects.prefix().to_owned(),
        tls_names: vec!["localhost".into(), "127.0.0.1".into()],
        resolver_dir: dir.path().join("nats/jwt").display().to_string(),
        nats_url: "tls://127.0.0.1:4222".into(),
        public_nats_urls: vec!["tls://127.0.0.1:4222".into()],
        cluster_nodes: Vec::new(),
        database_url: "postgres://postgres@127.0.0.1:5432/flick".into(),
    };
    init(&options).expect("flick init into the hub directory");
    let keys = read_keys(dir.path());
    let everything = crate::natsauth::Permissions {
        publish: vec![">".into()],
        subscribe: vec![">".into()],
        deny_publish: vec![],
    };
    let admin = keys
        .user_creds("test-observer", &everything, chrono::Utc::now().timestamp())
        .expect("sign the observer");
    std::fs::write(dir.path().join(OBSERVER_CREDS), admin).expect("write");
    dir
}

/// A hub directory and its NATS server (killed when dropped).
#[derive(Debug)]
pub struct HubServer {
    pub server: NatsServer,
    pub dir: tempfile::TempDir,
    pub subjects: Subjects,
}

impl Hub for HubServer {
    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    fn url(&self) -> String {
        format!("tls://127.0.0.1:{}", self.server.port())
    }
}

/// The [`Hub`] methods, callable without importing the trait (most tests use this one kind).
impl HubServer {
    /// Generates a hub for `prefix` and starts its NATS server.
    pub fn start(subjects: &Subjects) -> Self {
        let dir = generate(subjects);
        let server = NatsServer::start_with_config(&dir.path().join("nats/nats-server.conf"), &[]);
        Self {
            server,
            dir,
            subjects: subjects.clone(),
        }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        Hub::path(self, relative)
    }

    /// `tls://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        Hub::url(self)
    }

    pub fn ca(&self) -> PathBuf {
        Hub::ca(self)
    }

    pub fn creds(&self, role: Role) -> PathBuf {
        Hub::creds(self, role)
    }

    pub fn keys(&self) -> HubKeys {
        Hub::keys(self)
    }

    pub async fn connect_observer(&self) -> async_nats::Client {
        Hub::connect_observer(self).await
    }

    pub fn settings(&self, role: Role) -> NatsSettings {
        Hub::settings(self, role)
    }

    pub async fn connect_with(
        &self,
        creds: &Path,
        inbox: &str,
    ) -> Result<async_nats::Client, async_nats::ConnectError> {
        Hub::connect_with(self, creds, inbox).await
    }

    /// A client as `role`, with the role's inbox prefix.
    pub async fn connect_as(&self, role: Role) -> async_nats::Client {
        self.connect_with(&self.creds(role), &crate::nats::inbox_prefix(role.name()))
            .await
            .unwrap_or_else(|err| panic!("connect as {}: {err}", role.name()))
    }
}

/// A hub whose NATS is a three-node JetStream cluster on loopback ([`NatsCluster`] in operator
/// mode): the same files, identities and TLS as [`HubServer`], every node trusting them.
#[derive(Debug)]
pub struct HubCluster {
    pub cluster: NatsCluster,
    pub dir: tempfile::TempDir,
    pub subjects: Subjects,
}

impl HubCluster {
    /// Generates a hub for `subjects`, starts its three nodes and waits for a meta leader.
    pub fn start(subjects: &Subjects) -> Self {
        let dir = generate(subjects);
        let cluster = NatsCluster::start_operator(dir.path(), &read_keys(dir.path()));
        Self {
            cluster,
            dir,
            subjects: subjects.clone(),
        }
    }
}

impl Hub for HubCluster {
    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    fn url(&self) -> String {
        self.cluster.urls()
    }
}

fn read_keys(dir: &Path) -> HubKeys {
    let seeds = crate::natsauth::hub::SEED_FILES
        .map(|name| std::fs::read_to_string(dir.join("keys").join(name)).expect("seed"));
    HubKeys::from_seeds(&seeds).expect("seeds")
}
