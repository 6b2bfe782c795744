//! `ProcessList`: what is eating a host, published every `collector.processes_interval_ms` on
//! `<prefix>.processes.<serverId>` apart from the per-second samples, so those stay small. The
//! alerter attaches the newest list of a server to each firing event ("CPU 97 %: postgres
//! 61 %, java 22 %").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Payload, ServerId, check_no_nul, check_not_in_future, default_version};

/// The longest list either ranking may carry.
pub const MAX_TOP_PROCESSES: usize = 100;
/// The longest command line kept (characters); longer ones are cut with `…`.
pub const MAX_COMMAND_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessList {
    #[serde(default = "default_version")]
    pub v: u32,
    pub server_id: ServerId,
    /// When the list was taken (RFC 3339, UTC, milliseconds).
    #[serde(with = "super::timestamp")]
    pub timestamp: DateTime<Utc>,
    /// The busiest processes first.
    #[serde(default)]
    pub by_cpu: Vec<ProcessUsage>,
    /// The largest resident sets first.
    #[serde(default)]
    pub by_memory: Vec<ProcessUsage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessUsage {
    pub pid: u32,
    pub name: String,
    /// The owner's user name (the uid as text where it has no name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Percent of the whole host's CPU (all cores: 0..=100), like `cpuUsage`.
    pub cpu_percent: f64,
    pub resident_bytes: u64,
    /// The command line, at most [`MAX_COMMAND_CHARS`] characters.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub command: String,
}

impl ProcessList {
    /// The ranking an alert on `metric` is about: by memory for `memory`, by CPU otherwise.
    pub fn ranking_for(&self, metric: &str) -> &[ProcessUsage] {
        if metric == "memory" {
            &self.by_memory
        } else {
            &self.by_cpu
        }
    }

    /// "postgres 61 %, java 22 %, nginx 3 %" (CPU) or "postgres 1.2 GiB, …" (memory): the
    /// first `n` of the ranking `metric` calls for, for a person reading an alert.
    pub fn summary(&self, metric: &str, n: usize) -> String {
        self.ranking_for(metric)
            .iter()
            .take(n)
            .map(|p| {
                if metric == "memory" {
                    format!("{} {}", p.name, human_bytes(p.resident_bytes))
                } else {
                    format!("{} {:.0} %", p.name, p.cpu_percent)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `1.2 GiB`, `340 MiB`, `12 KiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 10.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl Payload for ProcessList {
    fn version(&self) -> u32 {
        self.v
    }

    fn check(&self, now: DateTime<Utc>) -> Result<(), String> {
        check_not_in_future("timestamp", self.timestamp, now)?;
        for (ranking, list) in [("byCpu", &self.by_cpu), ("byMemory", &self.by_memory)] {
            if list.len() > MAX_TOP_PROCESSES {
                return Err(format!(
                    "{ranking} has {} processes (at most {MAX_TOP_PROCESSES})",
                    list.len()
                ));
            }
            for p in list {
                if !(0.0..=100.0).contains(&p.cpu_percent) {
                    return Err(format!(
                        "{ranking}: cpuPercent {} of pid {} is not 0..=100",
                        p.cpu_percent, p.pid
                    ));
                }
                check_no_nul("process name", &p.name)?;
                check_no_nul("process command", &p.command)?;
                if let Some(user) = &p.user {
                    check_no_nul("process user", user)?;
                }
            }
        }
        Ok(())
    }
}

impl super::ServerPayload for ProcessList {
    const KIND: crate::subjects::StreamKind = crate::subjects::StreamKind::Processes;
    fn server_id(&self) -> &ServerId {
        &self.server_id
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::*;

    fn usage(name: &str, cpu: f64, rss: u64) -> ProcessUsage {
        ProcessUsage {
            pid: 1,
            name: name.into(),
            user: Some("postgres".into()),
            cpu_percent: cpu,
            resident_bytes: rss,
            command: format!("/usr/bin/{name}"),
        }
    }

    fn list() -> ProcessList {
        ProcessList {
            v: 1,
            server_id: ServerId::parse("web-1").expect("id"),
            // The wire keeps milliseconds.
            timestamp: chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis())
                .expect("a time"),
            by_cpu: vec![
                usage("postgres", 61.2, 1 << 30),
                usage("java", 22.0, 300 << 20),
            ],
            by_memory: vec![
                usage("postgres", 61.2, 1_288_490_189),
                usage("java", 22.0, 300 << 20),
            ],
        }
    }

    #[test]
    fn round_trips_in_camel_case_and_summarises_the_ranking_an_alert_needs() {
        let list = list();
        let json = serde_json::to_value(&list).expect("json");
        assert_eq!(json["byCpu"][0]["cpuPercent"], 61.2);
        assert_eq!(json["byMemory"][0]["residentBytes"], 1_288_490_189_u64);
        let back: ProcessList =
            decode(&serde_json::to_vec(&list).expect("bytes"), Utc::now()).expect("decodes");
        assert_eq!(back, list);
        assert_eq!(list.summary("cpu", 3), "postgres 61 %, java 22 %");
        assert_eq!(list.summary("memory", 1), "postgres 1.2 GiB");
        assert_eq!(list.summary("disk", 1), "postgres 61 %");
    }

    #[test]
    fn nonsense_is_refused_with_a_reason() {
        let mut bad = list();
        bad.by_cpu[0].cpu_percent = 250.0;
        let err = decode::<ProcessList>(&serde_json::to_vec(&bad).expect("bytes"), Utc::now())
            .expect_err("refused");
        assert_eq!(err.kind(), "invalid");
        let mut bad = list();
        bad.by_memory[1].name = "a\0b".into();
        let err = decode::<ProcessList>(&serde_json::to_vec(&bad).expect("bytes"), Utc::now())
            .expect_err("refused");
        assert!(err.to_string().contains("NUL"), "{err}");
    }
}
