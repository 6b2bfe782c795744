use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use flick_shared::wire::{AlertEvent, AlertSeverity, AlertState, ServerId};

use super::*;
use crate::notify::notice::{Channel, Kind, Route};

#[derive(Default)]
struct World {
    tags: HashMap<String, Vec<String>>,
    silenced_until: Option<DateTime<Utc>>,
    acked: Vec<(String, String)>,
}

impl Circumstances for World {
    fn tags(&self, server: &ServerId) -> &[String] {
        self.tags
            .get(server.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
    fn silenced(&self, _: &AlertEvent, now: DateTime<Utc>) -> bool {
        self.silenced_until.is_some_and(|until| now < until)
    }
    fn acknowledged(&self, server: &ServerId, metric: &str, container: &str) -> bool {
        container.is_empty()
            && self
                .acked
                .iter()
                .any(|(s, m)| s == server.as_str() && m == metric)
    }
}

fn channel(route: Route) -> Channel {
    Channel {
        id: Uuid::new_v4(),
        name: "ops".into(),
        kind: Kind::Webhook,
        url: "https://hooks.example/flick".into(),
        headers: Vec::new(),
        signing_secret: None,
        secret: None,
        settings: serde_json::Value::Null,
        route,
    }
}

struct Alert {
    id: Uuid,
    server: &'static str,
    metric: &'static str,
    severity: AlertSeverity,
}

fn alert(server: &'static str, metric: &'static str, severity: AlertSeverity) -> Alert {
    Alert {
        id: Uuid::new_v4(),
        server,
        metric,
        severity,
    }
}

impl Alert {
    fn event(&self, state: AlertState) -> AlertEvent {
        AlertEvent {
            v: 1,
            id: Uuid::new_v4(),
            alert_id: self.id,
            server_id: ServerId::parse(self.server).expect("id"),
            metric: self.metric.into(),
            severity: self.severity,
            state,
            value: Some(97.0),
            threshold: Some(90.0),
            started_at: t0(),
            at: t0(),
            message: None,
            top_processes: Vec::new(),
            container: None,
        }
    }
    fn firing(&self) -> AlertEvent {
        self.event(AlertState::Firing)
    }
    fn resolved(&self) -> AlertEvent {
        self.event(AlertState::Resolved)
    }
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("time")
}

/// The (alert id, state) pairs of one channel's notice.
fn sent(plan: &[(Uuid, Vec<AlertEvent>)], channel: &Channel) -> Vec<(Uuid, AlertState)> {
    plan.iter()
        .filter(|(id, _)| *id == channel.id)
        .flat_map(|(_, events)| events.iter().map(|e| (e.alert_id, e.state)))
        .collect()
}

#[test]
fn warning_and_critical_of_one_sample_page_once_with_the_critical() {
    let ops = channel(Route::default());
    let warning = alert("web-1", "cpu", AlertSeverity::Warning);
    let critical = alert("web-1", "cpu", AlertSeverity::Critical);
    let mut incidents = Incidents::default();
    let world = World::default();
    let plan = incidents.take(
        &[warning.firing(), critical.firing()],
        std::slice::from_ref(&ops),
        &world,
        t0(),
    );
    assert_eq!(
        sent(&plan.notices, &ops),
        [(critical.id, AlertState::Firing)]
    );

    // Both resolve: only the critical one was sent, so only its resolution is.
    let plan = incidents.take(
        &[critical.resolved(), warning.resolved()],
        std::slice::from_ref(&ops),
        &world,
        t0(),
    );
    assert_eq!(
        sent(&plan.notices, &ops),
        [(critical.id, AlertState::Resolved)]
    );
}

#[test]
fn a_warning_that_escalates_is_followed_by_its_critical_and_de_escalation_sends_nothing_new() {
    let ops = channel(Route::default());
    let warning = alert("web-1", "cpu", AlertSeverity::Warning);
    let critical = alert("web-1", "cpu", AlertSeverity::Critical);
    let mut incidents = Incidents::default();
    let world = World::default();
    let plan = incidents.take(
        &[warning.firing()],
        std::slice::from_ref(&ops),
        &world,
        t0(),
    );
    assert_eq!(
        sent(&plan.notices, &ops),
        [(warning.id, AlertState::Firing)]
    );
    let plan = incidents.take(
        &[critical.firing()],
        std::slice::from_ref(&ops),
        &world,
        t0(),
    );
    assert_eq!(
        sent(&plan.notices, &ops),
        [(critical.id, AlertState::Firing)]
    );
    let plan = incidents.take(
        &[critical.resolved()],
        std::slice::from_ref(&ops),
        &world,
        t0(),
    );
    assert_eq!(
        sent(&plan.notices, &ops),
        [(critical.id, AlertState::Resolved)]
    );
}

#[test]
fn offline_withholds_the_servers_metric_alerts_and_their_resolutions() {
    let ops = channel(Route::default());
    let offline = alert("web-1", "offline", AlertSeverity::Critical);
    let disk = alert("web-1", "disk", AlertSeverity::Critical);
    let mut incidents = Incidents::default();
    let world = World::default();
    let plan = incidents.take(
        &[offline.firing(), disk.firing()],
        std::slice::from_ref(&ops),
        &world,
        t0(),
    );
    assert_eq!(
        sent(&plan.notices, &ops),
        [(offline.id, AlertState::Firing)]
    );
    let plan = incidents.take(&[disk.resolved()], std::slice::from_ref(&ops), &world, t0());
    assert!(plan.is_empty(), "{plan:?}");
}

#[test]
fn fifty_servers_offline_in_one_window_are_one_notice() {
    let ops = channel(Route::default());
    let alerts: Vec<_> = (0..50)
        .map(|i| {
            let server: &'static str = Box::leak(format!("web-{i:02}").into_boxed_str());
            alert(server, "offline", AlertSeverity::Critical)
        })
        .collect();
    let events: Vec<_> = alerts.iter().map(Alert::firing).collect();
    let mut incidents = Incidents::default();
    let plan = incidents.take(&events, std::slice::from_ref(&ops), &World::default(), t0());
    assert_eq!(plan.notices.len(), 1);
    assert_eq!(plan.notices[0].1.len(), 50);
}

#[test]
fn an_alert_that_fires_and_resolves_within_the_window_is_not_sent() {
    let ops = channel(Route::default());
    let cpu = alert("web-1", "cpu", AlertSeverity::Warning);
    let mut incidents = Incidents::default();
    let plan = incidents.take(
        &[cpu.firing(), cpu.resolved()],
        &[ops],
        &World::default(),
        t0(),
    );
    assert!(plan.is_empty(), "{plan:?}");
}

#[test]
fn routes_take_severity_and_tags_and_resolutions_go_where_firings_went() {
    let pager = channel(Route {
        critical_only: true,
        tags: Vec::new(),
    });
    let db_team = channel(Route {
        critical_only: false,
        tags: vec!["db".into()],
    });
    let world = World {
        tags: HashMap::from([("db-1".into(), vec!["db".into(), "eu".into()])]),
        ..World::default()
    };
    let channels = [pager.clone(), db_team.clone()];
    let web_warning = alert("web-1", "memory", AlertSeverity::Warning);
    let db_warning = alert("db-1", "memory", AlertSeverity::Warning);
    let db_disk = alert("db-1", "disk", AlertSeverity::Critical);
    let mut incidents = Incidents::default();
    let plan = incidents.take(
        &[web_warning.firing(), db_warning.firing(), db_disk.firing()],
        &channels,
        &world,
        t0(),
    );
    assert_eq!(
        sent(&plan.notices, &pager),
        [(db_disk.id, AlertState::Firing)]
    );
    assert_eq!(
        sent(&plan.notices, &db_team),
        [
            (db_warning.id, AlertState::Firing),
            (db_disk.id, AlertState::Firing)
        ]
    );
    let plan = incidents.take(&[db_warning.resolved()], &channels, &world, t0());
    assert!(sent(&plan.notices, &pager).is_empty());
    assert_eq!(
        sent(&plan.notices, &db_team),
        [(db_warning.id, AlertState::Resolved)]
    );
}

#[test]
fn a_silenced_alert_is_sent_when_the_silence_ends_if_it_still_fires() {
    let ops = channel(Route::default());
    let cpu = alert("web-1", "cpu", AlertSeverity::Critical);
    let until = t0() + Duration::minutes(10);
    let world = World {
        silenced_until: Some(until),
        ..World::default()
    };
    let mut incidents = Incidents::default();
    let plan = incidents.take(&[cpu.firing()], std::slice::from_ref(&ops), &world, t0());
    assert!(plan.is_empty(), "silenced: {plan:?}");
    let plan = incidents.tick(
        std::slice::from_ref(&ops),
        |_| None,
        &world,
        until - Duration::seconds(1),
    );
    assert!(plan.is_empty(), "still silenced: {plan:?}");
    let plan = incidents.tick(std::slice::from_ref(&ops), |_| None, &world, until);
    assert_eq!(sent(&plan.notices, &ops), [(cpu.id, AlertState::Firing)]);
    let plan = incidents.tick(
        std::slice::from_ref(&ops),
        |_| None,
        &world,
        until + Duration::minutes(1),
    );
    assert!(plan.is_empty(), "sent once: {plan:?}");
}

#[test]
fn repeats_come_every_interval_unless_acknowledged() {
    let ops = channel(Route::default());
    let cpu = alert("web-1", "cpu", AlertSeverity::Critical);
    let mut world = World::default();
    let mut incidents = Incidents::default();
    incidents.take(&[cpu.firing()], std::slice::from_ref(&ops), &world, t0());
    let every = |_: &Channel| Some(Duration::minutes(30));
    let plan = incidents.tick(
        std::slice::from_ref(&ops),
        every,
        &world,
        t0() + Duration::minutes(29),
    );
    assert!(plan.is_empty());
    let plan = incidents.tick(
        std::slice::from_ref(&ops),
        every,
        &world,
        t0() + Duration::minutes(30),
    );
    assert_eq!(sent(&plan.repeats, &ops), [(cpu.id, AlertState::Firing)]);
    assert!(plan.notices.is_empty());
    world.acked.push(("web-1".into(), "cpu".into()));
    let plan = incidents.tick(
        std::slice::from_ref(&ops),
        every,
        &world,
        t0() + Duration::minutes(90),
    );
    assert!(plan.is_empty(), "acknowledged: {plan:?}");
}

#[test]
fn a_new_leader_does_not_resend_what_was_sent_and_resolves_where_it_went() {
    let ops = channel(Route::default());
    let other = channel(Route::default());
    let cpu = alert("web-1", "cpu", AlertSeverity::Critical);
    let sent_before = HashMap::from([(cpu.id, HashMap::from([(ops.id, t0())]))]);
    let mut incidents = Incidents::resume(vec![cpu.firing()], &sent_before);
    let channels = [ops.clone(), other.clone()];
    let plan = incidents.tick(
        &channels,
        |_| None,
        &World::default(),
        t0() + Duration::hours(1),
    );
    assert!(plan.is_empty(), "{plan:?}");
    let plan = incidents.take(&[cpu.resolved()], &channels, &World::default(), t0());
    assert_eq!(sent(&plan.notices, &ops), [(cpu.id, AlertState::Resolved)]);
    assert!(sent(&plan.notices, &other).is_empty());
}
