//! The containers of this host's Docker or Podman engine, through its Engine API socket
//! (`collector.docker_socket`), every `collector.containers_interval_ms`.
//!
//! Each refresh lists every container (stopped ones too: a stopped container is what the
//! `container_stopped` alert is about), inspects each (restart count and health are not in the
//! list on the API versions Debian's engines speak) and reads a one-shot stats snapshot of each
//! running one. The newest list goes into a `watch` channel; the sampler puts it on the next
//! sample ([`MetricSample::containers`](flick_shared::wire::MetricSample)), so the samples stay
//! the one stream of facts about a host, in order, and the alerter judges containers with the
//! same exactly-once machinery as everything else.
//!
//! The engine's requests run on their own task, off the 1 Hz sampler's path: a slow engine
//! delays the container list, never a sample. An absent or refusing socket is said once (a
//! WARN, reminders, an INFO when it answers again) and retried with backoff; the samples go
//! on without containers meanwhile.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerMemoryStats, ContainerStatsResponse};
use bollard::query_parameters::{ListContainersOptionsBuilder, StatsOptionsBuilder};
use futures::StreamExt as _;
use tokio::sync::watch;

use flick_shared::backoff::Backoff;
use flick_shared::outage::Outage;
use flick_shared::shutdown::CancellationToken;
use flick_shared::wire::{ContainerUsage, MAX_CONTAINER_TEXT, MAX_CONTAINERS};

/// Requests in flight to the engine at once during a refresh.
const CONCURRENT_REQUESTS: usize = 8;
/// The oldest Engine API this collector speaks (Docker 20.10, Podman 3); the version is then
/// negotiated up to what the engine offers.
const MIN_API: bollard::ClientVersion = bollard::ClientVersion {
    major_version: 1,
    minor_version: 41,
};
/// Seconds a request to the engine may take.
const REQUEST_TIMEOUT_SECS: u64 = 10;

/// A container's CPU counters at one read: its own time and the whole host's, nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuReading {
    pub container: u64,
    pub system: u64,
}

/// Percent of the whole host's CPU (0..=100) a container used between two readings: its time
/// over the host's (the engine's `system_cpu_usage` sums every core, so this is a share of
/// all of them, like `cpuUsage`; `docker stats` multiplies by the cores instead). 0 without a
/// previous reading, or when a counter went back (the container restarted).
pub fn cpu_percent(previous: Option<CpuReading>, now: CpuReading) -> f64 {
    let Some(previous) = previous else {
        return 0.0;
    };
    let (Some(used), Some(elapsed)) = (
        now.container.checked_sub(previous.container),
        now.system.checked_sub(previous.system),
    ) else {
        return 0.0;
    };
    if elapsed == 0 {
        return 0.0;
    }
    let percent = (used as f64 / elapsed as f64 * 100.0).clamp(0.0, 100.0);
    (percent * 100.0).round() / 100.0
}

/// Memory in use as `docker stats` shows it: usage minus the inactive page cache
/// (`total_inactive_file` on cgroup v1, `inactive_file` on v2), which the kernel reclaims
/// first and would otherwise make every file-reading container look full.
pub fn memory_used(stats: &ContainerMemoryStats) -> u64 {
    let usage = stats.usage.unwrap_or(0);
    let inactive = stats.stats.as_ref().and_then(|s| {
        s.get("total_inactive_file")
            .or_else(|| s.get("inactive_file"))
            .copied()
    });
    match inactive {
        Some(inactive) if inactive < usage => usage - inactive,
        _ => usage,
    }
}

