//! A three-node JetStream cluster on loopback, for tests that kill a NATS node under load: the
//! shape FLick grows past one NATS server with (streams with 3 replicas, every service given
//! every node's URL), run as three real `nats-server` processes.
//!
//! Each node has a generated configuration file (its `server_name`, JetStream on, a
//! `cluster {}` block routing to all three nodes, from `natsauth::cluster` as `flick init`
//! writes it for compose), its own store directory (`-sd`), a client, a route and a monitoring
//! port of its own. The monitoring port is how the kit knows the cluster is usable: every
//! running node reports the same JetStream meta leader, and the leader sees each of them
//! current.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_nats::jetstream;

use super::NatsServer;
use crate::natsauth::HubKeys;
use crate::natsauth::cluster::{ClusterOptions, RouteTls, cluster_block};
use crate::natsauth::hub::{ServerPaths, auth_conf};
use crate::natsauth::layout::NATS_CONF;

/// How many nodes: the smallest cluster that keeps a quorum (2) when one node is lost.
pub const NODES: usize = 3;

/// How long the cluster may take to elect a meta leader (three processes on a loaded machine).
const ELECTION_WITHIN: Duration = Duration::from_secs(60);

/// One node: its process (port, store), its name, its route and monitoring ports.
#[derive(Debug)]
struct Node {
    name: String,
    server: NatsServer,
    monitor: u16,
}

/// Three `nats-server` processes clustered on loopback, killed when dropped.
/// [`NatsCluster::kill`] and [`NatsCluster::restart`] take one node down (SIGKILL) and bring it
/// back on the same ports with the same store, as a crash and a restart of a machine would.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<Node>,
    /// `tls` when clients must use TLS (the operator-mode hub), else `nats`.
    scheme: &'static str,
    /// The nodes' configuration files.
    _configs: tempfile::TempDir,
}

impl NatsCluster {
    /// JetStream clustered, no authentication, no TLS.
    pub fn start() -> Self {
        Self::launch(None)
    }

    /// Each node runs the hub's configuration as `flick init` writes it (the repository's
    /// `nats.conf`, operator mode with the hub's accounts, TLS on the client port with the hub's
    /// certificate), its own account resolver directory, and routes with mutual TLS.
    pub fn start_operator(hub_dir: &Path, keys: &HubKeys) -> Self {
        Self::launch(Some((hub_dir, keys)))
    }

