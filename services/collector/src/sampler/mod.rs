//! Reads this host's figures with sysinfo and turns them into a [`MetricSample`].
//!
//! The `System`, `Disks`, `Networks` and `Components` objects live as long as the collector
//! and only what is reported is refreshed each time: CPU usage, memory, the list of mounted
//! filesystems (their space comes from `statvfs`, see [`filesystems`]), interface counters and
//! temperature sensors. Disk I/O comes from `/proc/diskstats` ([`diskstats`]). Process details
//! are never read (that is the expensive part of sysinfo); the process count comes from
//! listing `/proc`.

mod diskstats;
mod filesystems;
mod rates;
mod temperatures;

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sysinfo::{
    Components, CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, System,
};

use flick_shared::wire::{
    DiskIo, InterfaceRates, LoadAverage, MemoryStats, MetricSample, NetworkRates, ServerId,
    SwapStats, fullest_mount_percent, percent,
};

use filesystems::{Mount, Space, real_filesystems};
use rates::CounterRates;

/// How often the list of temperature sensors is read again, so that sensors whose driver
/// loads after the collector started (or a hot-plugged NVMe disk) appear; in between only
/// the known sensors' values are read.
const SENSOR_RESCAN: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
#[error("cannot read system metrics: {0}")]
pub struct SamplerError(String);

