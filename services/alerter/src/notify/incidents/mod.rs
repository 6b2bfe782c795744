//! Which transitions become notices, to which channel: one page per incident.
//!
//! Every transition is recorded and published; this decides only what reaches a person. While
//! a critical alert fires for a server and metric (and container), its warning is not notified (the critical
//! one is the page; a warning that fired first and then escalated is followed by the critical
//! one, which updates the incident). While `offline` fires for a server, its metric alerts are
//! not notified. A silence or an acknowledgement withholds firing alerts; a resolution is sent
//! only to the channels that were sent the alert's firing. An alert that fires and resolves
//! within one grouping window is not sent at all. An alert withheld for a reason that ends (its
//! critical resolved, its silence ended) is sent then, if it still fires.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use flick_shared::wire::{AlertEvent, AlertSeverity, AlertState, ServerId};

use super::notice::Channel;

/// What the notifier knows when it decides, besides the alerts themselves.
pub trait Circumstances {
    /// The server's tags (for channel routes).
    fn tags(&self, server: &ServerId) -> &[String];
    /// A silence covers this transition now.
    fn silenced(&self, event: &AlertEvent, now: DateTime<Utc>) -> bool;
    /// The incident (server, metric and container, `""` for the host's own) is acknowledged.
    fn acknowledged(&self, server: &ServerId, metric: &str, container: &str) -> bool;
}

/// A firing alert and where it was sent.
#[derive(Debug, Clone)]
struct Tracked {
    event: AlertEvent,
    /// Channel → when it was last sent this alert (firing or repeat).
    sent: HashMap<Uuid, DateTime<Utc>>,
    /// Held back (inhibited, silenced, acknowledged, …) at least once: worth re-checking.
    withheld: bool,
}

/// What to send: per channel, the transitions of one notice, and the repeats.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub notices: Vec<(Uuid, Vec<AlertEvent>)>,
    pub repeats: Vec<(Uuid, Vec<AlertEvent>)>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.notices.is_empty() && self.repeats.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct Incidents {
    firing: HashMap<Uuid, Tracked>,
}

impl Incidents {
    /// The alerts firing when a leader takes over, and where each was sent before (from the
    /// recorded notices): they are not sent again, and their resolution goes where they went.
    pub fn resume(
        firing: Vec<AlertEvent>,
        sent: &HashMap<Uuid, HashMap<Uuid, DateTime<Utc>>>,
    ) -> Self {
        Self {
            firing: firing
                .into_iter()
                .map(|event| {
                    let sent = sent.get(&event.alert_id).cloned().unwrap_or_default();
                    (
                        event.alert_id,
                        Tracked {
                            event,
                            sent,
                            withheld: false,
                        },
                    )
                })
                .collect(),
        }
    }

    pub fn firing(&self) -> impl Iterator<Item = &AlertEvent> {
        self.firing.values().map(|tracked| &tracked.event)
    }

