//! `ContainerUsage`: one container of a host, as its Docker or Podman engine reports it. The
//! collector refreshes the list every `collector.containers_interval_ms` and the newest list
//! rides on the next [`super::MetricSample`] (`containers`), so the alerter evaluates container
//! alerts on the very stream, in the very order and with the very exactly-once commits it uses
//! for every other alert, and a sample without the field (no engine socket, or no refresh
//! since the previous sample) is the sample it always was.

use serde::{Deserialize, Serialize};

use super::check_no_nul;

/// The most containers one sample may carry (a host running more is cut, busiest first).
pub const MAX_CONTAINERS: usize = 500;
/// The longest name or image kept (characters).
pub const MAX_CONTAINER_TEXT: usize = 255;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerUsage {
    /// The engine's id, shortened to 12 hex digits as `docker ps` shows it.
    pub id: String,
    /// The name without Docker's leading `/` (`web-1`): what alerts are keyed by, since it
    /// survives a re-creation of the container (compose, `docker run --name`) and an id does not.
    pub name: String,
    /// The image as the container was created from it (`nginx:1.27`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// The engine's state: `created`, `running`, `paused`, `restarting`, `removing`, `exited`
    /// or `dead`.
    pub state: String,
    /// The health check's verdict (`starting`, `healthy`, `unhealthy`); absent for a container
    /// without a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// The exit code of a container that is not running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// How many times the engine restarted it (its restart policy), since it was created.
    #[serde(default)]
    pub restarts: u64,
    /// Percent of the whole host's CPU (all cores: 0..=100) since the previous list, like
    /// `cpuUsage`; 0 for a container that is not running.
    #[serde(default)]
    pub cpu_percent: f64,
    /// Memory in use as `docker stats` counts it: usage minus the inactive page cache.
    #[serde(default)]
    pub memory_bytes: u64,
    /// The container's memory limit (the host's memory when it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<u64>,
    /// Bytes received and sent on all its interfaces since it started (`docker stats`' NET I/O).
    #[serde(default)]
    pub net_rx_bytes: u64,
    #[serde(default)]
    pub net_tx_bytes: u64,
    /// Bytes read from and written to block devices since it started (BLOCK I/O).
    #[serde(default)]
    pub block_read_bytes: u64,
    #[serde(default)]
    pub block_write_bytes: u64,
}

impl ContainerUsage {
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }

    /// Stopped for good (until someone starts it): `exited` or `dead`. `restarting` is its
    /// own alert, `paused` and `created` were stopped on purpose or never started.
    pub fn is_stopped(&self) -> bool {
        matches!(self.state.as_str(), "exited" | "dead")
    }

    pub fn is_unhealthy(&self) -> bool {
        self.health.as_deref() == Some("unhealthy")
    }

    /// What the wire refuses in one entry, said.
    pub fn check(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.chars().count() > MAX_CONTAINER_TEXT {
            return Err(format!(
                "container name {:?} is empty or longer than {MAX_CONTAINER_TEXT} characters",
                self.name
            ));
        }
        if self.image.chars().count() > MAX_CONTAINER_TEXT || self.id.len() > 64 {
            return Err(format!("container {:?}: image or id too long", self.name));
        }
        for (what, text) in [
            ("container name", self.name.as_str()),
            ("container image", &self.image),
            ("container id", &self.id),
        ] {
            check_no_nul(what, text)?;
        }
        for (what, word) in [
            ("state", Some(self.state.as_str())),
            ("health", self.health.as_deref()),
        ] {
            if let Some(word) = word
                && (word.is_empty()
                    || word.len() > 16
                    || !word.bytes().all(|b| b.is_ascii_lowercase()))
            {
                return Err(format!(
                    "container {:?}: {what} {word:?} is not a short lowercase word",
                    self.name
                ));
            }
        }
        if !self.cpu_percent.is_finite() || !(0.0..=100.0).contains(&self.cpu_percent) {
            return Err(format!(
                "container {:?}: cpuPercent {} is outside 0..=100",
                self.name, self.cpu_percent
            ));
        }
        Ok(())
    }
}

