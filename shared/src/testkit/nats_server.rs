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
        let store = tempfile::tempdir().expect("create a store directory for nats-server");
        let mut server = Self {
            child: None,
            port: free_port(),
            store,
            config,
            env,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let binary = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".to_owned());
        let mut command = Command::new(&binary);
        if let Some(config) = &self.config {
            // `-m 0`: no monitoring port, so parallel tests do not fight over 8222.
            command.arg("-c").arg(config).args(["-m", "0"]);
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
