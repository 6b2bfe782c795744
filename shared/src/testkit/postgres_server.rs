//! A private PostgreSQL cluster for tests that stop and start the database server itself.
//!
//! The machine's PostgreSQL on 5432 is shared by every test running at the same time, so a test
//! that restarts PostgreSQL gets a cluster of its own: `initdb` into a temporary directory,
//! trust authentication, a free port on 127.0.0.1, the socket in the same directory. The
//! binaries are those of `PG_BIN` when set, otherwise the newest `/usr/lib/postgresql/*/bin`.
//! `initdb` refuses to run as root, so under uid 0 every command runs as the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A PostgreSQL cluster of its own, stopped (immediately) and deleted when dropped.
#[derive(Debug)]
pub struct PostgresServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

impl PostgresServer {
    /// A fresh cluster, started and accepting connections.
    pub fn start() -> Self {
        let bin = pg_bin();
        let dir = tempfile::Builder::new()
            .prefix("flick-pg-")
            .tempdir()
            .expect("create a directory for a PostgreSQL cluster");
        if as_root() {
            run(Command::new("chown").arg("postgres:").arg(dir.path()));
        }
        let mut server = Self {
            bin,
            dir,
            port: super::free_port(),
            running: false,
        };
        let data = server.data();
        server.run_pg(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        server.start_again();
        server
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`): no checkpoint, every connection
    /// cut, crash recovery at the next start, as after a crash of the database server.
    pub fn stop(&mut self) {
        if self.running {
            let data = self.data();
            self.run_pg(
                "pg_ctl",
                &["-D", path_str(&data), "-m", "immediate", "-w", "stop"],
            );
            self.running = false;
        }
    }

    /// Starts the stopped server again on the same port with the same data, and waits until it
    /// accepts connections.
    pub fn start_again(&mut self) {
        let data = self.data();
        let log = self.dir.path().join("postgres.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            path_str(self.dir.path())
        );
        self.run_pg(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        self.running = true;
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of the cluster's programs and panics with its output when it fails.
    fn run_pg(&self, program: &str, args: &[&str]) {
        run(self.command(program).args(args));
    }

    /// One of the cluster's programs, run as `postgres` when we are root, in the cluster's
    /// directory (which that user can read).
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = if as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        command.current_dir(self.dir.path());
        command
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if self.running {
            let data = self.data();
            let _ = self
                .command("pg_ctl")
                .args(["-D", path_str(&data), "-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `PG_BIN`, or the newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
fn pg_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("PG_BIN") {
        return PathBuf::from(bin);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!("no /usr/lib/postgresql/*/bin/initdb: install PostgreSQL or set PG_BIN")
    })
}

fn as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn run(command: &mut Command) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {:?}: {err}", command.get_program()));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