/// Checks a sample's container list: each container, their number, one entry per name.
pub(super) fn check_containers(containers: &[ContainerUsage]) -> Result<(), String> {
    if containers.len() > MAX_CONTAINERS {
        return Err(format!(
            "{} containers, more than {MAX_CONTAINERS}",
            containers.len()
        ));
    }
    let mut names = std::collections::HashSet::with_capacity(containers.len());
    for container in containers {
        container.check()?;
        if !names.insert(container.name.as_str()) {
            return Err(format!("container {:?} is listed twice", container.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn web() -> ContainerUsage {
        ContainerUsage {
            id: "0123456789ab".into(),
            name: "web-1".into(),
            image: "nginx:1.27".into(),
            state: "running".into(),
            health: Some("healthy".into()),
            exit_code: None,
            restarts: 2,
            cpu_percent: 12.5,
            memory_bytes: 40 << 20,
            memory_limit_bytes: Some(1 << 30),
            net_rx_bytes: 1_000,
            net_tx_bytes: 2_000,
            block_read_bytes: 4_096,
            block_write_bytes: 8_192,
        }
    }

    #[test]
    fn camel_case_on_the_wire_and_optional_fields_left_out() {
        let mut c = web();
        let json = serde_json::to_value(&c).expect("serialises");
        for field in [
            "id",
            "name",
            "image",
            "state",
            "health",
            "restarts",
            "cpuPercent",
            "memoryBytes",
            "memoryLimitBytes",
            "netRxBytes",
            "netTxBytes",
            "blockReadBytes",
            "blockWriteBytes",
        ] {
            assert!(json.get(field).is_some(), "{field} in {json}");
        }
        c.health = None;
        c.memory_limit_bytes = None;
        let json = serde_json::to_value(&c).expect("serialises");
        assert!(json.get("health").is_none() && json.get("exitCode").is_none());
        let back: ContainerUsage = serde_json::from_value(json).expect("decodes");
        assert_eq!(back, c);
    }

    #[test]
    fn a_minimal_container_decodes_with_zero_figures() {
        let c: ContainerUsage = serde_json::from_value(serde_json::json!({
            "id": "abc", "name": "db", "state": "exited", "exitCode": 137,
        }))
        .expect("decodes");
        assert!(c.is_stopped() && !c.is_running() && !c.is_unhealthy());
        assert_eq!((c.restarts, c.memory_bytes, c.cpu_percent), (0, 0, 0.0));
        assert_eq!(c.exit_code, Some(137));
        assert_eq!(check_containers(&[c]), Ok(()));
    }

    #[test]
    fn refuses_what_cannot_be_stored_or_keyed() {
        let cases: Vec<(ContainerUsage, &str)> = vec![
            (
                ContainerUsage {
                    name: String::new(),
                    ..web()
                },
                "empty",
            ),
            (
                ContainerUsage {
                    name: "a\0b".into(),
                    ..web()
                },
                "NUL",
            ),
            (
                ContainerUsage {
                    state: "Running!".into(),
                    ..web()
                },
                "lowercase",
            ),
            (
                ContainerUsage {
                    cpu_percent: f64::NAN,
                    ..web()
                },
                "0..=100",
            ),
            (
                ContainerUsage {
                    cpu_percent: 120.0,
                    ..web()
                },
                "0..=100",
            ),
        ];
        for (c, reason) in cases {
            let err = check_containers(&[c]).expect_err("refused");
            assert!(err.contains(reason), "{err} should mention {reason}");
        }
        let err = check_containers(&[web(), web()]).expect_err("a name twice");
        assert!(err.contains("twice"), "{err}");
        let many: Vec<ContainerUsage> = (0..=MAX_CONTAINERS)
            .map(|i| ContainerUsage {
                name: format!("c{i}"),
                ..web()
            })
            .collect();
        assert!(check_containers(&many).is_err());
    }
}