/// Network (received, sent) and block I/O (read, written) bytes since the container started.
pub fn io_totals(stats: &ContainerStatsResponse) -> ((u64, u64), (u64, u64)) {
    let net = stats
        .networks
        .as_ref()
        .map(|networks| {
            networks.values().fold((0u64, 0u64), |(rx, tx), n| {
                (
                    rx.saturating_add(n.rx_bytes.unwrap_or(0)),
                    tx.saturating_add(n.tx_bytes.unwrap_or(0)),
                )
            })
        })
        .unwrap_or_default();
    let block = stats
        .blkio_stats
        .as_ref()
        .and_then(|b| b.io_service_bytes_recursive.as_ref())
        .map(|entries| {
            entries.iter().fold((0u64, 0u64), |(read, write), e| {
                let value = e.value.unwrap_or(0);
                match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("read") => (read.saturating_add(value), write),
                    Some("write") => (read, write.saturating_add(value)),
                    _ => (read, write),
                }
            })
        })
        .unwrap_or_default();
    (net, block)
}

/// Text from the engine as the wire keeps it: no control characters, at most
/// [`MAX_CONTAINER_TEXT`] characters.
fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_CONTAINER_TEXT)
        .collect()
}

/// The list as the wire carries it: by name, once each, every entry one the wire accepts (one
/// bad entry would cost the host its whole sample), at most [`MAX_CONTAINERS`]: those with a
/// problem (unhealthy, restarting) first, then the busiest, ties by name, so the same
/// containers are kept from one list to the next.
pub fn finish(mut list: Vec<ContainerUsage>) -> Vec<ContainerUsage> {
    list.retain(|c| match c.check() {
        Ok(()) => true,
        Err(why) => {
            tracing::debug!(container = %c.id, %why, "A container is left out of the list");
            false
        }
    });
    if list.len() > MAX_CONTAINERS {
        let troubled = |c: &ContainerUsage| {
            c.state == "restarting" || c.health.as_deref() == Some("unhealthy")
        };
        list.sort_by(|a, b| {
            troubled(b)
                .cmp(&troubled(a))
                .then(b.cpu_percent.total_cmp(&a.cpu_percent))
                .then(a.name.cmp(&b.name))
        });
        list.truncate(MAX_CONTAINERS);
    }
    list.sort_by(|a, b| a.name.cmp(&b.name));
    list.dedup_by(|a, b| a.name == b.name);
    list
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the container engine at {socket}: {source}")]
    Engine {
        socket: String,
        #[source]
        source: bollard::errors::Error,
    },
}

/// A connection to the engine and what the previous refresh read.
#[derive(Debug)]
pub struct Engine {
    socket: String,
    docker: Option<Docker>,
    cpu: HashMap<String, CpuReading>,
    /// Each container's inspection, with the list's `State` and `Status` it was made under.
    described: HashMap<String, Described>,
}

/// A container's `(State, Status)` in the engine's list.
type Listed = (Option<String>, Option<String>);

/// What an inspection said of a container (its figures left at zero), and the list's
/// `(State, Status)` at the time. The list's `Status` ("Up 3 hours (healthy)", "Restarting
/// (1) 2 seconds ago") changes whenever the state, the health or the start time does, so a
/// container whose pair is unchanged is not inspected again: the inspection is the largest
/// answer of a refresh, and most containers do not change between two.
#[derive(Debug, Clone)]
struct Described {
    listed: Listed,
    usage: ContainerUsage,
}

impl Engine {
    pub fn new(socket: impl Into<String>) -> Self {
        Self {
            socket: socket.into(),
            docker: None,
            cpu: HashMap::new(),
            described: HashMap::new(),
        }
    }

    fn error(&self, source: bollard::errors::Error) -> EngineError {
        EngineError::Engine {
            socket: self.socket.clone(),
            source,
        }
    }

    async fn docker(&mut self) -> Result<Docker, EngineError> {
        if let Some(docker) = &self.docker {
            return Ok(docker.clone());
        }
        let docker = Docker::connect_with_unix(&self.socket, REQUEST_TIMEOUT_SECS, &MIN_API)
            .map_err(|e| self.error(e))?
            .negotiate_version()
            .await
            .map_err(|e| self.error(e))?;
        self.docker = Some(docker.clone());
        Ok(docker)
    }

