//! A real Docker engine for tests: Debian's `dockerd` on a socket, data root and exec root of
//! its own (under `/tmp/flick-dockerd`, or `FLICK_TEST_DOCKERD_DIR`), so it never meets a
//! system engine or the one `.ci/compose-check` starts on the default socket.
//!
//! Started once and then shared: by the tests of one process, and by later test processes,
//! which find it answering on its socket (starting one takes seconds, and two engines on one
//! data root would corrupt it). A lock file serialises the start across processes running at
//! the same time. It is left running when the tests end, like the machine's PostgreSQL and
//! NATS; its pidfile says which process it is.
//!
//! It runs without a bridge and without iptables rules (`--bridge=none --iptables=false`):
//! test containers need no network, and an engine that leaves the host's firewall alone can
//! sit beside any other. Nothing can be pulled on these machines, so the test image
//! ([`TEST_IMAGE`]) is imported from a root filesystem made here: Debian's static busybox as
//! `/bin/busybox` with `sh`, `sleep`, `true` and `false` linked to it. When `dockerd` or busybox
//! is missing and the tests run as root (CI), Debian's `docker.io` and `busybox-static` are
//! installed first.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The image test containers run: busybox only.
pub const TEST_IMAGE: &str = "flick-test/busybox:1";

/// The shared test engine.
#[derive(Debug)]
pub struct DockerEngine {
    dir: PathBuf,
}

