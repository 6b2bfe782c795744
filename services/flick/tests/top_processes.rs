//! What is eating the host: the real collector on this machine lists its top processes; a
//! process the test starts that burns a core is named first by CPU, one holding 500 MB first
//! by memory; the gateway serves the newest list and the stored one; the real alerter names
//! them in the firing CPU and memory alerts ("…; busiest: flickburn 50 %").

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use common::{Api, Service, Stack};
use flick_shared::testkit::eventually;

const SERVER: &str = "proc-host";

/// A child killed when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `program` under the name `name` (a symlink: the kernel names a process after the
/// file it executed), so the test can find it among the host's processes.
fn start_as(dir: &std::path::Path, name: &str, program: &str, args: &[&str]) -> Guard {
    let link = dir.join(name);
    std::os::unix::fs::symlink(program, &link).expect("symlink");
    let child = Command::new(&link)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the process");
    Guard(child)
}

fn names(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .map(|l| {
            l.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_busy_and_a_large_process_are_named_first_and_in_the_alerts_they_cause() {
    let stack = Stack::new()
        .await
        .with_env("FLICK_PERSISTER__FLUSH_INTERVAL_MS", "200");
    let _backend = stack.start_backend().await;
    let api = Api::of(&stack);
    let admin = api.register("root@example.com").await;

    let dir = tempfile::tempdir().expect("a temporary directory");
    let yes = which("yes");
    // The interpreter itself (`python3` may be a shim script that would name the process).
    let python = String::from_utf8_lossy(
        &Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3")
            .stdout,
    )
    .trim()
    .to_owned();
    let _burner = start_as(dir.path(), "flickburn", &yes, &[]);
    // 500 MB written (not only reserved), so it is resident: one buffer filled in one pass
    // (a one-byte repeat is a memset), so the hog is idle soon after it starts.
    let _hog = start_as(
        dir.path(),
        "flickhog",
        &python,
        &[
            "-c",
            "import time\nb = bytearray(b'x') * (500 << 20)\ntime.sleep(600)",
        ],
    );
    let _collector = stack.spawn(
        &Service::Collector,
        &[
            ("FLICK_SERVER_ID", SERVER),
            ("FLICK_COLLECTOR__PROCESSES_INTERVAL_MS", "1000"),
        ],
    );

    // The newest list, from the stream, names them first.
    let path = format!("/servers/{SERVER}/processes");
    let list = eventually(
        "a list with flickburn first by CPU and flickhog first by memory, 500 MB resident and idle",
        Duration::from_secs(40),
        || {
            let (api, path, admin) = (&api, path.clone(), admin.clone());
            async move {
                let (status, list) = api.call(Method::GET, &path, Some(&admin), None).await;
                // The hog's resident size too: it is first by memory while it is still
                // writing its 500 MB. Until it has written them it also burns a core, and
                // on a loaded machine (page reclaim) that can last long enough for the CPU
                // alert below to name it first, so it must be done and idle.
                let hog = &list["byMemory"][0];
                (status == StatusCode::OK
                    && names(&list["byCpu"]).first().map(String::as_str) == Some("flickburn")
                    && names(&list["byMemory"]).first().map(String::as_str) == Some("flickhog")
                    && hog["residentBytes"]
                        .as_u64()
                        .is_some_and(|b| b >= 500 << 20)
                    && hog["cpuPercent"].as_f64().is_some_and(|c| c < 5.0))
                .then_some(list)
            }
        },
    )
    .await;
    let burner = &list["byCpu"][0];
    assert!(
        burner["cpuPercent"].as_f64().is_some_and(|c| c > 20.0),
        "a core of this host's: {burner}"
    );
    let hog = &list["byMemory"][0];
    assert!(
        hog["residentBytes"]
            .as_u64()
            .is_some_and(|b| b >= 500 << 20),
        "{hog}"
    );
    assert!(
        hog["command"]
            .as_str()
            .is_some_and(|c| c.contains("flickhog -c")),
        "{hog}"
    );
    assert_eq!(list["byCpu"].as_array().map(Vec::len), Some(10), "top 10");

    // The persister keeps them: the list stored at or before now.
    eventually("a stored list", Duration::from_secs(20), || {
        let (api, admin) = (&api, admin.clone());
        let at = chrono::Utc::now().to_rfc3339().replace('+', "%2B");
        async move {
            let stored = api
                .get(&format!("/servers/{SERVER}/processes?at={at}"), &admin)
                .await;
            (names(&stored["byCpu"]).iter().any(|n| n == "flickburn")).then_some(())
        }
    })
    .await;

    // Rules the host is above at once: each alert names what is eating it.
    let (status, body) = api
        .call(
            Method::PUT,
            &format!("/servers/{SERVER}/thresholds"),
            Some(&admin),
            Some(json!({
                "cpu": { "warning": 1, "critical": 2, "forSecs": 0, "margin": 0 },
                "memory": { "warning": 1, "critical": 2, "forSecs": 0, "margin": 0 },
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (metric, first, word) in [
        ("cpu", "flickburn", "busiest"),
        ("memory", "flickhog", "largest"),
    ] {
        let alert = eventually(
            &format!("a firing {metric} alert naming {first}"),
            Duration::from_secs(40),
            || {
                let (api, admin) = (&api, admin.clone());
                async move {
                    let page = api
                        .get(&format!("/alerts?serverId={SERVER}&state=firing"), &admin)
                        .await;
                    page["items"]
                        .as_array()?
                        .iter()
                        .find(|a| a["metric"] == metric && a["severity"] == "critical")
                        .cloned()
                }
            },
        )
        .await;
        assert_eq!(
            names(&alert["topProcesses"]).first().map(String::as_str),
            Some(first),
            "{alert}"
        );
        let message = alert["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("{word}: {first}")),
            "the sentence names it: {message}"
        );
    }
}

fn which(program: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .expect("sh");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!path.is_empty(), "{program} is on the PATH");
    path
}