    /// Every container with its figures, now. (Failures are not logged here: the caller says
    /// an outage once, not once per attempt.)
    #[tracing::instrument(name = "containers", skip_all, fields(socket = %self.socket))]
    pub async fn refresh(&mut self) -> Result<Vec<ContainerUsage>, EngineError> {
        let result = self.read().await;
        if result.is_err() {
            // Negotiate again next time: the engine may have been replaced by another version.
            self.docker = None;
        }
        result
    }

    async fn read(&mut self) -> Result<Vec<ContainerUsage>, EngineError> {
        let docker = self.docker().await?;
        let summaries = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default().all(true).build(),
            ))
            .await
            .map_err(|e| self.error(e))?;
        let listed: Vec<(String, Option<String>, Listed)> = summaries
            .into_iter()
            .filter_map(|s| {
                // The name is the list's, every time: a rename changes neither state nor status.
                let name = s
                    .names
                    .as_ref()
                    .and_then(|names| names.first())
                    .map(|n| clean(n.trim_start_matches('/')))
                    .filter(|n| !n.is_empty());
                Some((s.id?, name, (s.state.map(|v| v.to_string()), s.status)))
            })
            .collect();
        let described = &self.described;
        let read = futures::stream::iter(listed)
            .map(|(id, name, pair)| {
                let docker = docker.clone();
                let known = described.get(&id);
                let unchanged = known
                    .filter(|d| d.listed == pair)
                    .map(|d| d.usage.clone());
                let previous = known.map(|d| (d.listed.clone(), d.usage.clone()));
                async move {
                    let (pair, mut usage) = match unchanged {
                        Some(usage) => (pair, usage),
                        None => match describe(&docker, &id).await {
                            Ok(Some(usage)) => (pair, usage),
                            // Removed since the list: the next list says so.
                            Ok(None) => return Ok(None),
                            // Not known now: what was known stands (inspected again next
                            // time), rather than a container missing from a list that would
                            // say it was removed.
                            Err(err) => match previous {
                                Some(previous) => {
                                    tracing::debug!(container = %id, error = %err, "A container could not be inspected; its previous description stands");
                                    previous
                                }
                                None => return Err(err),
                            },
                        },
                    };
                    if let Some(name) = name {
                        usage.name = name;
                    }
                    let (measured, reading) = measure(&docker, &id, usage.clone()).await;
                    Ok(Some((id, pair, usage, measured, reading)))
                }
            })
            .buffer_unordered(CONCURRENT_REQUESTS)
            .collect::<Vec<_>>()
            .await;
        let read = read
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(e))?;
        let mut cpu = HashMap::with_capacity(read.len());
        let mut described = HashMap::with_capacity(read.len());
        let mut list = Vec::with_capacity(read.len());
        for (id, pair, description, mut usage, reading) in read.into_iter().flatten() {
            described.insert(
                id,
                Described {
                    listed: pair,
                    usage: description,
                },
            );
            if let Some(reading) = reading {
                usage.cpu_percent = cpu_percent(self.cpu.get(&usage.id).copied(), reading);
                cpu.insert(usage.id.clone(), reading);
            }
            list.push(usage);
        }
        // Containers that went away take their readings and inspections with them.
        self.cpu = cpu;
        self.described = described;
        Ok(finish(list))
    }
}

