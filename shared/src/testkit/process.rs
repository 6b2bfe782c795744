//! A child process that never outlives its test.

use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

/// A spawned service binary: killed (SIGKILL) and reaped when dropped, so a failing test does
/// not leave it running.
#[derive(Debug)]
pub struct Process {
    child: Child,
}

impl Process {
    pub fn spawn(command: &mut Command) -> Self {
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {:?}: {err}", command.get_program()));
        Self { child }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (it has not exited, crashed or been killed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends a signal (`KILL`, `TERM`, …) if the process still runs.
    pub fn signal(&mut self, signal: &str) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args([format!("-{signal}"), self.child.id().to_string()])
                .status();
        }
    }

    /// SIGKILL, then waits for the process to be gone.
    pub fn kill(&mut self) -> ExitStatus {
        self.signal("KILL");
        self.child.wait().expect("wait for a killed process")
    }

    /// Waits for the process to exit, at most `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "process still running after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
