//! `AlertEvent`: one alert state change (firing or resolved), published exactly once per
//! transition on `<prefix>.alerts.<serverId>`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Payload, ProcessUsage, ServerId, check_not_in_future, default_version};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertEvent {
    #[serde(default = "default_version")]
    pub v: u32,
    /// Unique per transition; the firing and the resolution of one alert share `alertId`.
    pub id: Uuid,
    /// Identifies one alert from firing to resolution.
    pub alert_id: Uuid,
    pub server_id: ServerId,
    /// What is watched: `cpu`, `memory`, `disk`, `offline`, … (new metrics may appear).
    pub metric: String,
    pub severity: AlertSeverity,
    pub state: AlertState,
    /// The value that caused the transition; absent for `offline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// When the alert started firing.
    #[serde(with = "super::timestamp")]
    pub started_at: DateTime<Utc>,
    /// When this transition happened.
    #[serde(with = "super::timestamp")]
    pub at: DateTime<Utc>,
    /// A sentence for people (webhooks, dashboards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// On a firing transition: what was eating the host, from its newest process list (the
    /// busiest by CPU, or the largest by memory for a `memory` alert), at most
    /// [`TOP_PROCESSES_ON_ALERTS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_processes: Vec<ProcessUsage>,
    /// The container a container alert (`container_stopped`, `container_restarting`,
    /// `container_unhealthy`) is about, by name: one alert per container, so two containers
    /// of a server that stop are two alerts. Absent on every other alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// Processes attached to a firing alert.
pub const TOP_PROCESSES_ON_ALERTS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertSeverity {
    Warning,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Firing,
    Resolved,
}

impl AlertEvent {
    /// The `Nats-Msg-Id`: the transition's own id, so a re-sent transition is a duplicate.
    pub fn message_id(&self) -> String {
        self.id.to_string()
    }
}

impl Payload for AlertEvent {
    fn version(&self) -> u32 {
        self.v
    }

    fn check(&self, now: DateTime<Utc>) -> Result<(), String> {
        let metric_ok = !self.metric.is_empty()
            && self.metric.len() <= 32
            && self
                .metric
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !metric_ok {
            return Err(format!(
                "metric {:?} is not a short lowercase name",
                self.metric
            ));
        }
        if let Some(container) = &self.container {
            super::check_no_nul("container", container)?;
            if container.is_empty() || container.chars().count() > super::MAX_CONTAINER_TEXT {
                return Err("container is empty or too long".into());
            }
        }
        if self.started_at > self.at {
            return Err("startedAt is after at".into());
        }
        check_not_in_future("at", self.at, now)
    }
}

impl super::ServerPayload for AlertEvent {
    const KIND: crate::subjects::StreamKind = crate::subjects::StreamKind::Alerts;
    fn server_id(&self) -> &ServerId {
        &self.server_id
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::*;

    #[test]
    fn round_trips_and_tolerates_unknown_fields() {
        let now = Utc::now();
        let event = AlertEvent {
            v: 1,
            id: Uuid::new_v4(),
            alert_id: Uuid::new_v4(),
            server_id: ServerId::parse("s1").expect("valid"),
            metric: "cpu".into(),
            severity: AlertSeverity::Critical,
            state: AlertState::Firing,
            value: Some(95.5),
            threshold: Some(90.0),
            started_at: now - chrono::Duration::seconds(10),
            at: now,
            message: None,
            top_processes: Vec::new(),
            container: None,
        };
        let mut json = serde_json::to_value(&event).expect("serialises");
        assert_eq!(json["severity"], "critical");
        assert_eq!(json["state"], "firing");
        json["runbook"] = "https://example.com".into();
        let back: AlertEvent =
            decode(&serde_json::to_vec(&json).expect("serialises"), now).expect("decodes");
        assert_eq!(back.id, event.id);
        assert_eq!(back.value, event.value);
        assert_eq!(back.at.timestamp_millis(), event.at.timestamp_millis());
        assert!(json.get("container").is_none(), "absent on a host alert");
        assert_eq!(back.container, None);

        let on_container = AlertEvent {
            metric: "container_stopped".into(),
            container: Some("web-1".into()),
            ..event
        };
        let json = serde_json::to_vec(&on_container).expect("serialises");
        let back: AlertEvent = decode(&json, now).expect("decodes");
        assert_eq!(back.container.as_deref(), Some("web-1"));
    }
}