/// One container's inspection: everything but its figures. `None` when it vanished between
/// the list and the inspection (the engine answers 404); any other failure is an error, since
/// leaving the container out would tell the alerter it was removed.
async fn describe(
    docker: &Docker,
    id: &str,
) -> Result<Option<ContainerUsage>, bollard::errors::Error> {
    let inspected = match docker.inspect_container(id, None).await {
        Ok(inspected) => inspected,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => return Ok(None),
        Err(err) => return Err(err),
    };
    let state = inspected.state.clone().unwrap_or_default();
    let status = state
        .status
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "created".to_owned());
    let running = status == "running";
    let health = state
        .health
        .and_then(|h| h.status)
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty() && s != "none");
    let name = inspected
        .name
        .as_deref()
        .map(|n| clean(n.trim_start_matches('/')))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| id.chars().take(12).collect());
    let image = inspected
        .config
        .as_ref()
        .and_then(|c| c.image.as_deref())
        .or(inspected.image.as_deref())
        .map(clean)
        .unwrap_or_default();
    Ok(Some(ContainerUsage {
        id: id.chars().take(12).collect(),
        name,
        image,
        exit_code: (!running).then_some(state.exit_code).flatten(),
        state: status,
        health,
        restarts: inspected
            .restart_count
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0),
        cpu_percent: 0.0,
        memory_bytes: 0,
        memory_limit_bytes: None,
        net_rx_bytes: 0,
        net_tx_bytes: 0,
        block_read_bytes: 0,
        block_write_bytes: 0,
    }))
}

/// The figures of a running container (one-shot stats) into its description, with its CPU
/// counters for the next share; a stopped one keeps zeros.
async fn measure(
    docker: &Docker,
    id: &str,
    mut usage: ContainerUsage,
) -> (ContainerUsage, Option<CpuReading>) {
    let mut reading = None;
    if usage.state == "running" {
        let options = StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(true)
            .build();
        match docker.stats(id, Some(options)).next().await {
            Some(Ok(stats)) => {
                if let Some(memory) = &stats.memory_stats {
                    usage.memory_bytes = memory_used(memory);
                    usage.memory_limit_bytes = memory.limit.filter(|l| *l > 0);
                }
                let ((rx, tx), (read, write)) = io_totals(&stats);
                (usage.net_rx_bytes, usage.net_tx_bytes) = (rx, tx);
                (usage.block_read_bytes, usage.block_write_bytes) = (read, write);
                reading = stats.cpu_stats.as_ref().and_then(|cpu| {
                    Some(CpuReading {
                        container: cpu.cpu_usage.as_ref()?.total_usage?,
                        system: cpu.system_cpu_usage?,
                    })
                });
            }
            Some(Err(err)) => {
                tracing::debug!(container = %usage.name, error = %err, "No stats for a container");
            }
            None => {}
        }
    }
    (usage, reading)
}

