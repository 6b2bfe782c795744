//! `MetricSample`: one server's figures at one instant, published every collection interval on
//! `<prefix>.metrics.<serverId>`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    ContainerUsage, Payload, ServerId, check_no_nul, check_not_in_future, default_version,
};

/// One sample. The first seven fields are the original protocol's and are required; every other
/// field is optional detail, so a script can publish a minimal sample and an older consumer
/// ignores what it does not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSample {
    #[serde(default = "default_version")]
    pub v: u32,
    pub server_id: ServerId,
    /// When the sample was taken (RFC 3339, UTC, milliseconds).
    #[serde(with = "super::timestamp")]
    pub timestamp: DateTime<Utc>,
    /// Busy time of all cores, percent (0..=100).
    pub cpu_usage: f64,
    /// Memory in use (total minus available), percent of total.
    pub memory_usage: f64,
    /// Usage of the fullest real filesystem, percent as `df` computes it
    /// ([`MountUsage::usage_percent`]): the figure a "disk full" alert needs.
    pub disk_usage: f64,
    /// Network throughput, received plus transmitted, bytes per second, loopback excluded.
    pub network_usage: u64,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Busy percent of each logical core, in the kernel's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_cores: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_average: Option<LoadAverage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_count: Option<u32>,
    /// Real filesystems only (no tmpfs, proc, overlay…), one entry per device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_io: Option<DiskIo>,
    /// `networkUsage` split into its two directions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkRates>,
    /// Per interface, loopback excluded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceRates>,
    /// Temperature sensors; absent (never empty, never zero) where the host has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub temperatures: Vec<Temperature>,
    /// Every container of the host's Docker or Podman engine (running and stopped), on the first
    /// sample after each refresh of the list (`collector.containers_interval_ms`). Absent: no
    /// new list since the previous sample, or no engine; `[]`: the engine has no containers.
    /// Readers keep the newest list they saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<Vec<ContainerUsage>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SwapStats {
    pub total_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadAverage {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// One filesystem, in `df`'s terms. A filesystem keeps blocks that are neither used nor
/// available to ordinary users (ext4 reserves 5 % for root, and more is unavailable on some
/// filesystems), so `total` is more than `used + available`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountUsage {
    pub mount_point: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file_system: String,
    /// The filesystem's size (`statvfs` blocks × fragment size).
    pub total_bytes: u64,
    /// In use: total minus free blocks, as `df`'s "Used".
    pub used_bytes: u64,
    /// What an ordinary (non-root) writer can still use, as `df`'s "Avail". Absent from
    /// collectors older than this field, whose `usedBytes` was total minus available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
}

impl MountUsage {
    /// Used percent as `df` shows it: used / (used + available), the share of the space a
    /// non-root writer can reach that is taken, so a disk alert fires when writers are about
    /// to fail, not when the reserved blocks make an empty disk look full. Every consumer
    /// (the collector's `diskUsage`, the dashboard through its mirror in `lib/samples.ts`)
    /// computes the figure this way.
    ///
    /// A mount without `availableBytes` (an older collector) falls back to used / total,
    /// which for those collectors is the figure they reported themselves.
    pub fn usage_percent(&self) -> f64 {
        match self.available_bytes {
            Some(available) => percent(self.used_bytes, self.used_bytes.saturating_add(available)),
            None => percent(self.used_bytes, self.total_bytes),
        }
    }
}

/// The fullest mount's [`MountUsage::usage_percent`], 0 without mounts: `diskUsage`, the
/// headline figure, since a single nearly full filesystem is what a disk alert must catch
/// and an average over a large empty data disk would hide it.
pub fn fullest_mount_percent(mounts: &[MountUsage]) -> f64 {
    mounts
        .iter()
        .map(MountUsage::usage_percent)
        .fold(0.0, f64::max)
}

/// One temperature sensor (a hwmon input on Linux), degrees Celsius.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Temperature {
    /// The sensor's name as `sensors` would print it (`coretemp Package id 0`).
    pub label: String,
    pub celsius: f64,
    /// The highest this sensor has read (the kernel's record where it keeps one, otherwise
    /// the highest the collector has seen since it started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_celsius: Option<f64>,
    /// The temperature at which the hardware protects itself (throttles or halts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_celsius: Option<f64>,
}

