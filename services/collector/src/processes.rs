//! The top processes of this host, by CPU and by memory, every
//! `collector.processes_interval_ms`, published on `<prefix>.processes.<serverId>` apart from
//! the samples (the lists are large next to a sample, and needed only when something is
//! wrong). Walking `/proc` costs more than a sample, so it runs on its own task, off the 1 Hz
//! sampler's path, and only as often as configured.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sysinfo::{System, Users};

use flick_shared::Subjects;
use flick_shared::shutdown::CancellationToken;
use flick_shared::wire::{MAX_COMMAND_CHARS, ProcessList, ProcessUsage, ServerId, WIRE_VERSION};

/// How often the uid → name table is read again (users come and go rarely).
const USERS_EVERY: u32 = 60;
/// `PF_KTHREAD` in `/proc/<pid>/stat`'s flags: kernel threads are not what eats a host.
const KERNEL_THREAD: u64 = 0x0020_0000;

/// Reads the process table and ranks it. It reads `/proc/<pid>/stat` of every process and
/// nothing else (sysinfo also reads each process's `status`, which the kernel formats at some
/// cost: three times the CPU for the same ranking); user and command line are read for the
/// few processes that make a list.
pub struct ProcessSampler {
    proc: PathBuf,
    users: Users,
    reads: u32,
    cores: f64,
    top: usize,
    ticks_per_second: f64,
    page_size: u64,
    /// CPU ticks (user + system) of each process at the previous read, and when that was.
    previous: HashMap<u32, u64>,
    previous_at: Instant,
    buffer: Vec<u8>,
}

impl ProcessSampler {
    pub fn new(top: usize) -> Result<Self, sysinfo::Error> {
        let mut system = System::new()?;
        system.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
        let cores = system.cpus().len().max(1) as f64;
        let mut sampler = Self {
            proc: PathBuf::from("/proc"),
            users: Users::new_with_refreshed_list()?,
            reads: 0,
            cores,
            top,
            ticks_per_second: f64::from(rustix::param::clock_ticks_per_second().max(1) as u32),
            page_size: rustix::param::page_size() as u64,
            previous: HashMap::new(),
            previous_at: Instant::now(),
            buffer: Vec::with_capacity(512),
        };
        // CPU usage is the time between two reads: the first read is the baseline.
        sampler.read_table();
        Ok(sampler)
    }

    /// Every process's CPU share since the previous read and its resident set.
    fn read_table(&mut self) -> Vec<Candidate> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.previous_at).as_secs_f64();
        let per_percent = self.ticks_per_second * elapsed.max(1e-3) * self.cores / 100.0;
        let mut current = HashMap::with_capacity(self.previous.len() + 16);
        let mut all = Vec::with_capacity(self.previous.len() + 16);
        let Ok(entries) = std::fs::read_dir(&self.proc) else {
            return all;
        };
        let mut path = self.proc.clone();
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            path.push(entry.file_name());
            path.push("stat");
            self.buffer.clear();
            let read = std::fs::File::open(&path).and_then(|mut f| f.read_to_end(&mut self.buffer));
            path.pop();
            path.pop();
            // Gone since the directory was listed: not a process any more.
            if read.is_err() {
                continue;
            }
            let Some(stat) = Stat::parse(&self.buffer) else {
                continue;
            };
            if stat.flags & KERNEL_THREAD != 0 {
                continue;
            }
            // A process not seen at the previous read started since: all its time is new.
            let used = stat
                .ticks
                .saturating_sub(self.previous.get(&pid).copied().unwrap_or(0));
            current.insert(pid, stat.ticks);
            all.push(Candidate {
                pid,
                cpu_percent: (used as f64 / per_percent).clamp(0.0, 100.0),
                resident_bytes: stat.resident_pages.saturating_mul(self.page_size),
                name: stat.name,
            });
        }
        self.previous = current;
        self.previous_at = now;
        self.reads = self.reads.wrapping_add(1);
        if self.reads.is_multiple_of(USERS_EVERY) {
            self.users.refresh();
        }
        all
    }

    /// The lists for `at`, ranked since the previous call. Only the processes that make a list
    /// are described (user, command line): a host runs hundreds and the lists name a few.
    pub fn take(&mut self, server: &ServerId, at: DateTime<Utc>) -> ProcessList {
        let all = self.read_table();
        let (by_cpu, by_memory) = rank(all, self.top);
        ProcessList {
            v: WIRE_VERSION,
            server_id: server.clone(),
            timestamp: at,
            by_cpu: by_cpu.iter().map(|c| self.usage(c)).collect(),
            by_memory: by_memory.iter().map(|c| self.usage(c)).collect(),
        }
    }

    fn usage(&self, candidate: &Candidate) -> ProcessUsage {
        let dir = self.proc.join(candidate.pid.to_string());
        let user = std::fs::metadata(&dir).ok().map(|m| {
            let uid = m.uid();
            self.users
                .iter()
                .find(|u| **u.id() == uid)
                .map_or_else(|| uid.to_string(), |u| u.name().to_owned())
        });
        let command = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        ProcessUsage {
            pid: candidate.pid,
            name: clean(&String::from_utf8_lossy(candidate.name.as_bytes())),
            user: user.map(|u| clean(&u)),
            cpu_percent: round2(candidate.cpu_percent),
            resident_bytes: candidate.resident_bytes,
            command: command_line(&command),
        }
    }
}

