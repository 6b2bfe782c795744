//! Synthetic samples for many virtual servers: `flick-collector simulate --servers N`.
//!
//! Each virtual server has a stable id (a UUID v5 of `flick-sim-<n>`), a host name `sim-<n>`,
//! and figures that move like a real host's: CPU is a mean-reverting random walk around a
//! per-server baseline, memory drifts slowly, disks fill slowly, traffic is bursty. One server
//! in 25 has a CPU spike above 90 % for 90 s every 15 minutes, and `--hot N` pins the first N
//! servers at about 95 % CPU, so alerts fire in a demo or a test. Everything is deterministic
//! for a given seed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use flick_shared::shutdown::CancellationToken;
use flick_shared::wire::{
    DiskIo, InterfaceRates, LoadAverage, MemoryStats, MetricSample, MountUsage, NetworkRates,
    ServerId, SwapStats, Temperature, fullest_mount_percent, percent,
};

use crate::publisher::Publisher;
use crate::{Config, connect_jetstream, now_millis, outgoing};

/// A small, fast, seedable generator (SplitMix64): reproducible runs, no dependency.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[derive(Debug, Clone)]
struct VirtualServer {
    id: ServerId,
    hostname: String,
    cores: usize,
    cpu_base: f64,
    cpu: f64,
    memory: f64,
    disk: f64,
    net_base: f64,
    memory_total: u64,
    disk_total: u64,
    hot: bool,
    spiky: bool,
    phase_secs: i64,
    boot_secs: i64,
}

/// The virtual fleet and its random state.
#[derive(Debug, Clone)]
pub struct Simulation {
    servers: Vec<VirtualServer>,
    rng: Rng,
}

/// The id of virtual server `n`, the same in every run.
pub fn server_id(n: usize) -> ServerId {
    ServerId::derived_from(&format!("flick-sim-{n}"))
}

impl Simulation {
    pub fn new(servers: usize, hot: usize, seed: u64) -> Self {
        let mut rng = Rng(seed);
        let servers = (0..servers)
            .map(|n| {
                let cpu_base = 5.0 + 55.0 * rng.unit();
                VirtualServer {
                    id: server_id(n),
                    hostname: format!("sim-{n:04}"),
                    cores: [2, 4, 8, 16][(rng.next_u64() % 4) as usize],
                    cpu_base,
                    cpu: cpu_base,
                    memory: 25.0 + 45.0 * rng.unit(),
                    disk: 15.0 + 55.0 * rng.unit(),
                    net_base: 2_000.0 + 2_000_000.0 * rng.unit().powi(3),
                    memory_total: [4u64, 8, 16, 32, 64][(rng.next_u64() % 5) as usize] << 30,
                    disk_total: [50u64, 100, 250, 500, 1000][(rng.next_u64() % 5) as usize] << 30,
                    hot: n < hot,
                    spiky: n % 25 == 3,
                    phase_secs: (rng.next_u64() % 900) as i64,
                    boot_secs: 3_600 + (rng.next_u64() % 5_000_000) as i64,
                }
            })
            .collect();
        Self { servers, rng }
    }