/// The hottest sensor's reading, `None` without sensors: what a temperature rule watches.
pub fn hottest_celsius(temperatures: &[Temperature]) -> Option<f64> {
    temperatures
        .iter()
        .map(|t| t.celsius)
        .fold(None, |hottest, c| {
            Some(hottest.map_or(c, |h: f64| h.max(c)))
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskIo {
    pub read_bytes_per_sec: u64,
    pub write_bytes_per_sec: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRates {
    pub rx_bytes_per_sec: u64,
    pub tx_bytes_per_sec: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterfaceRates {
    pub name: String,
    pub rx_bytes_per_sec: u64,
    pub tx_bytes_per_sec: u64,
}

/// `part` as a percent of `whole`, 0 when `whole` is 0, clamped to 0..=100.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64 * 100.0).clamp(0.0, 100.0)
    }
}

impl MetricSample {
    /// A sample with only the required fields, the smallest thing a publisher may send.
    pub fn minimal(
        server_id: ServerId,
        timestamp: DateTime<Utc>,
        cpu_usage: f64,
        memory_usage: f64,
        disk_usage: f64,
        network_usage: u64,
    ) -> Self {
        Self {
            v: super::WIRE_VERSION,
            server_id,
            timestamp,
            cpu_usage,
            memory_usage,
            disk_usage,
            network_usage,
            hostname: None,
            cpu_cores: Vec::new(),
            memory: None,
            swap: None,
            load_average: None,
            uptime_secs: None,
            process_count: None,
            mounts: Vec::new(),
            disk_io: None,
            network: None,
            interfaces: Vec::new(),
            temperatures: Vec::new(),
            containers: None,
        }
    }

    /// The `Nats-Msg-Id` of this sample: `<serverId>:<unix-millis>`, so JetStream drops a
    /// sample published twice within the stream's duplicate window.
    pub fn message_id(&self) -> String {
        format!("{}:{}", self.server_id, self.timestamp.timestamp_millis())
    }
}

/// What a sensor can plausibly read: absolute zero to well past any chip's critical point.
/// Outside it a reading is garbage that no chart or rule should take.
const TEMPERATURE_CELSIUS: std::ops::RangeInclusive<f64> = -273.15..=1000.0;

fn check_percent(name: &str, value: f64) -> Result<(), String> {
    if value.is_finite() && (0.0..=100.0).contains(&value) {
        Ok(())
    } else {
        Err(format!("{name} {value} is not a percentage in 0..=100"))
    }
}

impl Payload for MetricSample {
    fn version(&self) -> u32 {
        self.v
    }

    fn check(&self, now: DateTime<Utc>) -> Result<(), String> {
        check_percent("cpuUsage", self.cpu_usage)?;
        check_percent("memoryUsage", self.memory_usage)?;
        check_percent("diskUsage", self.disk_usage)?;
        for (core, usage) in self.cpu_cores.iter().enumerate() {
            check_percent(&format!("cpuCores[{core}]"), *usage)?;
        }
        if let Some(load) = self.load_average {
            for (name, value) in [
                ("one", load.one),
                ("five", load.five),
                ("fifteen", load.fifteen),
            ] {
                if !(value.is_finite() && value >= 0.0) {
                    return Err(format!(
                        "loadAverage.{name} {value} is not a non-negative number"
                    ));
                }
            }
        }
        if let Some(hostname) = &self.hostname {
            check_no_nul("hostname", hostname)?;
        }
        for mount in &self.mounts {
            check_no_nul("mounts.mountPoint", &mount.mount_point)?;
            check_no_nul("mounts.device", &mount.device)?;
            check_no_nul("mounts.fileSystem", &mount.file_system)?;
        }
        for interface in &self.interfaces {
            check_no_nul("interfaces.name", &interface.name)?;
        }
        for sensor in &self.temperatures {
            check_no_nul("temperatures.label", &sensor.label)?;
            for (name, value) in [
                ("celsius", Some(sensor.celsius)),
                ("maxCelsius", sensor.max_celsius),
                ("criticalCelsius", sensor.critical_celsius),
            ] {
                if let Some(value) = value.filter(|v| !TEMPERATURE_CELSIUS.contains(v)) {
                    return Err(format!(
                        "temperatures.{name} {value} is not a temperature in -273..=1000 °C"
                    ));
                }
            }
        }
        if let Some(containers) = &self.containers {
            super::containers::check_containers(containers)?;
        }
        check_not_in_future("timestamp", self.timestamp, now)
    }
}

impl super::ServerPayload for MetricSample {
    const KIND: crate::subjects::StreamKind = crate::subjects::StreamKind::Metrics;
    fn server_id(&self) -> &ServerId {
        &self.server_id
    }
}

#[cfg(test)]
mod tests {
    use super::super::{WireError, decode};
    use super::*;
    use chrono::TimeZone;

    fn full_sample() -> MetricSample {
        MetricSample {
            hostname: Some("web-01".into()),
            cpu_cores: vec![40.0, 50.5],
            memory: Some(MemoryStats {
                total_bytes: 8 << 30,
                used_bytes: 6 << 30,
                available_bytes: 2 << 30,
            }),
            swap: Some(SwapStats {
                total_bytes: 1 << 30,
                used_bytes: 0,
            }),
            load_average: Some(LoadAverage {
                one: 0.5,
                five: 0.25,
                fifteen: 0.125,
            }),
            uptime_secs: Some(86_400),
            process_count: Some(212),
            mounts: vec![MountUsage {
                mount_point: "/".into(),
                device: "/dev/vda".into(),
                file_system: "ext4".into(),
                total_bytes: 100,
                used_bytes: 65,
                available_bytes: Some(30),
            }],
            disk_io: Some(DiskIo {
                read_bytes_per_sec: 4096,
                write_bytes_per_sec: 8192,
            }),
            network: Some(NetworkRates {
                rx_bytes_per_sec: 1000,
                tx_bytes_per_sec: 24,
            }),
            interfaces: vec![InterfaceRates {
                name: "eth0".into(),
                rx_bytes_per_sec: 1000,
                tx_bytes_per_sec: 24,
            }],
            temperatures: vec![Temperature {
                label: "coretemp Package id 0".into(),
                celsius: 48.5,
                max_celsius: Some(71.0),
                critical_celsius: Some(100.0),
            }],
            ..MetricSample::minimal(
                ServerId::parse("server-id").expect("valid id"),
                Utc.with_ymd_and_hms(2024, 3, 9, 12, 0, 0)
                    .single()
                    .expect("valid time"),
                45.2,
                78.5,
                65.0,
                1024,
            )
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 9, 12, 0, 1)
            .single()
            .expect("valid time")
    }

    #[test]
    fn round_trips_with_every_field() {
        let sample = full_sample();
        let json = serde_json::to_vec(&sample).expect("serialises");
        let back: MetricSample = decode(&json, now()).expect("decodes");
        assert_eq!(back, sample);
    }

    #[test]
    fn speaks_the_original_protocol() {
        let json = serde_json::to_value(full_sample()).expect("serialises");
        assert_eq!(json["v"], 1);
        assert_eq!(json["serverId"], "server-id");
        assert_eq!(json["cpuUsage"], 45.2);
        assert_eq!(json["memoryUsage"], 78.5);
        assert_eq!(json["diskUsage"], 65.0);
        assert_eq!(json["networkUsage"], 1024);
        assert_eq!(json["timestamp"], "2024-03-09T12:00:00.000Z");
        assert_eq!(json["loadAverage"]["fifteen"], 0.125);
        assert_eq!(json["interfaces"][0]["rxBytesPerSec"], 1000);
    }

    #[test]
    fn minimal_sample_is_accepted() {
        let json = br#"{"v":1,"serverId":"server-id","cpuUsage":45.2,"memoryUsage":78.5,
            "diskUsage":65.0,"networkUsage":1024,"timestamp":"2024-03-09T12:00:00Z"}"#;
        let sample: MetricSample = decode(json, now()).expect("minimal sample decodes");
        assert_eq!(sample.server_id.as_str(), "server-id");
        assert!(sample.cpu_cores.is_empty() && sample.memory.is_none());
        // And what we write for it is minimal again: no nulls, no empty arrays.
        let written = serde_json::to_value(&sample).expect("serialises");
        assert_eq!(written.as_object().map(|o| o.len()), Some(7), "{written}");
    }

    #[test]
    fn unknown_fields_are_tolerated() {
        let json = br#"{"v":1,"serverId":"s1","cpuUsage":1,"memoryUsage":2,"diskUsage":3,
            "networkUsage":4,"timestamp":"2024-03-09T13:00:00+01:00",
            "gpuUsage":12.5,"memory":{"totalBytes":1,"usedBytes":1,"availableBytes":0,"cached":9}}"#;
        let sample: MetricSample = decode(json, now()).expect("unknown fields ignored");
        assert_eq!(
            sample.timestamp,
            full_sample().timestamp,
            "offset converted to UTC"
        );
        assert_eq!(sample.memory.map(|m| m.total_bytes), Some(1));
    }

    #[test]
    fn refuses_what_a_consumer_must_not_store() {
        let base = serde_json::to_value(full_sample()).expect("serialises");
        let cases: [(&str, serde_json::Value, &str); 8] = [
            ("v", 2.into(), "unsupported_version"),
            ("hostname", "web\u{0}01".into(), "invalid"),
            (
                "interfaces",
                serde_json::json!([{"name": "eth\u{0}", "rxBytesPerSec": 1, "txBytesPerSec": 1}]),
                "invalid",
            ),
            ("cpuUsage", 100.5.into(), "invalid"),
            ("memoryUsage", (-1.0).into(), "invalid"),
            ("timestamp", "2024-03-09T13:00:00Z".into(), "invalid"),
            ("timestamp", "yesterday".into(), "malformed_json"),
            ("serverId", "a.b".into(), "malformed_json"),
        ];
        for (field, value, kind) in cases {
            let mut json = base.clone();
            json[field] = value;
            let bytes = serde_json::to_vec(&json).expect("serialises");
            let err = decode::<MetricSample>(&bytes, now()).expect_err(field);
            assert_eq!(err.kind(), kind, "{field}: {err}");
        }
        assert!(matches!(
            decode::<MetricSample>(b"not json", now()),
            Err(WireError::Json(_))
        ));
        let missing = br#"{"v":1,"serverId":"s1","cpuUsage":1}"#;
        assert_eq!(
            decode::<MetricSample>(missing, now())
                .map_err(|e| e.kind())
                .err(),
            Some("malformed_json")
        );
    }

    #[test]
    fn disk_percent_is_dfs_used_over_used_plus_available() {
        // 1000 blocks, 400 free of which 50 reserved for root: df shows 600 used, 350 available
        // and 64 % (600 / 950), where used / total would say 60 % and (total - available) /
        // total 65 %.
        let mount = |available_bytes| MountUsage {
            mount_point: "/".into(),
            device: String::new(),
            file_system: String::new(),
            total_bytes: 1_000,
            used_bytes: 600,
            available_bytes,
        };
        assert!((mount(Some(350)).usage_percent() - 600.0 / 950.0 * 100.0).abs() < 1e-9);
        // An older collector's mount (used = total - available) keeps its own figure.
        assert!((mount(None).usage_percent() - 60.0).abs() < 1e-9);
        // A full disk for ordinary writers is 100 % even with reserved blocks left.
        let full = MountUsage {
            used_bytes: 950,
            ..mount(Some(0))
        };
        assert_eq!(full.usage_percent(), 100.0);
        let empty = MountUsage {
            used_bytes: 0,
            ..mount(Some(0))
        };
        assert_eq!(empty.usage_percent(), 0.0);
        let data = MountUsage {
            mount_point: "/data".into(),
            ..mount(Some(50))
        };
        let mounts = [mount(Some(350)), data];
        assert!((fullest_mount_percent(&mounts) - 600.0 / 650.0 * 100.0).abs() < 1e-9);
        assert_eq!(fullest_mount_percent(&[]), 0.0);
    }

    #[test]
    fn mounts_and_temperatures_of_older_collectors_decode() {
        let json = br#"{"v":1,"serverId":"s1","cpuUsage":1,"memoryUsage":2,"diskUsage":3,
            "networkUsage":4,"timestamp":"2024-03-09T12:00:00Z",
            "mounts":[{"mountPoint":"/","totalBytes":100,"usedBytes":65}]}"#;
        let sample: MetricSample = decode(json, now()).expect("an older collector's sample");
        assert_eq!(sample.mounts[0].available_bytes, None);
        assert!(sample.temperatures.is_empty());
        let written = serde_json::to_value(&sample).expect("serialises");
        assert!(written.get("temperatures").is_none(), "absent, not empty");
        assert!(written["mounts"][0].get("availableBytes").is_none());
    }

    #[test]
    fn temperatures_are_camel_case_and_checked() {
        let json = serde_json::to_value(full_sample()).expect("serialises");
        assert_eq!(json["mounts"][0]["availableBytes"], 30);
        assert_eq!(
            json["temperatures"][0],
            serde_json::json!({"label": "coretemp Package id 0", "celsius": 48.5,
                "maxCelsius": 71.0, "criticalCelsius": 100.0})
        );
        assert_eq!(hottest_celsius(&full_sample().temperatures), Some(48.5));
        assert_eq!(hottest_celsius(&[]), None);
        for (sensor, kind) in [
            (
                serde_json::json!({"label": "a\u{0}", "celsius": 40}),
                "invalid",
            ),
            (
                serde_json::json!({"label": "a", "celsius": 4000}),
                "invalid",
            ),
            (
                serde_json::json!({"label": "a", "celsius": 40, "criticalCelsius": -300}),
                "invalid",
            ),
            (serde_json::json!({"label": "a"}), "malformed_json"),
        ] {
            let mut sample = json.clone();
            sample["temperatures"] = serde_json::json!([sensor]);
            let bytes = serde_json::to_vec(&sample).expect("serialises");
            let err = decode::<MetricSample>(&bytes, now()).expect_err("refused");
            assert_eq!(err.kind(), kind, "{sensor}: {err}");
        }
    }

    #[test]
    fn message_id_is_server_and_millis() {
        assert_eq!(full_sample().message_id(), "server-id:1709985600000");
    }
}