pub struct Sampler {
    server_id: ServerId,
    hostname: String,
    system: System,
    disks: Disks,
    networks: Networks,
    components: Components,
    last_sensor_scan: Instant,
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

/// Only the list of mounts: their space is read with `statvfs` (sysinfo's lacks the free
/// blocks) and the I/O counters from `/proc/diskstats` (sysinfo's read 0 in a container).
fn disk_refresh() -> DiskRefreshKind {
    DiskRefreshKind::nothing()
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
        let components =
            Components::new_with_refreshed_list().map_err(|err| SamplerError(err.to_string()))?;
        let mut sampler = Self {
            server_id,
            hostname,
            system,
            disks,
            networks,
            components,
            last_sensor_scan: Instant::now(),
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

        // A host without the file (not Linux's procfs) reports no I/O rather than failing.
        let devices = diskstats::read(Path::new(diskstats::PATH)).unwrap_or_else(|err| {
            tracing::debug!(error = %err, path = diskstats::PATH, "Cannot read disk I/O counters");
            Vec::new()
        });
        let readings = devices
            .iter()
            .map(|d| (d.name.as_str(), d.read_bytes, d.written_bytes));
        let disk_rates = self.disk_io.update(readings, elapsed);
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

    /// The sensors' current readings; the list itself is read again every [`SENSOR_RESCAN`].
    fn read_temperatures(&mut self) -> Vec<flick_shared::wire::Temperature> {
        if self.last_sensor_scan.elapsed() >= SENSOR_RESCAN {
            self.components.refresh(true);
            self.last_sensor_scan = Instant::now();
        } else {
            for component in self.components.iter_mut() {
                component.refresh();
            }
        }
        temperatures::from_readings(self.components.iter().map(|c| temperatures::Reading {
            label: c.label(),
            celsius: c.temperature(),
            max_celsius: c.max(),
            critical_celsius: c.critical(),
        }))
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

        // statvfs on the mount point as this process sees it (`/host/boot` in a container),
        // before `under_root` renames it to the host's name. A mount that cannot be read (a
        // FUSE mount of another user) is left out rather than reported empty.
        let mut mounts: Vec<Mount> = (&self.disks)
            .into_iter()
            .filter_map(|disk| {
                let space = Space::of(disk.mount_point())
                    .inspect_err(|err| {
                        tracing::debug!(mount = ?disk.mount_point(), error = %err, "Cannot read a mount's space");
                    })
                    .ok()?;
                Some(Mount {
                    device: disk.name().to_string_lossy().into_owned(),
                    mount_point: disk.mount_point().to_string_lossy().into_owned(),
                    file_system: disk.file_system().to_string_lossy().into_owned(),
                    space,
                })
            })
            .collect();
        if let Some(root) = &self.host_root {
            mounts = filesystems::under_root(mounts, root);
        }
        let mounts = real_filesystems(mounts);
        let temperatures = self.read_temperatures();

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
        let disk_usage = round2(fullest_mount_percent(&mounts));

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
            temperatures,
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::process::Command;

    use super::*;

    fn sampler(host_root: Option<&str>) -> Sampler {
        Sampler::new(
            ServerId::parse("sampler-test").expect("valid id"),
            "test-host".into(),
            host_root.map(str::to_owned),
        )
        .expect("sysinfo reads this host")
    }

    /// `df --output=pcent <mount>`: df's own percent, rounded up as df rounds it.
    fn df_percent(mount_point: &str) -> f64 {
        let output = Command::new("df")
            .args(["--output=pcent", mount_point])
            .output()
            .expect("df runs");
        assert!(output.status.success(), "df {mount_point}: {output:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        text.lines()
            .nth(1)
            .and_then(|line| line.trim().trim_end_matches('%').parse().ok())
            .unwrap_or_else(|| panic!("df's percent of {mount_point}: {text:?}"))
    }

    #[test]
    fn disk_percent_of_every_real_filesystem_is_dfs() {
        let sample = sampler(None).sample(Utc::now());
        assert!(
            sample.mounts.iter().any(|m| m.mount_point == "/"),
            "{:?}",
            sample.mounts
        );
        for mount in &sample.mounts {
            let ours = mount.usage_percent();
            let df = df_percent(&mount.mount_point);
            assert!(
                (ours - df).abs() <= 1.0,
                "{}: collector {ours:.2} %, df {df} %",
                mount.mount_point
            );
            let total_minus_available = percent(
                mount.total_bytes - mount.available_bytes.unwrap_or(0),
                mount.total_bytes,
            );
            eprintln!(
                "{}: collector {ours:.2} %, df {df} %, total - available {total_minus_available:.2} %",
                mount.mount_point
            );
        }
        let fullest = sample
            .mounts
            .iter()
            .map(|m| df_percent(&m.mount_point))
            .fold(0.0, f64::max);
        assert!(
            (sample.disk_usage - fullest).abs() <= 1.0,
            "diskUsage {} is the fullest mount's df percent {fullest}",
            sample.disk_usage
        );
    }

    #[test]
    fn under_a_host_root_disk_io_is_the_hosts_real_io() {
        // A host root of `/`: the path a containerised collector takes, on this host's disks.
        let mut sampler = sampler(Some("/"));
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("temporary directory");
        let path = dir.path().join("io");
        let block = vec![0x5a_u8; 1 << 20];
        let mut file = std::fs::File::create(&path).expect("create");
        for _ in 0..8 {
            file.write_all(&block).expect("write");
        }
        file.sync_all().expect("fsync: the bytes reach the disk");
        // Drop the file's (now clean) pages from the cache, so reading it back reads the disk.
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).expect("fadvise");
        drop(file);
        let mut read_back = Vec::new();
        std::fs::File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut read_back))
            .expect("read back");
        assert_eq!(read_back.len(), 8 << 20);
        std::thread::sleep(Duration::from_millis(100));

        let sample = sampler.sample(Utc::now());
        let io = sample.disk_io.expect("disk I/O");
        assert!(io.write_bytes_per_sec > 0, "{io:?}");
        assert!(io.read_bytes_per_sec > 0, "{io:?}");
        assert!(
            sample.mounts.iter().any(|m| m.mount_point == "/"),
            "host root `/` keeps the host's names: {:?}",
            sample.mounts
        );
    }

    #[test]
    fn temperatures_are_absent_or_real_readings() {
        let mut sampler = sampler(None);
        let sample = sampler.sample(Utc::now());
        let json = serde_json::to_value(&sample).expect("serialises");
        if sample.temperatures.is_empty() {
            // No sensor on this host (the usual VM): no field at all, not an empty list or 0.
            assert!(json.get("temperatures").is_none(), "{json}");
        } else {
            for sensor in &sample.temperatures {
                assert!(!sensor.label.is_empty());
                assert!(
                    (-40.0..=150.0).contains(&sensor.celsius),
                    "{}: {} °C",
                    sensor.label,
                    sensor.celsius
                );
            }
        }
    }
}
