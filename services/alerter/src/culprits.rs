//! What was eating the host when an alert fired: the newest process list of the server,
//! attached to each firing CPU or memory transition before it is committed, so the stored,
//! published and notified event all say "CPU 97 %: postgres 61 %, java 22 %".

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream;

use flick_shared::Subjects;
use flick_shared::streams::newest_process_list;
use flick_shared::wire::{AlertEvent, AlertState, ProcessList, ServerId, TOP_PROCESSES_ON_ALERTS};

/// A list further than this from the transition's own time (a replayed old sample, a host
/// that stopped listing) says nothing about it.
const FRESH_WITHIN: chrono::Duration = chrono::Duration::seconds(60);
/// Reading a list must never hold up a commit for long.
const READ_TIMEOUT: Duration = Duration::from_millis(500);

/// Whether a transition gets the server's processes: the metrics processes explain.
fn explained_by_processes(event: &AlertEvent) -> bool {
    event.state == AlertState::Firing && matches!(event.metric.as_str(), "cpu" | "memory")
}

/// Attaches each firing CPU or memory transition's processes, and names the first three in
/// its message. A list that cannot be read is left out (logged): the alert matters more.
pub async fn attach(js: &jetstream::Context, subjects: &Subjects, events: &mut [AlertEvent]) {
    let mut lists: HashMap<ServerId, Option<ProcessList>> = HashMap::new();
    for event in events.iter_mut().filter(|e| explained_by_processes(e)) {
        if !lists.contains_key(&event.server_id) {
            let read = tokio::time::timeout(
                READ_TIMEOUT,
                newest_process_list(js, subjects, &event.server_id),
            )
            .await;
            let list = match read {
                Ok(Ok(list)) => list,
                Ok(Err(err)) => {
                    tracing::debug!(server_id = %event.server_id, error = %err, "No process list for the alert");
                    None
                }
                Err(_) => {
                    tracing::debug!(server_id = %event.server_id, "Reading the process list timed out");
                    None
                }
            };
            lists.insert(event.server_id.clone(), list);
        }
        if let Some(list) = lists.get(&event.server_id).and_then(Option::as_ref) {
            describe(event, list);
        }
    }
}

/// `event` with `list`'s ranking for its metric, when the list is from about its time.
pub fn describe(event: &mut AlertEvent, list: &ProcessList) {
    if (list.timestamp - event.at).abs() > FRESH_WITHIN {
        return;
    }
    let ranking = list.ranking_for(&event.metric);
    if ranking.is_empty() {
        return;
    }
    event.top_processes = ranking
        .iter()
        .take(TOP_PROCESSES_ON_ALERTS)
        .cloned()
        .collect();
    let which = if event.metric == "memory" {
        "largest"
    } else {
        "busiest"
    };
    let named = list.summary(&event.metric, 3);
    event.message = Some(match event.message.take() {
        Some(message) => format!("{message}; {which}: {named}"),
        None => format!("{which}: {named}"),
    });
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use flick_shared::wire::{AlertSeverity, ProcessUsage, WIRE_VERSION};
    use uuid::Uuid;

    use super::*;

    fn usage(name: &str, cpu: f64, rss: u64) -> ProcessUsage {
        ProcessUsage {
            pid: 7,
            name: name.into(),
            user: None,
            cpu_percent: cpu,
            resident_bytes: rss,
            command: String::new(),
        }
    }

    fn event(metric: &str) -> AlertEvent {
        AlertEvent {
            v: WIRE_VERSION,
            id: Uuid::new_v4(),
            alert_id: Uuid::new_v4(),
            server_id: ServerId::parse("web-1").expect("id"),
            metric: metric.into(),
            severity: AlertSeverity::Critical,
            state: AlertState::Firing,
            value: Some(97.0),
            threshold: Some(90.0),
            started_at: Utc::now(),
            at: Utc::now(),
            message: Some("CPU usage 97 % on web-1 is above the critical threshold 90 %".into()),
            top_processes: Vec::new(),
            container: None,
        }
    }

    fn list(at: chrono::DateTime<Utc>) -> ProcessList {
        ProcessList {
            v: WIRE_VERSION,
            server_id: ServerId::parse("web-1").expect("id"),
            timestamp: at,
            by_cpu: vec![usage("postgres", 61.0, 10), usage("java", 22.0, 900)],
            by_memory: vec![usage("java", 22.0, 900 << 20), usage("postgres", 61.0, 10)],
        }
    }

    #[test]
    fn a_firing_alert_names_the_ranking_its_metric_calls_for() {
        let mut cpu = event("cpu");
        let at = cpu.at;
        describe(&mut cpu, &list(at));
        assert_eq!(cpu.top_processes[0].name, "postgres");
        assert_eq!(
            cpu.message.as_deref(),
            Some(
                "CPU usage 97 % on web-1 is above the critical threshold 90 %; busiest: postgres 61 %, java 22 %"
            )
        );
        let mut memory = event("memory");
        let at = memory.at;
        describe(&mut memory, &list(at));
        assert_eq!(memory.top_processes[0].name, "java");
        assert!(
            memory
                .message
                .as_deref()
                .is_some_and(|m| m.ends_with("largest: java 900 MiB, postgres 10 B"))
        );
    }

    #[test]
    fn a_list_from_another_time_is_not_attached() {
        let mut cpu = event("cpu");
        let at = cpu.at;
        describe(&mut cpu, &list(at - chrono::Duration::minutes(5)));
        assert!(cpu.top_processes.is_empty());
        assert!(
            !cpu.message
                .as_deref()
                .unwrap_or_default()
                .contains("busiest")
        );
        assert!(!explained_by_processes(&event("disk")));
    }
}