/// Refreshes the container list every `interval` until `shutdown`, sending each new list to
/// the sampler.
pub async fn run(
    socket: String,
    interval: Duration,
    lists: watch::Sender<Option<Vec<ContainerUsage>>>,
    shutdown: CancellationToken,
) {
    let mut engine = Engine::new(socket);
    let outage = Outage::new("Reading containers from the engine socket");
    let mut backoff = Backoff::new(interval, Duration::from_secs(60).max(interval));
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        // A slow engine must not hold up a shutdown: the refresh is dropped with it.
        let refreshed = tokio::select! {
            () = shutdown.cancelled() => return,
            refreshed = engine.refresh() => refreshed,
        };
        match refreshed {
            Ok(list) => {
                outage.recovered();
                backoff.reset();
                wait = interval;
                lists.send_replace(Some(list));
            }
            Err(err) => {
                outage.failed(&err);
                wait = backoff.next_delay();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerBlkioStatEntry, ContainerBlkioStats, ContainerNetworkStats};

    #[test]
    fn cpu_is_a_share_of_the_whole_host_between_two_readings() {
        let first = CpuReading {
            container: 1_000,
            system: 10_000,
        };
        assert_eq!(cpu_percent(None, first), 0.0, "no baseline yet");
        let later = CpuReading {
            container: 3_500,
            system: 20_000,
        };
        assert_eq!(cpu_percent(Some(first), later), 25.0);
        // A restarted container's counter starts over: no figure rather than a wild one.
        let restarted = CpuReading {
            container: 10,
            system: 30_000,
        };
        assert_eq!(cpu_percent(Some(later), restarted), 0.0);
        assert_eq!(cpu_percent(Some(later), later), 0.0, "no time passed");
    }

    #[test]
    fn memory_leaves_out_the_inactive_page_cache_as_docker_stats_does() {
        let stats = |usage: u64, key: &str, inactive: u64| ContainerMemoryStats {
            usage: Some(usage),
            stats: Some(HashMap::from([(key.to_owned(), inactive)])),
            ..Default::default()
        };
        assert_eq!(memory_used(&stats(100, "total_inactive_file", 30)), 70);
        assert_eq!(memory_used(&stats(100, "inactive_file", 40)), 60);
        assert_eq!(memory_used(&stats(100, "inactive_file", 400)), 100);
        assert_eq!(memory_used(&ContainerMemoryStats::default()), 0);
    }

    #[test]
    fn network_sums_every_interface_and_block_io_reads_and_writes() {
        let entry = |op: &str, value: u64| ContainerBlkioStatEntry {
            op: Some(op.into()),
            value: Some(value),
            ..Default::default()
        };
        let net = |rx: u64, tx: u64| ContainerNetworkStats {
            rx_bytes: Some(rx),
            tx_bytes: Some(tx),
            ..Default::default()
        };
        let stats = ContainerStatsResponse {
            networks: Some(HashMap::from([
                ("eth0".to_owned(), net(100, 10)),
                ("eth1".to_owned(), net(5, 1)),
            ])),
            blkio_stats: Some(ContainerBlkioStats {
                io_service_bytes_recursive: Some(vec![
                    entry("Read", 4096),
                    entry("Write", 100),
                    entry("read", 4),
                    entry("Total", 99_999),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(io_totals(&stats), ((105, 11), (4100, 100)));
        assert_eq!(
            io_totals(&ContainerStatsResponse::default()),
            ((0, 0), (0, 0))
        );
    }

    #[test]
    fn a_list_is_by_name_once_each_and_within_the_wires_cap() {
        let c = |name: &str, cpu: f64| ContainerUsage {
            id: "x".into(),
            name: name.into(),
            image: String::new(),
            state: "running".into(),
            health: None,
            exit_code: None,
            restarts: 0,
            cpu_percent: cpu,
            memory_bytes: 0,
            memory_limit_bytes: None,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            block_read_bytes: 0,
            block_write_bytes: 0,
        };
        let names = |l: &[ContainerUsage]| l.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&finish(vec![c("b", 1.0), c("a", 2.0), c("b", 3.0)])),
            ["a", "b"]
        );
        let many: Vec<ContainerUsage> = (0..MAX_CONTAINERS + 5)
            .map(|i| c(&format!("c{i:04}"), i as f64 / 10.0))
            .collect();
        let kept = finish(many);
        assert_eq!(kept.len(), MAX_CONTAINERS);
        assert!(kept.iter().all(|c| c.name != "c0000"), "the idlest are cut");
        let mut troubled: Vec<ContainerUsage> = (0..MAX_CONTAINERS + 1)
            .map(|i| c(&format!("c{i:04}"), 1.0))
            .collect();
        troubled[0].health = Some("unhealthy".to_owned());
        let kept = finish(troubled.clone());
        assert_eq!(
            kept[0].name, "c0000",
            "a problem is kept over a busier container"
        );
        assert_eq!(
            kept.last().map(|c| c.name.as_str()),
            Some("c0499"),
            "ties by name: the same ones each time"
        );
        assert_eq!(finish(troubled), kept);
        assert_eq!(
            names(&finish(vec![c("ok", 1.0), c("odd", 150.0)])),
            ["ok"],
            "an entry the wire refuses is left out, not the whole sample"
        );
        assert_eq!(clean("we\u{0}b\n-1"), "web-1");
    }

    #[tokio::test]
    async fn an_absent_socket_is_an_error_that_names_it() {
        let mut engine = Engine::new("/nonexistent/docker.sock");
        let err = engine.refresh().await.expect_err("no engine there");
        assert!(
            err.to_string().contains("/nonexistent/docker.sock"),
            "{err}"
        );
    }
}
