//! The collector's configuration: `[nats]`, `[streams]`, `[log]` and `[collector]`.

use serde::Deserialize;

use flick_shared::config::{
    ConfigError, LogSettings, NatsSettings, StreamSettings, Validate, check,
};
use flick_shared::wire::ServerId;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub nats: NatsSettings,
    pub streams: StreamSettings,
    pub log: LogSettings,
    pub collector: CollectorSettings,
}

/// `[collector]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorSettings {
    /// This host's server id. `FLICK_SERVER_ID` sets it too. When unset, a stable UUID v5 of
    /// the machine id (or, failing that, the host name) is used.
    pub server_id: Option<String>,
    /// Where the machine id is read from (a container mounts the host's file here).
    pub machine_id_path: String,
    /// Reported host name; the kernel's when unset.
    pub hostname: Option<String>,
    /// Time between two samples.
    pub interval_ms: u64,
    /// How much history is kept while NATS is unreachable; beyond it the oldest samples go.
    pub buffer_secs: u64,
    /// Publishes awaiting their JetStream acknowledgement at once (pipelining).
    pub max_in_flight: usize,
    /// On shutdown, how long to keep trying to deliver buffered samples before exiting.
    pub shutdown_flush_ms: u64,
    /// A file rewritten with the time of every sample, read by `flick-collector healthcheck`
    /// (the collector has no HTTP listener: it stays small). Unset: no file.
    pub heartbeat_path: Option<String>,
    /// Where the host's root filesystem is mounted when the collector runs in a container
    /// (`/host`): only mounts under it are reported, under the host's own names.
    pub host_root: Option<String>,
    /// Time between two top-process lists (`<prefix>.processes.<serverId>`); 0: none.
    pub processes_interval_ms: u64,
    /// Processes in each list (by CPU and by memory).
    pub top_processes: usize,
    /// The Docker or Podman Engine API socket (`/var/run/docker.sock`,
    /// `/run/podman/podman.sock`): with it, every container's state, health, restarts and
    /// usage ride on the samples and container alerts work. Unset (the default): no containers.
    /// Access to this socket is root on the host: grant it on purpose.
    pub docker_socket: Option<String>,
    /// Time between two container lists.
    pub containers_interval_ms: u64,
    /// The directory `flick-collector enroll` wrote: run as the host enrolled there (its
    /// server id, NATS URLs, `.creds` and the hub's CA). `--state-dir` sets it too.
    pub state_dir: Option<String>,
}

impl Default for CollectorSettings {
    fn default() -> Self {
        Self {
            server_id: None,
            machine_id_path: "/etc/machine-id".to_owned(),
            hostname: None,
            interval_ms: 1_000,
            buffer_secs: 3_600,
            max_in_flight: 256,
            shutdown_flush_ms: 5_000,
            heartbeat_path: None,
            host_root: None,
            processes_interval_ms: 5_000,
            top_processes: 10,
            docker_socket: None,
            containers_interval_ms: 5_000,
            state_dir: None,
        }
    }
}

impl CollectorSettings {
    /// Samples the buffer holds: `buffer_secs` worth at the configured interval.
    pub fn buffer_capacity(&self) -> usize {
        let samples = (self.buffer_secs * 1_000).div_ceil(self.interval_ms.max(1));
        usize::try_from(samples).unwrap_or(usize::MAX).max(1)
    }
}

impl flick_shared::service::ServiceConfig for Config {
    fn log(&self) -> &LogSettings {
        &self.log
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), ConfigError> {
        self.nats.validate()?;
        self.streams.validate()?;
        self.log.validate()?;
        let c = &self.collector;
        if let Some(id) = &c.server_id {
            ServerId::parse(id.clone())
                .map_err(|err| ConfigError::new("collector.server_id", err.to_string()))?;
        }
        check(
            "collector.interval_ms",
            (100..=3_600_000).contains(&c.interval_ms),
            || format!("{} is not in 100..=3600000", c.interval_ms),
        )?;
        check("collector.buffer_secs", c.buffer_secs > 0, || {
            "must be > 0".into()
        })?;
        check(
            "collector.max_in_flight",
            (1..=4_096).contains(&c.max_in_flight),
            || format!("{} is not in 1..=4096", c.max_in_flight),
        )?;
        check(
            "collector.processes_interval_ms",
            c.processes_interval_ms == 0 || (1_000..=3_600_000).contains(&c.processes_interval_ms),
            || {
                format!(
                    "{} is not 0 (off) or in 1000..=3600000",
                    c.processes_interval_ms
                )
            },
        )?;
        if let Some(socket) = &c.docker_socket {
            let path = socket.strip_prefix("unix://").unwrap_or(socket);
            check(
                "collector.docker_socket",
                path.starts_with('/') && !path.contains("://"),
                || format!("{socket:?} is not an absolute path to a unix socket (unix:// or /…)"),
            )?;
        }
        check(
            "collector.containers_interval_ms",
            (1_000..=3_600_000).contains(&c.containers_interval_ms),
            || format!("{} is not in 1000..=3600000", c.containers_interval_ms),
        )?;
        check(
            "collector.top_processes",
            (1..=flick_shared::wire::MAX_TOP_PROCESSES).contains(&c.top_processes),
            || format!("{} is not in 1..=100", c.top_processes),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hour_at_one_hertz_is_3600_samples() {
        let settings = CollectorSettings::default();
        assert_eq!(settings.buffer_capacity(), 3_600);
        let fast = CollectorSettings {
            interval_ms: 200,
            buffer_secs: 60,
            ..CollectorSettings::default()
        };
        assert_eq!(fast.buffer_capacity(), 300);
    }
}
