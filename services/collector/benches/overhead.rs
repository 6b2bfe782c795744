//! What the collector costs the host it watches: CPU time as a share of one core and peak RSS,
//! over a real run at 1 Hz against the local NATS. When Debian's `prometheus-node-exporter` is
//! installed, the same figures are measured for it, scraped once a second, in the same run.
//!
//! `cargo bench -p flick-collector --bench overhead` (60 s per run; `FLICK_BENCH_SECS` and
//! `FLICK_BENCH_RUNS` change the length and the number of runs).

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

struct Usage {
    cpu_percent: f64,
    peak_rss_kb: u64,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may contain spaces: fields start after the closing parenthesis.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Runs `children` side by side for `secs` (after a 2 s warm-up), calling `each_second` every
/// second, and returns each one's usage. Side by side, every process meets the same machine:
/// a build or a test next door loads them all alike, rather than whichever ran at the time.
fn measure(mut children: Vec<Child>, secs: u64, mut each_second: impl FnMut()) -> Vec<Usage> {
    std::thread::sleep(Duration::from_secs(2));
    let ticks = clock_ticks_per_sec();
    let start_ticks: Vec<u64> = children.iter().map(|c| cpu_ticks(c.id())).collect();
    let started = Instant::now();
    for second in 1..=secs {
        each_second();
        let next = started + Duration::from_secs(second);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let usage = children
        .iter()
        .zip(start_ticks)
        .map(|(child, start)| Usage {
            cpu_percent: (cpu_ticks(child.id()) - start) as f64 / ticks / elapsed * 100.0,
            peak_rss_kb: peak_rss_kb(child.id()),
        })
        .collect();
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    usage
}

/// What the collector is asked to watch in one measured configuration.
struct Configuration {
    name: &'static str,
    /// Settings beyond the defaults, as environment variables.
    env: Vec<(&'static str, String)>,
}

/// Headline figures only; then with the top-process lists (the default); then with containers
/// too, when a Docker Engine socket is given (`FLICK_BENCH_DOCKER_SOCKET`, else
/// `/var/run/docker.sock` if it exists).
fn configurations() -> Vec<Configuration> {
    let mut all = vec![
        Configuration {
            name: "samples only",
            env: vec![("FLICK_COLLECTOR__PROCESSES_INTERVAL_MS", "0".into())],
        },
        Configuration {
            name: "+ processes",
            env: vec![],
        },
    ];
    let socket = std::env::var("FLICK_BENCH_DOCKER_SOCKET").ok().or_else(|| {
        std::path::Path::new("/var/run/docker.sock")
            .exists()
            .then(|| "/var/run/docker.sock".to_owned())
    });
    match socket {
        Some(socket) => all.push(Configuration {
            name: "+ processes + containers",
            env: vec![("FLICK_COLLECTOR__DOCKER_SOCKET", socket)],
        }),
        None => println!(
            "no Docker socket (FLICK_BENCH_DOCKER_SOCKET, /var/run/docker.sock): containers not measured"
        ),
    }
    all
}

fn collector_start(configuration: &Configuration) -> Child {
    // A test-style prefix: the test kit sweeps such streams once they are ten minutes old.
    let prefix = flick_shared::testkit::unique_prefix();
    let mut command = Command::new(env!("CARGO_BIN_EXE_flick-collector"));
    command
        .env("FLICK_NATS__PREFIX", &prefix)
        .env("FLICK_STREAMS__METRICS_MAX_BYTES", "67108864")
        .env("FLICK_STREAMS__PROCESSES_MAX_BYTES", "67108864")
        .env("FLICK_SERVER_ID", "overhead-bench")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    for (key, value) in &configuration.env {
        command.env(key, value);
    }
    command.spawn().expect("start flick-collector")
}

fn scrape(port: u16) -> usize {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = Vec::new();
    stream.read_to_end(&mut body).unwrap();
    body.len()
}

/// node_exporter on a free port, when installed.
fn node_exporter_start() -> Option<(Child, u16)> {
    if !std::path::Path::new(NODE_EXPORTER).exists() {
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(NODE_EXPORTER)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    Some((child, port))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let secs = env_u64("FLICK_BENCH_SECS", 60);
    let runs = env_u64("FLICK_BENCH_RUNS", 1).max(1);
    let configurations = configurations();
    println!(
        "collector overhead: {runs} run(s) of {secs} s at 1 Hz, every configuration and node_exporter side by side"
    );
    let mut ours: Vec<(Vec<f64>, Vec<f64>)> = vec![(vec![], vec![]); configurations.len()];
    let (mut theirs_cpu, mut theirs_rss) = (vec![], vec![]);
    for run in 1..=runs {
        let mut children: Vec<Child> = configurations.iter().map(collector_start).collect();
        let exporter = node_exporter_start();
        let port = exporter.as_ref().map(|(_, port)| *port);
        children.extend(exporter.map(|(child, _)| child));
        std::thread::sleep(Duration::from_millis(500));
        let mut bytes = 0;
        let usage = measure(children, secs, || {
            if let Some(port) = port {
                bytes = scrape(port);
            }
        });
        for ((configuration, (cpu, rss)), usage) in
            configurations.iter().zip(ours.iter_mut()).zip(&usage)
        {
            println!(
                "  run {run}: flick-collector {:<26} {:6.3} % of one core, peak RSS {:6.1} MB",
                configuration.name,
                usage.cpu_percent,
                usage.peak_rss_kb as f64 / 1024.0
            );
            cpu.push(usage.cpu_percent);
            rss.push(usage.peak_rss_kb as f64 / 1024.0);
        }
        if let Some(theirs) = usage.get(configurations.len()) {
            println!(
                "  run {run}: node_exporter {:<28} {:6.3} % of one core, peak RSS {:6.1} MB ({} KB per scrape)",
                "",
                theirs.cpu_percent,
                theirs.peak_rss_kb as f64 / 1024.0,
                bytes / 1024
            );
            theirs_cpu.push(theirs.cpu_percent);
            theirs_rss.push(theirs.peak_rss_kb as f64 / 1024.0);
        }
    }
    let reference =
        (!theirs_cpu.is_empty()).then(|| (median(&mut theirs_cpu), median(&mut theirs_rss)));
    if let Some((tcpu, trss)) = reference {
        println!("node_exporter median: {tcpu:.3} % CPU, {trss:.1} MB peak RSS (scraped at 1 Hz)");
    } else {
        println!(
            "node_exporter not installed ({NODE_EXPORTER}): apt-get install prometheus-node-exporter to compare"
        );
    }
    for (configuration, (cpu, rss)) in configurations.iter().zip(ours.iter_mut()) {
        let (cpu, rss) = (median(cpu), median(rss));
        print!(
            "flick-collector {} median: {cpu:.3} % CPU, {rss:.1} MB peak RSS",
            configuration.name
        );
        match reference {
            Some((tcpu, trss)) => println!(
                " — ratio to node_exporter: CPU {:.2} (goal <= 0.25), RSS {:.2} (goal < 15 MB)",
                cpu / tcpu,
                rss / trss
            ),
            None => println!(" (goal < 15 MB)"),
        }
    }
}