    fn launch(hub: Option<(&Path, &HubKeys)>) -> Self {
        let configs = tempfile::tempdir().expect("a directory for the nodes' configuration");
        let routes: Vec<u16> = (0..NODES).map(|_| super::free_port()).collect();
        let route_list: Vec<String> = routes.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let mut nodes = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            let name = format!("n{i}");
            let dir = configs.path().join(&name);
            std::fs::create_dir_all(&dir).expect("a node's directory");
            let config = dir.join("node.conf");
            let monitor = super::free_port();
            let server = NatsServer::unstarted(Some(config.clone()), Some(monitor));
            let tls = hub.map(|(hub_dir, _)| {
                let file = |relative: &str| hub_dir.join(relative).display().to_string();
                RouteTls {
                    cert: file("tls/server.pem"),
                    key: file("tls/server.key"),
                    ca: file("tls/ca.pem"),
                }
            });
            let block = cluster_block(&ClusterOptions {
                listen: format!("127.0.0.1:{route}"),
                routes: route_list.clone(),
                tls: tls.clone(),
            });
            let body = match hub {
                // As compose runs it: the copy of nats.conf, which includes `auth.conf` beside
                // it; here each node's own, since each needs its own resolver directory.
                Some((_, keys)) => {
                    let tls = tls.map(|tls| (tls.cert, tls.key));
                    let paths = ServerPaths {
                        resolver_dir: dir.join("jwt").display().to_string(),
                        tls,
                    };
                    let auth = auth_conf(keys, &paths, chrono::Utc::now().timestamp())
                        .expect("the hub's auth.conf");
                    write(&dir.join("auth.conf"), &auth);
                    write(&dir.join("nats-server.conf"), NATS_CONF);
                    "include \"nats-server.conf\"\n".to_owned()
                }
                // The store is `-sd` (nats-server refuses it in both places), as for the hub.
                None => "jetstream: enabled\n".to_owned(),
            };
            write(
                &config,
                &format!("# Node {i} of a test cluster.\nserver_name: {name}\n{body}\n{block}"),
            );
            nodes.push(Node {
                name,
                server,
                monitor,
            });
        }
        let mut cluster = Self {
            nodes,
            scheme: if hub.is_some() { "tls" } else { "nats" },
            _configs: configs,
        };
        for node in &mut cluster.nodes {
            node.server.spawn();
        }
        cluster.wait_for_meta_leader(ELECTION_WITHIN);
        cluster
    }

    /// How many nodes (running or not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never: a cluster has [`NODES`] nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The `server_name` of node `i`, as JetStream names stream leaders.
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The node named `name` (a stream's or the meta leader).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|node| node.name == name)
    }

    /// Node `i`'s client URL.
    pub fn url(&self, i: usize) -> String {
        format!(
            "{}://127.0.0.1:{}",
            self.scheme,
            self.nodes[i].server.port()
        )
    }

    /// Every node's client URL, separated by commas: the `nats.url` a service is given.
    pub fn urls(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kills node `i` abruptly (SIGKILL), as a crash or a pulled cable would.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].server.kill();
    }

    /// Starts node `i` again on the same ports with the same store, and waits until it is back
    /// in the cluster (it reports the meta leader, which sees it current). Its streams' replicas
    /// may still be catching up: see [`NatsCluster::wait_replicas_current`].
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].server.restart();
        self.wait_for_meta_leader(ELECTION_WITHIN);
    }

    /// The node that is the JetStream meta leader now, if the running nodes agree on one and it
    /// sees every other running node current.
    pub fn meta_leader(&mut self) -> Option<usize> {
        let mut running = Vec::new();
        for (i, node) in self.nodes.iter_mut().enumerate() {
            if node.server.is_running() {
                running.push(i);
            }
        }
        let mut leader = None;
        for &i in &running {
            let jsz = get_json(self.nodes[i].monitor, "/jsz")?;
            let name = jsz["meta_cluster"]["leader"]
                .as_str()
                .filter(|n| !n.is_empty())?;
            match leader {
                None => leader = Some(name.to_owned()),
                Some(ref agreed) if agreed == name => {}
                Some(_) => return None,
            }
        }
        let leader = self.index_of(&leader?)?;
        if !running.contains(&leader) {
            return None;
        }
        let jsz = get_json(self.nodes[leader].monitor, "/jsz")?;
        let replicas = jsz["meta_cluster"]["replicas"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let current = |name: &str| {
            replicas
                .iter()
                .any(|r| r["name"] == name && r["current"] == true && r["offline"] != true)
        };
        running
            .iter()
            .filter(|&&i| i != leader)
            .all(|&i| current(&self.nodes[i].name))
            .then_some(leader)
    }

    /// Waits until the running nodes have a meta leader (see [`NatsCluster::meta_leader`]);
    /// panics after `within`.
    pub fn wait_for_meta_leader(&mut self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            if let Some(leader) = self.meta_leader() {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "the NATS cluster elected no JetStream meta leader within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The node that leads `stream` now (`cluster.leader` of `$JS.API.STREAM.INFO.<stream>`);
    /// `None` during an election or when the answer does not come.
    pub async fn stream_leader(&self, js: &jetstream::Context, stream: &str) -> Option<usize> {
        let mut stream = js.get_stream(stream).await.ok()?;
        let info = stream.info().await.ok()?;
        let leader = info.cluster.as_ref()?.leader.as_deref()?;
        self.index_of(leader)
    }

    /// Waits until `stream` has a leader and every replica is current (none offline or behind),
    /// at most `within`; returns the leader and how long it took, `None` if that did not happen.
    pub async fn wait_replicas_current(
        &self,
        js: &jetstream::Context,
        stream: &str,
        within: Duration,
    ) -> Option<(usize, Duration)> {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Ok(mut handle) = js.get_stream(stream).await
                && let Ok(info) = handle.info().await
                && let Some(cluster) = &info.cluster
                && let Some(leader) = cluster.leader.as_deref().and_then(|n| self.index_of(n))
                && cluster.replicas.len() + 1 == self.nodes.len()
                && cluster.replicas.iter().all(|r| r.current && !r.offline)
            {
                return Some((leader, started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// The store directory of node `i`.
    pub fn store(&self, i: usize) -> PathBuf {
        self.nodes[i].server.store().to_owned()
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
}

/// `GET path` of a node's monitoring port, as JSON; `None` when it does not answer (yet).
fn get_json(port: u16, path: &str) -> Option<serde_json::Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.lines().next()?;
    status
        .contains(" 200 ")
        .then(|| serde_json::from_str(body).ok())
        .flatten()
}
