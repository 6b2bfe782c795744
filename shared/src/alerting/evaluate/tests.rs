use std::collections::HashMap;

use chrono::{Duration, TimeZone};

use super::*;
use crate::alerting::rules::Rule;

fn rules() -> RuleSet {
    let rule = |warning, critical| Rule {
        warning: Some(warning),
        critical: Some(critical),
        hold: Duration::seconds(10),
        margin: 5.0,
        enabled: true,
    };
    RuleSet::new(HashMap::from([
        (Metric::Cpu, rule(80.0, 90.0)),
        (Metric::Memory, rule(80.0, 90.0)),
        (Metric::Disk, rule(85.0, 95.0)),
    ]))
}

fn sample(server: &str, second: i64, cpu: f64) -> MetricSample {
    MetricSample::minimal(
        ServerId::parse(server).expect("valid"),
        Utc.timestamp_opt(1_800_000_000 + second, 0)
            .single()
            .expect("valid"),
        cpu,
        40.0,
        50.0,
        0,
    )
}

fn feed(evaluator: &mut Evaluator, rules: &RuleSet, cpu: &[(i64, f64)]) -> Vec<AlertEvent> {
    let mut events = Vec::new();
    for (second, value) in cpu {
        evaluator.observe(&sample("web-1", *second, *value), rules, &mut events);
    }
    events
}

fn names(events: &[AlertEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{} {:?} {:?}", e.metric, e.severity, e.state).to_lowercase())
        .collect()
}

#[test]
fn cpu_50_95_50_gives_warning_critical_then_critical_warning_resolved_each_once() {
    let mut evaluator = Evaluator::default();
    let values: Vec<(i64, f64)> = (0..60)
        .map(|s| (s, if (15..40).contains(&s) { 95.0 } else { 50.0 }))
        .collect();
    let events = feed(&mut evaluator, &rules(), &values);
    assert_eq!(
        names(&events),
        [
            "cpu warning firing",
            "cpu critical firing",
            "cpu critical resolved",
            "cpu warning resolved"
        ]
    );
    let (warning_fired, warning_resolved) = (&events[0], &events[3]);
    assert_eq!(
        warning_fired.alert_id, warning_resolved.alert_id,
        "one alert, two transitions"
    );
    assert_eq!(warning_resolved.started_at, warning_fired.at);
    assert_eq!(warning_fired.value, Some(95.0));
    assert_eq!(warning_fired.threshold, Some(80.0));
    assert!(
        events
            .iter()
            .all(|e| e.id != events[0].id || std::ptr::eq(e, &events[0])),
        "event ids are unique"
    );
    assert_eq!(evaluator.firing(), 0);
}

#[test]
fn oscillating_79_81_never_fires_and_81_held_fires_once() {
    let mut evaluator = Evaluator::default();
    let wobble: Vec<(i64, f64)> = (0..100)
        .map(|s| (s, if s % 2 == 0 { 79.0 } else { 81.0 }))
        .collect();
    assert!(feed(&mut evaluator, &rules(), &wobble).is_empty());
    let held: Vec<(i64, f64)> = (100..130).map(|s| (s, 81.0)).collect();
    assert_eq!(
        names(&feed(&mut evaluator, &rules(), &held)),
        ["cpu warning firing"]
    );
}

#[test]
fn a_resumed_evaluator_neither_refires_nor_forgets_to_resolve() {
    let mut first = Evaluator::default();
    let rising: Vec<(i64, f64)> = (0..20).map(|s| (s, 85.0)).collect();
    assert_eq!(
        names(&feed(&mut first, &rules(), &rising)),
        ["cpu warning firing"]
    );
    let persisted: HashMap<Key, Phase> = first
        .take_changes()
        .into_iter()
        .filter_map(|(key, phase)| Some((key, phase?)))
        .collect();

    let mut resumed = Evaluator::resume(persisted);
    let still: Vec<(i64, f64)> = (20..40).map(|s| (s, 86.0)).collect();
    assert!(
        feed(&mut resumed, &rules(), &still).is_empty(),
        "no second firing"
    );
    let events = feed(&mut resumed, &rules(), &[(40, 30.0)]);
    assert_eq!(names(&events), ["cpu warning resolved"]);
}

#[test]
fn only_real_changes_are_reported_for_persisting() {
    let mut evaluator = Evaluator::default();
    feed(&mut evaluator, &rules(), &[(0, 10.0), (1, 20.0)]);
    assert!(!evaluator.has_changes(), "ok stays ok: nothing to write");
    feed(&mut evaluator, &rules(), &[(2, 85.0)]);
    assert_eq!(evaluator.take_changes().len(), 1, "warning pending");
    feed(&mut evaluator, &rules(), &[(3, 86.0), (4, 87.0)]);
    assert!(!evaluator.has_changes(), "still pending");
}

#[test]
fn silence_fires_offline_once_and_a_sample_resolves_it() {
    let mut evaluator = Evaluator::default();
    let server = ServerId::parse("web-1").expect("valid");
    let now = Utc::now();
    let mut events = Vec::new();
    evaluator.silent(&server, 30, now, &mut events);
    evaluator.silent(&server, 31, now + Duration::seconds(1), &mut events);
    evaluator.heard_from(&server, now + Duration::seconds(2), &mut events);
    evaluator.heard_from(&server, now + Duration::seconds(3), &mut events);
    assert_eq!(
        names(&events),
        ["offline critical firing", "offline critical resolved"]
    );
    assert_eq!(events[0].value, None);
}

#[test]
fn a_disabled_rule_resolves_what_it_fired() {
    let mut evaluator = Evaluator::default();
    let rising: Vec<(i64, f64)> = (0..12).map(|s| (s, 85.0)).collect();
    feed(&mut evaluator, &rules(), &rising);
    let server = ServerId::parse("web-1").expect("valid");
    let disabled = rules().with_overrides(HashMap::from([(
        ("web-1".to_owned(), Metric::Cpu),
        Rule {
            warning: Some(80.0),
            critical: Some(90.0),
            hold: Duration::seconds(10),
            margin: 5.0,
            enabled: false,
        },
    )]));
    let events = feed(&mut evaluator, &disabled, &[(12, 85.0)]);
    assert_eq!(names(&events), ["cpu warning resolved"]);
    assert!(
        evaluator
            .phase(&(server, Metric::Cpu, AlertSeverity::Warning, String::new()))
            .is_none()
    );
}
