//! A bad setting stops the real binary at start-up with one line that names it: no panic, no
//! backtrace, exit code 2.

use std::process::{Command, Output};

fn collector(env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flick-collector"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_BACKTRACE", "1")
        .envs(env.iter().copied())
        .output()
        .expect("run flick-collector")
}

fn assert_one_line_error(output: &Output, must_contain: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "exit code; stderr: {stderr}");
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    for needle in must_contain {
        assert!(
            lines[0].contains(needle),
            "{needle:?} missing from: {}",
            lines[0]
        );
    }
    for forbidden in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(forbidden), "{forbidden} in: {stderr}");
    }
}

#[test]
fn a_non_numeric_interval_names_the_setting_and_the_variable() {
    let output = collector(&[("FLICK_COLLECTOR__INTERVAL_MS", "abc")]);
    assert_one_line_error(
        &output,
        &[
            "collector.interval_ms",
            "FLICK_COLLECTOR__INTERVAL_MS",
            "abc",
        ],
    );
}

#[test]
fn an_out_of_range_value_says_what_is_allowed() {
    let output = collector(&[("FLICK_COLLECTOR__INTERVAL_MS", "10")]);
    assert_one_line_error(&output, &["collector.interval_ms", "100..=3600000"]);
}

#[test]
fn the_original_names_are_checked_too() {
    let output = collector(&[("FLICK_SERVER_ID", "web.01")]);
    assert_one_line_error(&output, &["collector.server_id", "web.01"]);
    let output = collector(&[("RUST_LOG", "info,[[[")]);
    assert_one_line_error(&output, &["log.filter"]);
}

#[test]
fn a_bad_file_value_or_a_typo_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("flick.toml");
    std::fs::write(&file, "[nats]\nurll = \"nats://x\"\n").expect("write");
    let path = file.display().to_string();
    let output = collector(&[("FLICK_CONFIG", &path)]);
    assert_one_line_error(&output, &["nats.urll", "unknown field", &path]);

    std::fs::write(&file, "[nats]\nprefix = \"a.b\"\n").expect("write");
    let output = collector(&[("FLICK_CONFIG", &path)]);
    assert_one_line_error(&output, &["nats.prefix", "a.b"]);

    let output = collector(&[("FLICK_CONFIG", "/nonexistent/flick.toml")]);
    assert_one_line_error(&output, &["FLICK_CONFIG", "/nonexistent/flick.toml"]);
}

#[test]
fn unreachable_nats_at_start_is_a_clear_error_not_a_hang() {
    let output = collector(&[
        ("NATS_URL", "nats://127.0.0.1:1"),
        ("FLICK_NATS__CONNECT_TIMEOUT_MS", "1000"),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot connect to NATS at nats://127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_bad_entry_of_a_nats_url_list_is_named() {
    let output = collector(&[(
        "NATS_URL",
        "tls://nats:4222,https://nats-2:4222,tls://nats-3:4222",
    )]);
    assert_one_line_error(
        &output,
        &["nats.url", "NATS_URL", "\"https://nats-2:4222\" (entry 2"],
    );
}

#[test]
fn unreachable_servers_of_a_list_are_one_clear_error() {
    let output = collector(&[
        ("NATS_URL", "nats://127.0.0.1:1, nats://127.0.0.1:2"),
        ("FLICK_NATS__CONNECT_TIMEOUT_MS", "1000"),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot connect to NATS at nats://127.0.0.1:1, nats://127.0.0.1:2"),
        "{stderr}"
    );
}

#[test]
fn a_docker_socket_that_is_not_a_unix_path_and_a_bad_containers_interval_are_named() {
    let output = collector(&[("FLICK_COLLECTOR__DOCKER_SOCKET", "tcp://127.0.0.1:2375")]);
    assert_one_line_error(
        &output,
        &["collector.docker_socket", "tcp://127.0.0.1:2375", "unix"],
    );
    let output = collector(&[("FLICK_COLLECTOR__CONTAINERS_INTERVAL_MS", "10")]);
    assert_one_line_error(
        &output,
        &["collector.containers_interval_ms", "1000..=3600000"],
    );
}
