//! Reads this host's figures with sysinfo and turns them into a [`MetricSample`].
//!
//! The `System`, `Disks` and `Networks` objects live as long as the collector and only what is
//! reported is refreshed each time: CPU usage, memory, mounted filesystems with their I/O
//! counters, and interface counters. Process details are never read (that is the expensive
//! part of sysinfo); the process count comes from listing `/proc`.

mod filesystems;
mod rates;

use std::time::Instant;

use chrono::{DateTime, Utc};
use sysinfo::{CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, System};

use flick_shared::wire::{
    DiskIo, InterfaceRates, LoadAverage, MemoryStats, MetricSample, NetworkRates, ServerId,
    SwapStats, percent,
};

use filesystems::{Mount, fullest_percent, real_filesystems};
use rates::CounterRates;

#[derive(Debug, thiserror::Error)]
#[error("cannot read system metrics: {0}")]
pub struct SamplerError(String);

pub struct Sampler {
    server_id: ServerId,
    hostname: String,
    system: System,
    disks: Disks,
    networks: Networks,
    disk_io: CounterRates,
    interfaces: CounterRates,
    last_reading: Instant,
    /// The host's root when sampling a host from a container (`collector.host_root`).
    host_root: Option<String>,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("server_id", &self.server_id)
            .finish_non_exhaustive()
    }
}

fn disk_refresh() -> DiskRefreshKind {
    DiskRefreshKind::nothing().with_storage().with_io_usage()
}

impl Sampler {
    /// Takes a first reading, so the first [`Sampler::sample`] (one interval later) already has
    /// CPU usage and rates to report.
    pub fn new(
        server_id: ServerId,
        hostname: String,
        host_root: Option<String>,
    ) -> Result<Self, SamplerError> {
        let mut system = System::new().map_err(|err| SamplerError(err.to_string()))?;
        system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
        system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
        let disks = Disks::new_with_refreshed_list_specifics(disk_refresh())
            .map_err(|err| SamplerError(err.to_string()))?;
        let networks =
            Networks::new_with_refreshed_list().map_err(|err| SamplerError(err.to_string()))?;
        let mut sampler = Self {
            server_id,
            hostname,
            system,
            disks,
            networks,
            disk_io: CounterRates::default(),
            interfaces: CounterRates::default(),
            last_reading: Instant::now(),
            host_root,
        };
        sampler.read_counters();
        Ok(sampler)
    }

    pub fn server_id(&self) -> &ServerId {
        &self.server_id
    }

    /// Counter readings since the previous call, as rates over the real elapsed time.
    fn read_counters(&mut self) -> (DiskIo, Vec<InterfaceRates>) {
        let now = Instant::now();
        let elapsed = now - self.last_reading;
        self.last_reading = now;

        // One entry per block device: several mounts of one device share its counters.
        let mut devices: Vec<(&str, u64, u64)> = Vec::new();
        for disk in &self.disks {
            let Some(name) = disk.name().to_str().filter(|n| n.starts_with("/dev/")) else {
                continue;
            };
            if devices.iter().all(|(seen, _, _)| *seen != name) {
                let usage = disk.usage();
                devices.push((name, usage.total_read_bytes, usage.total_written_bytes));
            }
        }
        let disk_rates = self.disk_io.update(devices, elapsed);
        let disk_io = DiskIo {
            read_bytes_per_sec: disk_rates.iter().map(|(_, read, _)| read).sum(),
            write_bytes_per_sec: disk_rates.iter().map(|(_, _, written)| written).sum(),
        };

        let readings = self
            .networks
            .iter()
            .filter_map(|(name, data)| Some((name.to_str()?, data)))
            .filter(|(name, _)| *name != "lo")
            .map(|(name, data)| (name, data.total_received(), data.total_transmitted()));
        let mut interfaces: Vec<InterfaceRates> = self
            .interfaces
            .update(readings, elapsed)
            .into_iter()
            .map(|(name, rx, tx)| InterfaceRates {
                name,
                rx_bytes_per_sec: rx,
                tx_bytes_per_sec: tx,
            })
            .collect();
        interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        (disk_io, interfaces)
    }

    /// Refreshes what is reported and returns the sample for `at`.
    pub fn sample(&mut self, at: DateTime<Utc>) -> MetricSample {
        self.system
            .refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
        self.disks.refresh_specifics(true, disk_refresh());
        self.networks.refresh(true);
        let (disk_io, interfaces) = self.read_counters();

        let mut mounts: Vec<Mount> = (&self.disks)
            .into_iter()
            .map(|disk| Mount {
                device: disk.name().to_string_lossy().into_owned(),
                mount_point: disk.mount_point().to_string_lossy().into_owned(),
                file_system: disk.file_system().to_string_lossy().into_owned(),
                total_bytes: disk.total_space(),
                available_bytes: disk.available_space(),
            })
            .collect();
        if let Some(root) = &self.host_root {
            mounts = filesystems::under_root(mounts, root);
        }
        let mounts = real_filesystems(mounts);

        let total = self.system.total_memory();
        let available = self.system.available_memory();
        let memory = MemoryStats {
            total_bytes: total,
            used_bytes: total.saturating_sub(available),
            available_bytes: available,
        };
        let network = NetworkRates {
            rx_bytes_per_sec: interfaces.iter().map(|i| i.rx_bytes_per_sec).sum(),
            tx_bytes_per_sec: interfaces.iter().map(|i| i.tx_bytes_per_sec).sum(),
        };
        let clamp = |usage: f32| f64::from(usage).clamp(0.0, 100.0);
        let disk_usage = round2(fullest_percent(&mounts));

        MetricSample {
            hostname: Some(self.hostname.clone()),
            cpu_cores: self
                .system
                .cpus()
                .iter()
                .map(|cpu| round2(clamp(cpu.usage())))
                .collect(),
            memory: Some(memory),
            swap: Some(SwapStats {
                total_bytes: self.system.total_swap(),
                used_bytes: self.system.used_swap(),
            }),
            load_average: System::load_average().ok().map(|load| LoadAverage {
                one: load.one,
                five: load.five,
                fifteen: load.fifteen,
            }),
            uptime_secs: System::uptime().ok(),
            process_count: process_count(),
            mounts,
            disk_io: Some(disk_io),
            network: Some(network),
            interfaces,
            ..MetricSample::minimal(
                self.server_id.clone(),
                at,
                round2(clamp(self.system.global_cpu_usage())),
                round2(percent(memory.used_bytes, memory.total_bytes)),
                disk_usage,
                network.rx_bytes_per_sec + network.tx_bytes_per_sec,
            )
        }
    }
}

/// Two decimals are more than any dashboard shows and keep the JSON short.
fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Processes on the host: the numeric entries of `/proc`. Listing a directory costs far less
/// than sysinfo's full process refresh, which reads several files per process.
fn process_count() -> Option<u32> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let count = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .as_encoded_bytes()
                .iter()
                .all(u8::is_ascii_digit)
        })
        .count();
    u32::try_from(count).ok()
}