    pub fn len(&self) -> usize {
        self.servers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    pub fn server_ids(&self) -> impl Iterator<Item = &ServerId> {
        self.servers.iter().map(|server| &server.id)
    }

    /// Advances server `index` by one interval and returns its sample for `at`.
    pub fn sample(&mut self, index: usize, at: DateTime<Utc>) -> MetricSample {
        let rng = &mut self.rng;
        let server = &mut self.servers[index];
        let spiking = server.spiky && (at.timestamp() + server.phase_secs).rem_euclid(900) < 90;
        let target = if server.hot {
            95.0
        } else if spiking {
            94.0
        } else {
            server.cpu_base
        };
        server.cpu =
            (server.cpu + 0.3 * (target - server.cpu) + 2.5 * rng.normal()).clamp(0.5, 100.0);
        if server.hot {
            server.cpu = server.cpu.clamp(91.0, 100.0);
        }
        server.memory = (server.memory + 0.2 * rng.normal()).clamp(5.0, 97.0);
        server.disk = (server.disk + 0.0005 * rng.unit()).min(98.0);
        let rx = (server.net_base * (0.5 + rng.unit()).powi(2)) as u64;
        let tx = (server.net_base * 0.4 * (0.5 + rng.unit()).powi(2)) as u64;

        let cpu_cores: Vec<f64> = (0..server.cores)
            .map(|_| round2((server.cpu + 8.0 * rng.normal()).clamp(0.0, 100.0)))
            .collect();
        let memory_used = (server.memory_total as f64 * server.memory / 100.0) as u64;
        let disk_used = (server.disk_total as f64 * server.disk / 100.0) as u64;
        // No reserved blocks: what is not used is available, so the mount's percent (and
        // `diskUsage`, computed from it as the real collector does) is `server.disk`.
        let mounts = vec![MountUsage {
            mount_point: "/".into(),
            device: "/dev/sda1".into(),
            file_system: "ext4".into(),
            total_bytes: server.disk_total,
            used_bytes: disk_used,
            available_bytes: Some(server.disk_total.saturating_sub(disk_used)),
        }];
        let disk_usage = round2(fullest_mount_percent(&mounts));
        let load = server.cpu / 100.0 * server.cores as f64;
        let boot = server.boot_secs;
        MetricSample {
            hostname: Some(server.hostname.clone()),
            cpu_cores,
            memory: Some(MemoryStats {
                total_bytes: server.memory_total,
                used_bytes: memory_used,
                available_bytes: server.memory_total - memory_used,
            }),
            swap: Some(SwapStats {
                total_bytes: 2 << 30,
                used_bytes: (server.memory.max(60.0) - 60.0) as u64 * (20 << 20),
            }),
            load_average: Some(LoadAverage {
                one: round2(load),
                five: round2(load * 0.9),
                fifteen: round2(load * 0.8),
            }),
            uptime_secs: Some(u64::try_from(boot + at.timestamp() % 10_000_000).unwrap_or(0)),
            process_count: Some(150 + (server.cores as u32) * 10),
            mounts,
            disk_io: Some(DiskIo {
                read_bytes_per_sec: (rng.unit() * 4_000_000.0) as u64,
                write_bytes_per_sec: (rng.unit() * 2_000_000.0) as u64,
            }),
            network: Some(NetworkRates {
                rx_bytes_per_sec: rx,
                tx_bytes_per_sec: tx,
            }),
            interfaces: vec![InterfaceRates {
                name: "eth0".into(),
                rx_bytes_per_sec: rx,
                tx_bytes_per_sec: tx,
            }],
            // A CPU package that warms with its load, as a busy server's does.
            temperatures: vec![Temperature {
                label: "coretemp Package id 0".into(),
                celsius: ((35.0 + 0.5 * server.cpu) * 10.0).round() / 10.0,
                max_celsius: None,
                critical_celsius: Some(100.0),
            }],
            ..MetricSample::minimal(
                server.id.clone(),
                at,
                round2(server.cpu),
                round2(percent(memory_used, server.memory_total)),
                disk_usage,
                rx + tx,
            )
        }
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// What `flick-collector simulate` was asked to do.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    pub servers: usize,
    /// The first `hot` servers hold CPU above 90 %.
    pub hot: usize,
    pub interval: Duration,
    /// Publish this many past intervals for every server first, as fast as NATS acknowledges.
    pub backfill: u64,
    /// Then publish live for this long; `None` runs until stopped (or, after a backfill, stops).
    pub duration: Option<Duration>,
    pub seed: u64,
    /// Publishes awaiting their acknowledgement at once.
    pub max_in_flight: usize,
}

/// What a simulation did, for the benchmark that ran it.
#[derive(Debug, Clone, Copy)]
pub struct SimulateReport {
    pub published: u64,
    pub elapsed: Duration,
}

impl SimulateReport {
    pub fn per_second(&self) -> f64 {
        self.published as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// How many samples may wait in the publisher beyond those in flight: enough to keep the
/// pipeline full, small enough to keep memory flat during a million-sample backfill.
const QUEUE_AHEAD: usize = 20_000;

/// Publishes the simulation through JetStream until done or `shutdown`.
pub async fn run(
    config: Config,
    options: SimulateOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<SimulateReport> {
    let subjects = config.nats.subjects();
    let (_client, js) = connect_jetstream(&config).await?;
    crate::ensure_metrics_stream(&config, &js).await?;
    let mut simulation = Simulation::new(options.servers, options.hot, options.seed);
    let mut publisher = Publisher::new(
        js,
        QUEUE_AHEAD + options.max_in_flight,
        options.max_in_flight,
    );
    let started = Instant::now();
    let n = simulation.len();
    tracing::info!(
        servers = n,
        backfill = options.backfill,
        "Simulation starting"
    );

    // Backfill: past intervals, oldest first, as fast as acks come back.
    let interval_ms = i64::try_from(options.interval.as_millis()).unwrap_or(1_000);
    let start_ms = now_millis().timestamp_millis()
        - interval_ms * i64::try_from(options.backfill).unwrap_or(0);
    let mut queued = 0u64;
    let total = options.backfill * n as u64;
    while queued < total && !shutdown.is_cancelled() {
        while queued < total && publisher.pending() < QUEUE_AHEAD {
            let step = i64::try_from(queued / n as u64).unwrap_or(0);
            let at = DateTime::from_timestamp_millis(start_ms + step * interval_ms)
                .unwrap_or_else(now_millis);
            let sample = simulation.sample((queued % n as u64) as usize, at);
            publisher.enqueue(outgoing(&subjects, &sample)?);
            queued += 1;
        }
        publisher.pump().await;
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = publisher.progress() => {}
        }
    }

    // Live: every interval, each server once, spread over ten slots to avoid one burst.
    let live_for = match (options.duration, options.backfill) {
        (Some(duration), _) => Some(duration),
        (None, 0) => None,
        (None, _) => Some(Duration::ZERO),
    };
    let live_until = live_for.map(|d| Instant::now() + d);
    let slots = 10usize.min(n.max(1));
    let mut ticker = tokio::time::interval(options.interval / slots as u32);
    let mut slot = 0usize;
    while live_until.is_none_or(|until| Instant::now() < until) && !shutdown.is_cancelled() && n > 0
    {
        publisher.pump().await;
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticker.tick() => {
                let at = now_millis();
                for index in (slot..n).step_by(slots) {
                    let sample = simulation.sample(index, at);
                    publisher.enqueue(outgoing(&subjects, &sample)?);
                }
                slot = (slot + 1) % slots;
            }
            () = publisher.progress() => {}
        }
    }

    let undelivered = publisher.flush(Duration::from_secs(30)).await;
    if undelivered > 0 {
        tracing::warn!(
            undelivered,
            "Simulation stopped with unacknowledged samples"
        );
    }
    Ok(SimulateReport {
        published: publisher.delivered(),
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use flick_shared::wire::{Payload, decode};

    #[test]
    fn samples_are_valid_stable_and_reproducible() {
        let at = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("valid");
        let mut a = Simulation::new(30, 2, 7);
        let mut b = Simulation::new(30, 2, 7);
        for step in 0..200 {
            let t = at + chrono::Duration::seconds(step);
            for index in 0..30 {
                let sample = a.sample(index, t);
                assert_eq!(sample, b.sample(index, t));
                assert!(sample.check(t).is_ok(), "{sample:?}");
                let json = serde_json::to_vec(&sample).expect("serialises");
                decode::<MetricSample>(&json, t).expect("decodes");
                if index < 2 {
                    assert!(
                        sample.cpu_usage > 90.0,
                        "hot server below 90: {}",
                        sample.cpu_usage
                    );
                }
            }
        }
        assert_eq!(a.server_ids().next(), Some(&server_id(0)));
    }

    #[test]
    fn most_servers_stay_below_the_thresholds_most_of_the_time() {
        let at = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("valid");
        let mut sim = Simulation::new(100, 0, 1);
        let mut above = 0;
        for step in 0..600 {
            for index in 0..100 {
                if sim
                    .sample(index, at + chrono::Duration::seconds(step))
                    .cpu_usage
                    > 90.0
                {
                    above += 1;
                }
            }
        }
        let share = f64::from(above) / 60_000.0;
        assert!(
            share > 0.0 && share < 0.05,
            "share of samples above 90 %: {share}"
        );
    }
}
