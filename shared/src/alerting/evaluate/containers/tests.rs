use std::collections::HashMap;

use chrono::TimeZone;

use super::*;
use crate::alerting::rules::RuleSet;
use crate::wire::MetricSample;

fn at(second: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + second, 0)
        .single()
        .expect("valid")
}

fn container(name: &str, state: &str) -> ContainerUsage {
    ContainerUsage {
        id: "0123456789ab".into(),
        name: name.into(),
        image: "busybox".into(),
        state: state.into(),
        health: None,
        exit_code: (state != "running").then_some(137),
        restarts: 0,
        cpu_percent: 0.0,
        memory_bytes: 0,
        memory_limit_bytes: None,
        net_rx_bytes: 0,
        net_tx_bytes: 0,
        block_read_bytes: 0,
        block_write_bytes: 0,
    }
}

fn sample(second: i64, containers: Option<Vec<ContainerUsage>>) -> MetricSample {
    MetricSample {
        containers,
        ..MetricSample::minimal(
            ServerId::parse("web-host").expect("valid"),
            at(second),
            10.0,
            10.0,
            10.0,
            0,
        )
    }
}

fn feed(evaluator: &mut Evaluator, samples: &[MetricSample]) -> Vec<AlertEvent> {
    let rules = RuleSet::new(HashMap::new());
    let mut events = Vec::new();
    for s in samples {
        evaluator.observe(s, &rules, &mut events);
    }
    events
}

fn names(events: &[AlertEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!(
                "{} {} {:?}",
                e.metric,
                e.container.as_deref().unwrap_or("-"),
                e.state
            )
        })
        .collect()
}

#[test]
fn a_running_container_that_stops_fires_once_and_resolves_when_it_runs_again() {
    let mut evaluator = Evaluator::default();
    let events = feed(
        &mut evaluator,
        &[
            sample(0, Some(vec![container("web-1", "running")])),
            sample(5, Some(vec![container("web-1", "exited")])),
            sample(6, None),
            sample(10, Some(vec![container("web-1", "exited")])),
        ],
    );
    assert_eq!(names(&events), ["container_stopped web-1 Firing"]);
    let fired = &events[0];
    assert_eq!(fired.severity, AlertSeverity::Critical);
    assert_eq!(fired.value, Some(137.0));
    assert_eq!(
        fired.message.as_deref(),
        Some("container web-1 stopped (exited 137) on web-host")
    );

    let events = feed(
        &mut evaluator,
        &[
            sample(15, Some(vec![container("web-1", "running")])),
            sample(20, Some(vec![container("web-1", "running")])),
        ],
    );
    assert_eq!(names(&events), ["container_stopped web-1 Resolved"]);
    assert_eq!(events[0].alert_id, fired.alert_id, "the same alert ends");

    // Armed again: a second stop is a second alert.
    let events = feed(
        &mut evaluator,
        &[sample(25, Some(vec![container("web-1", "dead")]))],
    );
    assert_eq!(names(&events), ["container_stopped web-1 Firing"]);
    assert_ne!(events[0].alert_id, fired.alert_id);
}

#[test]
fn a_container_never_seen_running_does_not_page() {
    let mut evaluator = Evaluator::default();
    let events = feed(
        &mut evaluator,
        &[
            sample(0, Some(vec![container("job", "exited")])),
            sample(5, Some(vec![container("job", "exited")])),
            sample(10, Some(vec![container("job", "created")])),
        ],
    );
    assert!(events.is_empty(), "{:?}", names(&events));
}

#[test]
fn a_removed_container_resolves_and_an_empty_list_means_removed_but_no_list_means_nothing() {
    let mut evaluator = Evaluator::default();
    feed(
        &mut evaluator,
        &[
            sample(
                0,
                Some(vec![container("a", "running"), container("b", "running")]),
            ),
            sample(
                5,
                Some(vec![container("a", "exited"), container("b", "exited")]),
            ),
        ],
    );
    assert!(feed(&mut evaluator, &[sample(6, None)]).is_empty());
    let events = feed(
        &mut evaluator,
        &[sample(10, Some(vec![container("b", "exited")]))],
    );
    assert_eq!(names(&events), ["container_stopped a Resolved"]);
    assert_eq!(
        events[0].message.as_deref(),
        Some("container a was removed from web-host")
    );
    let events = feed(&mut evaluator, &[sample(15, Some(Vec::new()))]);
    assert_eq!(names(&events), ["container_stopped b Resolved"]);
    assert!(evaluator.phases.is_empty(), "nothing left armed");
}

