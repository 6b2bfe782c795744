//! The top processes of this host, by CPU and by memory, every
//! `collector.processes_interval_ms`, published on `<prefix>.processes.<serverId>` apart from
//! the samples (the lists are large next to a sample, and needed only when something is
//! wrong). Walking `/proc` costs more than a sample, so it runs on its own task, off the 1 Hz
//! sampler's path, and only as often as configured.

use std::cmp::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sysinfo::{Process, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind, Users};

use flick_shared::Subjects;
use flick_shared::shutdown::CancellationToken;
use flick_shared::wire::{MAX_COMMAND_CHARS, ProcessList, ProcessUsage, ServerId, WIRE_VERSION};

/// How often the uid → name table is read again (users come and go rarely).
const USERS_EVERY: u32 = 60;

/// Reads the processes and ranks them.
pub struct ProcessSampler {
    system: System,
    users: Users,
    reads: u32,
    cores: f64,
    top: usize,
}

impl ProcessSampler {
    pub fn new(top: usize) -> Result<Self, sysinfo::Error> {
        let mut system = System::new()?;
        system.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
        let cores = system.cpus().len().max(1) as f64;
        let mut sampler = Self {
            system,
            users: Users::new_with_refreshed_list()?,
            reads: 0,
            cores,
            top,
        };
        // CPU usage is the time between two reads: the first read is the baseline.
        sampler.refresh();
        Ok(sampler)
    }

    fn refresh(&mut self) {
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing()
                .with_cpu()
                .with_memory()
                .with_user(UpdateKind::OnlyIfNotSet)
                .with_cmd(UpdateKind::OnlyIfNotSet)
                // Threads are their processes' business: list processes only.
                .without_tasks(),
        );
        self.reads = self.reads.wrapping_add(1);
        if self.reads.is_multiple_of(USERS_EVERY) {
            self.users.refresh();
        }
    }

    /// The lists for `at`, ranked since the previous call.
    pub fn take(&mut self, server: &ServerId, at: DateTime<Utc>) -> ProcessList {
        self.refresh();
        let all: Vec<ProcessUsage> = self
            .system
            .processes()
            .values()
            .filter(|p| p.thread_kind().is_none())
            .map(|p| self.usage(p))
            .collect();
        let (by_cpu, by_memory) = rank(all, self.top);
        ProcessList {
            v: WIRE_VERSION,
            server_id: server.clone(),
            timestamp: at,
            by_cpu,
            by_memory,
        }
    }

    fn usage(&self, p: &Process) -> ProcessUsage {
        let user = p.user_id().map(|uid| {
            self.users
                .get_user_by_id(uid)
                .map_or_else(|| uid.to_string(), |u| u.name().to_owned())
        });
        ProcessUsage {
            pid: p.pid().as_u32(),
            name: clean(&p.name().to_string_lossy()),
            user: user.map(|u| clean(&u)),
            // sysinfo counts one busy core as 100 %: share of the whole host, like cpuUsage.
            cpu_percent: round2((f64::from(p.cpu_usage()) / self.cores).clamp(0.0, 100.0)),
            resident_bytes: p.memory(),
            command: command_line(p),
        }
    }
}

/// The `top` busiest and the `top` largest (ties by pid, so a list is stable).
pub fn rank(all: Vec<ProcessUsage>, top: usize) -> (Vec<ProcessUsage>, Vec<ProcessUsage>) {
    let mut by_cpu = all.clone();
    by_cpu.sort_by(|a, b| {
        b.cpu_percent
            .partial_cmp(&a.cpu_percent)
            .unwrap_or(Ordering::Equal)
            .then(a.pid.cmp(&b.pid))
    });
    by_cpu.truncate(top);
    let mut by_memory = all;
    by_memory.sort_by(|a, b| {
        b.resident_bytes
            .cmp(&a.resident_bytes)
            .then(a.pid.cmp(&b.pid))
    });
    by_memory.truncate(top);
    (by_cpu, by_memory)
}

