//! A private `nats-server` process for tests that stop, restart or reconfigure NATS.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `nats-server` with JetStream on a free port and its own store directory. It is killed when
/// dropped; [`NatsServer::kill`] and [`NatsServer::restart`] simulate an outage on the same port
/// with the same store.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
    config: Option<PathBuf>,
    env: Vec<(String, String)>,
    /// The monitoring port (`/jsz`, `/healthz`) of a cluster's node; `None`: none (`-m 0`), so
    /// parallel tests do not fight over 8222.
    monitor: Option<u16>,
}

impl NatsServer {
    /// JetStream enabled, no authentication.
    pub fn start() -> Self {
        Self::launch(None, Vec::new())
    }

    /// Started with `-c config` (for example the repository's `nats.conf`) and the environment
    /// variables that config reads; port and store directory are still private to the test.
    pub fn start_with_config(config: &Path, env: &[(&str, &str)]) -> Self {
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self::launch(Some(config.to_owned()), env)
    }

    fn launch(config: Option<PathBuf>, env: Vec<(String, String)>) -> Self {
        let mut server = Self::unstarted(config, None);
        server.env = env;
        server.spawn();
        server
    }

    /// A server on a free port with its own store, not started yet: a cluster writes each
    /// node's configuration (which names the store) before it starts the node with `spawn`.
    pub(super) fn unstarted(config: Option<PathBuf>, monitor: Option<u16>) -> Self {
        Self {
            child: None,
            port: free_port(),
            store: tempfile::tempdir().expect("create a store directory for nats-server"),
            config,
            env: Vec::new(),
            monitor,
        }
    }

    /// The store directory (`-sd`).
    pub(super) fn store(&self) -> &Path {
        self.store.path()
    }

    /// Whether the process runs (it was not killed and did not exit).
    pub(super) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    pub(super) fn spawn(&mut self) {
        let binary = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".to_owned());
        let mut command = Command::new(&binary);
        if let Some(config) = &self.config {
            let monitor = self.monitor.unwrap_or(0).to_string();
            command.arg("-c").arg(config).args(["-m", &monitor]);
        } else {
            command.arg("-js");
        }
        command
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(self.store.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {binary} (is it on PATH?): {err}"));
        self.child = Some(child);
        self.wait_until_listening();
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "nats-server on port {} exited at start-up: {status}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "nats-server on port {} did not listen within 15 s",
            self.port
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server abruptly (SIGKILL), as a crash or a pulled cable would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store: streams and their
    /// messages survive, as after a real restart.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port that was free a moment ago (the OS picks it); good enough for a test server.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind an ephemeral port")
}