impl DockerEngine {
    /// The engine, started if it is not running, with [`TEST_IMAGE`] imported.
    pub fn shared() -> &'static DockerEngine {
        static ENGINE: OnceLock<DockerEngine> = OnceLock::new();
        ENGINE.get_or_init(|| {
            let dir = std::env::var_os("FLICK_TEST_DOCKERD_DIR")
                .map_or_else(|| PathBuf::from("/tmp/flick-dockerd"), PathBuf::from);
            private_dir(&dir);
            let engine = DockerEngine { dir };
            // In a directory only this user can write: nobody can have planted a link there.
            let lock = File::create(engine.dir.join("lock")).expect("the test dockerd's lock file");
            lock.lock().expect("lock the test dockerd's lock file");
            if !engine.answers() {
                engine.start();
            }
            engine.import_image();
            drop(lock);
            engine
        })
    }

    /// The engine's socket path (what `collector.docker_socket` takes).
    pub fn socket(&self) -> String {
        self.dir.join("docker.sock").display().to_string()
    }

    /// `unix://<socket>`, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket())
    }

    /// Runs `docker <args>` against this engine; panics with its output when it fails.
    pub fn docker(&self, args: &[&str]) -> String {
        let output = Command::new("docker")
            .arg("--host")
            .arg(self.host())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run the docker client");
        assert!(
            output.status.success(),
            "docker {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Starts a container of [`TEST_IMAGE`] named `name` (detached) with `args` before the
    /// image (`--restart`, `--health-cmd`, …) and `command` after it; removed when dropped.
    pub fn run(&self, name: &str, args: &[&str], command: &[&str]) -> TestContainer<'_> {
        let mut all = vec!["run", "--detach", "--name", name, "--network", "none"];
        all.extend_from_slice(args);
        all.push(TEST_IMAGE);
        all.extend_from_slice(command);
        let id = self.docker(&all);
        TestContainer {
            engine: self,
            name: name.to_owned(),
            id,
        }
    }

    fn answers(&self) -> bool {
        Command::new("docker")
            .arg("--host")
            .arg(self.host())
            .args(["version", "--format", "{{.Server.Version}}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn start(&self) {
        ensure_installed();
        let log = File::create(self.dir.join("dockerd.log")).expect("the test dockerd's log");
        let socket = self.socket();
        let _ = std::fs::remove_file(&socket);
        let path = |name: &str| self.dir.join(name).display().to_string();
        // `setsid --fork`: its own session, so it outlives this test process and no terminal
        // signal reaches it; `setsid` itself returns at once.
        let status = Command::new("setsid")
            .args(["--fork", "dockerd"])
            .args(["--host", &self.host()])
            .args(["--data-root", &path("data")])
            .args(["--exec-root", &path("exec")])
            .args(["--pidfile", &path("docker.pid")])
            .args(["--storage-driver", "overlay2", "--mtu", "1400"])
            .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log, twice"))
            .stderr(log)
            .status()
            .expect("start dockerd (Debian's docker.io)");
        assert!(status.success(), "setsid dockerd failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.answers() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer on {socket} within 60 s: see {}",
                path("dockerd.log")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn import_image(&self) {
        let present = Command::new("docker")
            .arg("--host")
            .arg(self.host())
            .args(["image", "inspect", TEST_IMAGE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if present {
            return;
        }
        let root = tempfile::tempdir().expect("a directory for the image's root filesystem");
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&bin).expect("bin/");
        std::fs::copy(busybox(), bin.join("busybox")).expect("copy busybox");
        for tool in ["sh", "sleep", "true", "false", "cat", "yes"] {
            std::os::unix::fs::symlink("busybox", bin.join(tool)).expect("a busybox link");
        }
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(root.path())
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .expect("tar the root filesystem");
        let status = Command::new("docker")
            .arg("--host")
            .arg(self.host())
            .args(["import", "-", TEST_IMAGE])
            .stdin(tar.stdout.take().expect("tar's output"))
            .stdout(Stdio::null())
            .status()
            .expect("docker import");
        let tarred = tar.wait().expect("tar");
        assert!(
            status.success() && tarred.success(),
            "docker import {TEST_IMAGE} failed"
        );
    }
}

/// A container started by a test, removed (forcibly) when dropped.
#[derive(Debug)]
pub struct TestContainer<'a> {
    engine: &'a DockerEngine,
    pub name: String,
    pub id: String,
}

impl TestContainer<'_> {
    pub fn stop(&self) {
        self.engine.docker(&["stop", "--time", "1", &self.name]);
    }

    pub fn start(&self) {
        self.engine.docker(&["start", &self.name]);
    }
}

impl Drop for TestContainer<'_> {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .arg("--host")
            .arg(self.engine.host())
            // By id: a test may have renamed it.
            .args(["rm", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Creates `dir` readable by its owner only, and refuses one that is a link or belongs to
/// another user: it holds the engine's data root and socket, in a world-writable `/tmp`.
fn private_dir(dir: &Path) {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if let Err(err) = std::fs::DirBuilder::new().mode(0o700).create(dir)
        && err.kind() != std::io::ErrorKind::AlreadyExists
    {
        panic!(
            "a directory for the test dockerd ({}): {err}",
            dir.display()
        );
    }
    let meta = std::fs::symlink_metadata(dir).expect("the test dockerd's directory");
    // `/proc/self` belongs to the process's effective user.
    let me = std::fs::metadata("/proc/self")
        .expect("this process's /proc entry")
        .uid();
    assert!(
        meta.is_dir() && meta.uid() == me,
        "{} is not a directory of this user (uid {me}): refusing to run dockerd in it",
        dir.display()
    );
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .expect("the test dockerd's directory made private");
}

/// A statically linked busybox (the image has no libraries).
fn busybox() -> &'static Path {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .expect("busybox (Debian's busybox-static)")
}

fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs Debian's `docker.io` and `busybox-static` where they are missing and this runs as
/// root (CI on a fresh machine); elsewhere a missing engine is a loud failure.
fn ensure_installed() {
    let busybox_ok = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .any(|p| Path::new(p).exists());
    if on_path("dockerd") && on_path("docker") && busybox_ok {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    assert!(
        root,
        "dockerd, docker and busybox are needed: apt-get install docker.io busybox-static"
    );
    let status = Command::new("sh")
        .args([
            "-c",
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io busybox-static >/dev/null",
        ])
        .status()
        .expect("apt-get");
    assert!(
        status.success(),
        "apt-get install docker.io busybox-static failed"
    );
}
