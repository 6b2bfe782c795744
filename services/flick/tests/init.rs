//! `flick init --dir DIR` generates every secret once: running it again keeps each one, byte for
//! byte and with its mode; a new `--tls-name` re-issues NATS's certificate alone, from the same
//! CA; a file removed is generated again and nothing else changes.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

/// Every file under `dir`: its content and mode.
fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path
                    .strip_prefix(dir)
                    .expect("inside")
                    .display()
                    .to_string();
                let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
                files.insert(relative, (std::fs::read(&path).expect("read"), mode));
            }
        }
    }
    files
}

fn init(dir: &Path, extra: &[&str]) -> String {
    let output = Command::new(common::binary("flick"))
        .arg("init")
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .output()
        .expect("run flick init");
    assert!(
        output.status.success(),
        "flick init: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The names of the files that differ between two snapshots.
fn changed(
    before: &BTreeMap<String, (Vec<u8>, u32)>,
    after: &BTreeMap<String, (Vec<u8>, u32)>,
) -> Vec<String> {
    before
        .keys()
        .chain(after.keys())
        .filter(|name| before.get(*name) != after.get(*name))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[test]
fn init_twice_keeps_every_secret_and_fills_in_only_what_is_missing() {
    let dir = tempfile::tempdir().expect("a directory");
    let first_output = init(dir.path(), &["--tls-name", "hub.example.com"]);
    let first = snapshot(dir.path());
    for expected in [
        "flick.toml",
        "nats/nats-server.conf",
        "nats/auth.conf",
        "creds/persister.creds",
        "creds/collector.creds",
        "creds/integration.creds",
        "creds/registrar.creds",
        "tls/ca.pem",
        "tls/ca.key",
        "tls/server.pem",
        "tls/server.key",
        "secrets/jwt-secret",
        "secrets/encryption-key",
        "secrets/postgres-password",
    ] {
        assert!(first.contains_key(expected), "{expected} in {first_output}");
    }
    for (name, (_, mode)) in &first {
        let secret = name.ends_with(".nk")
            || name.ends_with(".creds")
            || name.ends_with(".key")
            || name == "flick.toml"
            || name == "secrets/jwt-secret"
            || name == "secrets/encryption-key";
        if secret {
            assert_eq!(*mode, 0o600, "{name} is readable by its owner only");
        }
    }

    let second_output = init(dir.path(), &["--tls-name", "hub.example.com"]);
    assert!(
        second_output.contains(" 0 files written"),
        "{second_output}"
    );
    let second = snapshot(dir.path());
    assert_eq!(
        changed(&first, &second),
        Vec::<String>::new(),
        "a second run changes nothing"
    );

    // The hub gets another name: NATS's certificate alone is re-issued, by the same CA.
    init(
        dir.path(),
        &["--tls-name", "hub.example.com", "--tls-name", "10.0.0.5"],
    );
    let renamed = snapshot(dir.path());
    assert_eq!(
        changed(&second, &renamed),
        ["tls/server.key", "tls/server.names", "tls/server.pem"],
        "only NATS's certificate follows the names"
    );
    let names = String::from_utf8_lossy(&renamed["tls/server.names"].0).into_owned();
    assert!(names.lines().any(|name| name == "10.0.0.5"), "{names}");

    // A file lost is generated again; every other one is kept.
    std::fs::remove_file(dir.path().join("creds/persister.creds")).expect("remove");
    let output = init(
        dir.path(),
        &["--tls-name", "hub.example.com", "--tls-name", "10.0.0.5"],
    );
    assert!(output.contains(" 1 files written"), "{output}");
    let refilled = snapshot(dir.path());
    assert_eq!(changed(&renamed, &refilled), ["creds/persister.creds"]);
}