    /// Incidents (server, metric, container) with at least one firing alert.
    pub fn open_incidents(&self) -> HashSet<(ServerId, String, String)> {
        self.firing
            .values()
            .map(|t| {
                (
                    t.event.server_id.clone(),
                    t.event.metric.clone(),
                    t.event.container.clone().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Takes the transitions of one grouping window, in the order they were decided.
    pub fn take(
        &mut self,
        events: &[AlertEvent],
        channels: &[Channel],
        circumstances: &impl Circumstances,
        now: DateTime<Utc>,
    ) -> Plan {
        let mut resolved: HashMap<Uuid, Tracked> = HashMap::new();
        for event in events {
            match event.state {
                AlertState::Firing => {
                    self.firing.insert(
                        event.alert_id,
                        Tracked {
                            event: event.clone(),
                            sent: HashMap::new(),
                            withheld: false,
                        },
                    );
                }
                AlertState::Resolved => {
                    if let Some(tracked) = self.firing.remove(&event.alert_id) {
                        resolved.insert(event.alert_id, tracked);
                    }
                }
            }
        }
        let mut per_channel: HashMap<Uuid, Vec<AlertEvent>> = HashMap::new();
        for event in events {
            match event.state {
                AlertState::Firing => {
                    // Fired and resolved within the window: nothing to page about.
                    if !self.firing.contains_key(&event.alert_id) {
                        continue;
                    }
                    let taken = self.offer(event.alert_id, channels, circumstances, now);
                    for channel in taken {
                        per_channel.entry(channel).or_default().push(event.clone());
                    }
                }
                AlertState::Resolved => {
                    if let Some(tracked) = resolved.get(&event.alert_id) {
                        for channel in channels.iter().filter(|c| tracked.sent.contains_key(&c.id))
                        {
                            per_channel
                                .entry(channel.id)
                                .or_default()
                                .push(event.clone());
                        }
                    }
                }
            }
        }
        let mut plan = Plan {
            notices: ordered(per_channel, channels),
            repeats: Vec::new(),
        };
        let released = self.release(channels, circumstances, now);
        merge(&mut plan.notices, released, channels);
        plan
    }

    /// What time alone changes: withheld alerts whose reason ended, and repeats that are due.
    pub fn tick(
        &mut self,
        channels: &[Channel],
        repeat_every: impl Fn(&Channel) -> Option<chrono::Duration>,
        circumstances: &impl Circumstances,
        now: DateTime<Utc>,
    ) -> Plan {
        let notices = self.release(channels, circumstances, now);
        let mut repeats: HashMap<Uuid, Vec<AlertEvent>> = HashMap::new();
        let blocked: Vec<Uuid> = self
            .firing
            .keys()
            .filter(|id| self.held_back(id, circumstances, now))
            .copied()
            .collect();
        for (id, tracked) in &mut self.firing {
            if blocked.contains(id) {
                continue;
            }
            for channel in channels {
                let (Some(every), Some(last)) =
                    (repeat_every(channel), tracked.sent.get(&channel.id))
                else {
                    continue;
                };
                if now - *last >= every {
                    tracked.sent.insert(channel.id, now);
                    repeats
                        .entry(channel.id)
                        .or_default()
                        .push(tracked.event.clone());
                }
            }
        }
        Plan {
            notices,
            repeats: ordered(repeats, channels),
        }
    }

    /// Offers withheld alerts again to the channels they did not reach.
    fn release(
        &mut self,
        channels: &[Channel],
        circumstances: &impl Circumstances,
        now: DateTime<Utc>,
    ) -> Vec<(Uuid, Vec<AlertEvent>)> {
        let withheld: Vec<Uuid> = self
            .firing
            .iter()
            .filter(|(_, t)| t.withheld)
            .map(|(id, _)| *id)
            .collect();
        let mut per_channel: HashMap<Uuid, Vec<AlertEvent>> = HashMap::new();
        for id in withheld {
            let event = self.firing[&id].event.clone();
            for channel in self.offer(id, channels, circumstances, now) {
                per_channel.entry(channel).or_default().push(event.clone());
            }
        }
        ordered(per_channel, channels)
    }

    /// The channels that take this firing alert now, marked as sent; marks it withheld when
    /// a channel that routes it was held back.
    fn offer(
        &mut self,
        id: Uuid,
        channels: &[Channel],
        circumstances: &impl Circumstances,
        now: DateTime<Utc>,
    ) -> Vec<Uuid> {
        let held_back = self.held_back(&id, circumstances, now);
        let Some(tracked) = self.firing.get_mut(&id) else {
            return Vec::new();
        };
        let mut taken = Vec::new();
        let mut withheld = false;
        for channel in channels {
            if tracked.sent.contains_key(&channel.id)
                || !routes(channel, &tracked.event, circumstances)
            {
                continue;
            }
            if held_back {
                withheld = true;
                continue;
            }
            tracked.sent.insert(channel.id, now);
            taken.push(channel.id);
        }
        tracked.withheld = withheld;
        taken
    }

    /// Inhibited by another firing alert, silenced, or acknowledged.
    fn held_back(&self, id: &Uuid, circumstances: &impl Circumstances, now: DateTime<Utc>) -> bool {
        let Some(tracked) = self.firing.get(id) else {
            return true;
        };
        let event = &tracked.event;
        let inhibited = self.firing.values().any(|other| {
            other.event.server_id == event.server_id
                && ((other.event.metric == "offline" && event.metric != "offline")
                    || (other.event.metric == event.metric
                        && other.event.container == event.container
                        && other.event.severity == AlertSeverity::Critical
                        && event.severity == AlertSeverity::Warning))
        });
        inhibited
            || circumstances.silenced(event, now)
            || circumstances.acknowledged(
                &event.server_id,
                &event.metric,
                event.container.as_deref().unwrap_or(""),
            )
    }
}

/// Whether `channel`'s route takes `event` (severity and server tags).
pub fn routes(channel: &Channel, event: &AlertEvent, circumstances: &impl Circumstances) -> bool {
    if channel.route.critical_only && event.severity != AlertSeverity::Critical {
        return false;
    }
    channel.route.tags.is_empty()
        || circumstances
            .tags(&event.server_id)
            .iter()
            .any(|tag| channel.route.tags.contains(tag))
}

/// In the channels' order, so notices go out in a stable order.
fn ordered(
    mut per_channel: HashMap<Uuid, Vec<AlertEvent>>,
    channels: &[Channel],
) -> Vec<(Uuid, Vec<AlertEvent>)> {
    channels
        .iter()
        .filter_map(|c| per_channel.remove(&c.id).map(|events| (c.id, events)))
        .collect()
}

fn merge(
    into: &mut Vec<(Uuid, Vec<AlertEvent>)>,
    more: Vec<(Uuid, Vec<AlertEvent>)>,
    channels: &[Channel],
) {
    let mut all: HashMap<Uuid, Vec<AlertEvent>> = into.drain(..).collect();
    for (channel, events) in more {
        all.entry(channel).or_default().extend(events);
    }
    *into = ordered(all, channels);
}

#[cfg(test)]
mod tests;
