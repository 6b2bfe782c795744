//! What an operator reads in `docker compose logs` (or journald) when NATS goes away for a few
//! seconds: the real collector binary, its default log settings, stderr not a terminal. One WARN
//! when the connection drops, one INFO when it is back, no ERROR for each reconnect attempt, no
//! colour escape codes.

use std::process::{Command, Stdio};
use std::time::Duration;

use flick_shared::testkit::{self, NatsServer, Process};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_is_one_warning_and_one_info_in_plain_text() {
    let mut nats = NatsServer::start();
    let subjects = testkit::unique_subjects();
    let log = tempfile::NamedTempFile::new().expect("a log file");
    let mut collector = Process::spawn(
        Command::new(env!("CARGO_BIN_EXE_flick-collector"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NATS_URL", nats.url())
            .env("FLICK_NATS__PREFIX", subjects.prefix())
            .env("FLICK_SERVER_ID", "outage-logs")
            .env("FLICK_COLLECTOR__SHUTDOWN_FLUSH_MS", "500")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("the log file")),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    nats.kill();
    // Eight seconds of reconnect attempts (several a second at first).
    tokio::time::sleep(Duration::from_secs(8)).await;
    nats.restart();
    tokio::time::sleep(Duration::from_secs(6)).await;
    collector.signal("TERM");
    collector.wait_exit(Duration::from_secs(10)).await;

    let text = std::fs::read_to_string(log.path()).expect("read the log");
    let count = |needle: &str| text.lines().filter(|line| line.contains(needle)).count();
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes off a terminal:\n{text}"
    );
    assert_eq!(
        count(" ERROR "),
        0,
        "no ERROR for an outage that heals:\n{text}"
    );
    assert_eq!(
        count("NATS unavailable"),
        1,
        "one WARN when it starts:\n{text}"
    );
    assert_eq!(
        count("NATS available again"),
        1,
        "one INFO when it is over:\n{text}"
    );
    assert!(
        count(" WARN ") <= 2,
        "a few warnings at most for an 8-second outage:\n{text}"
    );
}