#[test]
fn a_restart_loop_fires_once_and_resolves_after_a_quiet_window() {
    let mut evaluator = Evaluator::default();
    let looping = |second: i64, restarts: u64, state: &str| {
        let mut c = container("worker", state);
        c.restarts = restarts;
        sample(second, Some(vec![c]))
    };
    let events = feed(
        &mut evaluator,
        &[
            looping(0, 0, "running"),
            looping(30, 1, "running"),
            looping(60, 2, "running"),
            looping(90, 3, "running"),
            looping(95, 4, "running"),
        ],
    );
    assert_eq!(names(&events), ["container_restarting worker Firing"]);
    assert_eq!(events[0].severity, AlertSeverity::Warning);
    assert_eq!(events[0].value, Some(3.0));
    assert_eq!(events[0].threshold, Some(3.0));
    assert!(
        events[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("restarting in a loop (3 restarts in 5 min)")),
        "{:?}",
        events[0].message
    );
    // Quiet but not for a whole window yet: still firing.
    let quiet: Vec<MetricSample> = (1..=5)
        .map(|m| looping(95 + m * 50, 4, "running"))
        .collect();
    assert!(feed(&mut evaluator, &quiet).is_empty());
    let events = feed(&mut evaluator, &[looping(95 + 6 * 60, 4, "running")]);
    assert_eq!(names(&events), ["container_restarting worker Resolved"]);
}

#[test]
fn the_restarting_state_fires_at_once_and_a_recreated_container_starts_a_new_history() {
    let mut evaluator = Evaluator::default();
    let mut c = container("worker", "restarting");
    c.restarts = 7;
    let events = feed(&mut evaluator, &[sample(0, Some(vec![c.clone()]))]);
    assert_eq!(names(&events), ["container_restarting worker Firing"]);
    assert_eq!(
        events[0].message.as_deref(),
        Some("container worker is restarting on web-host")
    );

    let mut history = RestartHistory::default();
    history.record(at(0), 7);
    history.record(at(10), 9);
    assert_eq!(history.in_window(), 2);
    history.record(at(20), 0);
    assert_eq!(
        history.in_window(),
        0,
        "a count that went down is a new container"
    );
    assert!(!history.covers_window(at(20)));
    assert!(history.covers_window(at(20) + LOOP_WINDOW));
}

#[test]
fn unhealthy_fires_and_healthy_resolves() {
    let mut evaluator = Evaluator::default();
    let with_health = |second: i64, health: &str| {
        let mut c = container("api", "running");
        c.health = Some(health.into());
        sample(second, Some(vec![c]))
    };
    let events = feed(
        &mut evaluator,
        &[
            with_health(0, "starting"),
            with_health(5, "unhealthy"),
            with_health(10, "unhealthy"),
            with_health(15, "healthy"),
        ],
    );
    assert_eq!(
        names(&events),
        [
            "container_unhealthy api Firing",
            "container_unhealthy api Resolved"
        ]
    );
    assert_eq!(
        events[0].message.as_deref(),
        Some("container api is unhealthy on web-host")
    );
}

#[test]
fn a_resumed_evaluator_fires_for_a_container_armed_before_the_failover() {
    let mut first = Evaluator::default();
    feed(
        &mut first,
        &[sample(0, Some(vec![container("web-1", "running")]))],
    );
    let persisted: HashMap<Key, Phase> = first
        .take_changes()
        .into_iter()
        .filter_map(|(key, phase)| Some((key, phase?)))
        .collect();
    assert_eq!(persisted.len(), 1, "the arming is persisted");

    let mut resumed = Evaluator::resume(persisted);
    let events = feed(
        &mut resumed,
        &[
            sample(5, Some(vec![container("web-1", "exited")])),
            sample(10, Some(vec![container("web-1", "exited")])),
        ],
    );
    assert_eq!(names(&events), ["container_stopped web-1 Firing"]);
}

#[test]
fn a_removed_server_closes_its_container_alerts() {
    let mut evaluator = Evaluator::default();
    feed(
        &mut evaluator,
        &[
            sample(0, Some(vec![container("web-1", "running")])),
            sample(5, Some(vec![container("web-1", "exited")])),
        ],
    );
    let mut events = Vec::new();
    let server = ServerId::parse("web-host").expect("valid");
    evaluator.forget(&server, at(10), &mut events);
    assert_eq!(names(&events), ["container_stopped web-1 Resolved"]);
    assert_eq!(events[0].container.as_deref(), Some("web-1"));
}