/// The figures of `/proc/<pid>/stat` a ranking needs.
struct Stat {
    name: Name,
    flags: u64,
    /// utime + stime, in clock ticks.
    ticks: u64,
    resident_pages: u64,
}

impl Stat {
    /// `pid (comm) state ppid …`: the name may hold spaces and parentheses, so the fields are
    /// counted from its last `)`. See proc(5): flags is field 9, utime 14, stime 15, rss 24.
    fn parse(stat: &[u8]) -> Option<Stat> {
        let open = stat.iter().position(|&b| b == b'(')?;
        let close = stat.iter().rposition(|&b| b == b')')?;
        let name = Name::new(stat.get(open + 1..close)?);
        let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
        let mut fields = rest.split_ascii_whitespace();
        // After the name, field 3 (state) comes first: field n is at index n - 3.
        let mut field = |skip: usize| fields.nth(skip)?.parse::<u64>().ok();
        let flags = field(6)?;
        let utime = field(4)?;
        let stime = field(0)?;
        let resident_pages = field(8)?;
        Some(Stat {
            name,
            flags,
            ticks: utime.saturating_add(stime),
            resident_pages,
        })
    }
}

/// A process name (the kernel keeps 15 bytes of it), inline so that reading the table
/// allocates nothing per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Name {
    bytes: [u8; 16],
    len: u8,
}

impl Name {
    pub fn new(name: &[u8]) -> Self {
        let len = name.len().min(16);
        let mut bytes = [0; 16];
        bytes[..len].copy_from_slice(&name[..len]);
        Self {
            bytes,
            len: len as u8,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// What a process is ranked by.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub pid: u32,
    /// Percent of the whole host's CPU (all cores: 0..=100), like `cpuUsage`.
    pub cpu_percent: f64,
    pub resident_bytes: u64,
    pub name: Name,
}

/// The `top` busiest and the `top` largest (ties by pid, so a list is stable).
pub fn rank(mut all: Vec<Candidate>, top: usize) -> (Vec<Candidate>, Vec<Candidate>) {
    all.sort_unstable_by(|a, b| {
        b.cpu_percent
            .partial_cmp(&a.cpu_percent)
            .unwrap_or(Ordering::Equal)
            .then(a.pid.cmp(&b.pid))
    });
    let by_cpu = all.iter().take(top).copied().collect();
    all.sort_unstable_by(|a, b| {
        b.resident_bytes
            .cmp(&a.resident_bytes)
            .then(a.pid.cmp(&b.pid))
    });
    all.truncate(top);
    (by_cpu, all)
}

/// `/proc/<pid>/cmdline` (arguments ended by NUL) as one line of at most
/// [`MAX_COMMAND_CHARS`] characters.
fn command_line(cmdline: &[u8]) -> String {
    let joined =
        String::from_utf8_lossy(cmdline.strip_suffix(&[0]).unwrap_or(cmdline)).replace('\0', " ");
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

    fn p(pid: u32, cpu_percent: f64, resident_bytes: u64) -> Candidate {
        Candidate {
            pid,
            cpu_percent,
            resident_bytes,
            name: Name::new(b"p"),
        }
    }

    #[test]
    fn a_stat_line_is_read_past_a_name_with_spaces_and_parentheses() {
        let line = b"4242 (tmux: server (1)) S 1 4242 4242 0 -1 4194560 9 0 0 0 150 25 0 0 20 0 1 0 877 9437184 1024 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";
        let stat = Stat::parse(line).expect("parsed");
        assert_eq!(stat.name.as_bytes(), b"tmux: server (1)");
        assert_eq!(
            (stat.flags, stat.ticks, stat.resident_pages),
            (4_194_560, 175, 1024)
        );
        assert_eq!(command_line(b"postgres\0-D\0/data\0"), "postgres -D /data");
    }

    #[test]
    fn the_busiest_and_the_largest_come_first_ties_by_pid() {
        let (cpu, memory) = rank(
            vec![p(3, 5.0, 10), p(1, 50.0, 5), p(2, 5.0, 900), p(4, 0.0, 900)],
            3,
        );
        let pids = |list: &[Candidate]| list.iter().map(|p| p.pid).collect::<Vec<_>>();
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