fn command_line(p: &Process) -> String {
    let joined = p
        .cmd()
        .iter()
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let joined = clean(&joined);
    if joined.chars().count() <= MAX_COMMAND_CHARS {
        return joined;
    }
    let mut cut: String = joined.chars().take(MAX_COMMAND_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Process names and command lines are the processes' own: no NUL (PostgreSQL cannot store
/// it, and the wire refuses it), no control characters.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Publishes this host's process lists every `interval` until `shutdown`. Core NATS publishes
/// into the processes stream: a list lost in an outage is replaced by the next one, so lists
/// are not buffered like samples.
pub async fn run(
    client: async_nats::Client,
    subjects: Subjects,
    server: ServerId,
    interval: Duration,
    top: usize,
    shutdown: CancellationToken,
) {
    let sampler = tokio::task::spawn_blocking(move || ProcessSampler::new(top)).await;
    let mut sampler = match sampler {
        Ok(Ok(sampler)) => sampler,
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "Top processes are not reported: the process table cannot be read");
            return;
        }
        Err(err) => {
            tracing::warn!(error = %err, "Top processes are not reported");
            return;
        }
    };
    let subject = subjects.processes(&server);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    ticker.tick().await;
    let mut refused = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let span = tracing::debug_span!("processes", server_id = %server);
        let at = crate::now_millis();
        let id = server.clone();
        let taken = tokio::task::spawn_blocking(move || {
            let list = sampler.take(&id, at);
            (sampler, list)
        })
        .await;
        let Ok((back, list)) = taken else {
            tracing::warn!("Top processes stopped: the reading task failed");
            return;
        };
        sampler = back;
        let payload = match serde_json::to_vec(&list) {
            Ok(payload) => payload,
            Err(err) => {
                tracing::warn!(parent: &span, error = %err, "A process list cannot be encoded");
                continue;
            }
        };
        if let Err(err) = client.publish(subject.clone(), payload.into()).await {
            // A host enrolled before process lists existed may not publish them: say so once.
            if !refused {
                tracing::warn!(parent: &span, error = %err, %subject, "A process list was not published");
                refused = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, cpu: f64, rss: u64) -> ProcessUsage {
        ProcessUsage {
            pid,
            name: format!("p{pid}"),
            user: None,
            cpu_percent: cpu,
            resident_bytes: rss,
            command: String::new(),
        }
    }

    #[test]
    fn the_busiest_and_the_largest_come_first_ties_by_pid() {
        let (cpu, memory) = rank(
            vec![p(3, 5.0, 10), p(1, 50.0, 5), p(2, 5.0, 900), p(4, 0.0, 900)],
            3,
        );
        let pids = |list: &[ProcessUsage]| list.iter().map(|p| p.pid).collect::<Vec<_>>();
        assert_eq!(pids(&cpu), [1, 2, 3]);
        assert_eq!(pids(&memory), [2, 4, 3]);
    }

    #[test]
    fn this_hosts_processes_are_listed_with_names_users_and_command_lines() {
        let mut sampler = ProcessSampler::new(10).expect("the process table");
        std::thread::sleep(Duration::from_millis(200));
        let list = sampler.take(&ServerId::parse("h").expect("id"), Utc::now());
        assert_eq!(list.by_cpu.len(), 10);
        assert_eq!(list.by_memory.len(), 10);
        assert!(
            list.by_memory
                .iter()
                .all(|p| !p.name.is_empty() && p.resident_bytes > 0),
            "{:?}",
            list.by_memory
        );
        // Each list is sorted; the wire's own checks pass.
        assert!(
            list.by_memory
                .windows(2)
                .all(|w| w[0].resident_bytes >= w[1].resident_bytes)
        );
        assert!(
            list.by_cpu
                .windows(2)
                .all(|w| w[0].cpu_percent >= w[1].cpu_percent)
        );
        let bytes = serde_json::to_vec(&list).expect("json");
        flick_shared::wire::decode::<ProcessList>(&bytes, Utc::now()).expect("valid");
    }
}
