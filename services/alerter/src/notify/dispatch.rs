//! The leader's notifier: takes committed transitions from `notification_queue`, groups them
//! over `notify_group_secs`, decides with [`Incidents`] what reaches which channel, records
//! each notice, then delivers it and records every attempt.
//!
//! Never twice across a leader change: a notice is recorded (status `sending`) in the same
//! transaction that takes its transitions off the queue, and that transaction commits only
//! while this leader's fencing epoch is current. A notice still `sending` when its leader died
//! is marked `unknown` by the next leader and not sent again (a receiver that needs every
//! notice sees the gap in `GET /alerts/{id}/notifications`, and the transitions are all on
//! NATS); what was sent is read back, so the next leader neither re-pages nor forgets where
//! a resolution must go.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use flick_shared::backoff::Backoff;
use flick_shared::shutdown::CancellationToken;
use flick_shared::wire::{AlertEvent, AlertSeverity, AlertState, ServerId};

use super::incidents::{Circumstances, Incidents, Plan};
use super::notice::{Channel, Notice};
use super::{Entry, Notifier, send};

/// Transitions taken off the queue at once, at most.
const TAKE: i64 = 5_000;

/// Runs for one leadership term.
pub async fn run(
    pool: PgPool,
    notifier: Notifier,
    settings: Settings,
    epoch: i64,
    stream: String,
    wake: Arc<Notify>,
    term: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let mut incidents = loop {
        match resume(&pool, epoch).await {
            Ok(incidents) => break incidents,
            Err(err) => {
                tracing::warn!(error = %err, "Cannot read what was notified; retrying");
                tokio::select! {
                    () = term.cancelled() => return,
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        }
    };
    let this = Dispatcher {
        pool,
        notifier,
        settings,
        epoch,
        stream,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first_waiting: Option<Instant> = None;
    loop {
        tokio::select! {
            () = term.cancelled() => return,
            () = wake.notified() => {}
            _ = tick.tick() => {}
        }
        let result = this.step(&mut incidents, &mut first_waiting).await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "Cannot notify; reading the notified state again");
            match resume(&this.pool, epoch).await {
                Ok(fresh) => incidents = fresh,
                Err(err) => tracing::warn!(error = %err, "Cannot read what was notified"),
            }
        }
    }
}

/// What the notifier is configured with.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Transitions are gathered this long after the first one before a notice goes out.
    pub group: Duration,
    /// An acknowledgement ends once its incident has stayed resolved this long.
    pub ack_clear: chrono::Duration,
}

struct Dispatcher {
    pool: PgPool,
    notifier: Notifier,
    settings: Settings,
    epoch: i64,
    stream: String,
}

/// A notice ready to record and deliver.
struct Outgoing {
    channel: Channel,
    notice: Notice,
}

impl Dispatcher {
    async fn step(
        &self,
        incidents: &mut Incidents,
        first_waiting: &mut Option<Instant>,
    ) -> Result<(), sqlx::Error> {
        let entries = self.notifier.channels();
        let channels: Vec<Channel> = entries.iter().map(|e| e.channel.clone()).collect();
        let now = Utc::now();
        let queued: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, payload FROM notification_queue ORDER BY seq LIMIT $1")
                .bind(TAKE)
                .fetch_all(&self.pool)
                .await?;
        let due = !queued.is_empty()
            && first_waiting.get_or_insert_with(Instant::now).elapsed() >= self.settings.group;
        let events: Vec<AlertEvent> = if due {
            queued
                .iter()
                .filter_map(|(_, payload)| serde_json::from_str(payload).ok())
                .collect()
        } else {
            Vec::new()
        };
        let mut servers: HashSet<ServerId> = events.iter().map(|e| e.server_id.clone()).collect();
        servers.extend(incidents.firing().map(|e| e.server_id.clone()));
        let world = World::load(&self.pool, &servers, now, self.settings.ack_clear).await?;

        let mut plan = if due {
            incidents.take(&events, &channels, &world, now)
        } else {
            Plan::default()
        };
        let timed = incidents.tick(&channels, |c| repeat_of(&entries, c), &world, now);
        plan.notices.extend(timed.notices);
        plan.repeats.extend(timed.repeats);

        let mut outgoing = Vec::new();
        for (repeat, list) in [(false, plan.notices), (true, plan.repeats)] {
            for (channel_id, events) in list {
                if let Some(channel) = channels.iter().find(|c| c.id == channel_id) {
                    outgoing.push(Outgoing {
                        channel: channel.clone(),
                        notice: Notice {
                            id: Uuid::new_v4(),
                            events,
                            repeat,
                            test: false,
                        },
                    });
                }
            }
        }
        let taken_until = if due {
            queued.last().map(|(seq, _)| *seq)
        } else {
            None
        };
        let tests = self
            .record(&outgoing, taken_until, &channels, &world, incidents, now)
            .await?;
        if taken_until.is_some() {
            *first_waiting = None;
        }
        for test in tests {
            if let Some(channel) = channels.iter().find(|c| c.id == test.1) {
                outgoing.push(Outgoing {
                    channel: channel.clone(),
                    notice: Notice {
                        id: test.0,
                        events: Vec::new(),
                        repeat: false,
                        test: true,
                    },
                });
            }
        }
        for out in outgoing {
            self.deliver(out);
        }
        Ok(())
    }

    /// Records the notices and takes their transitions (and asked tests) off the queue, in one
    /// transaction fenced by this leader's epoch. The tests taken, as (notice id, channel).
    ///
    /// A test is taken only for a channel of `channels`, the step's own snapshot, which then
    /// delivers it: a fresher read here could take the test of a channel loaded since the
    /// snapshot, which the step would not find to deliver it, leaving it `sending` for good.
    async fn record(
        &self,
        outgoing: &[Outgoing],
        taken_until: Option<i64>,
        channels: &[Channel],
        world: &World,
        incidents: &Incidents,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT epoch FROM alerter_progress WHERE stream = $1 FOR SHARE")
                .bind(&self.stream)
                .fetch_optional(&mut *tx)
                .await?;
        if current != Some(self.epoch) {
            return Err(sqlx::Error::Protocol(
                "another alerter leads now: not notifying".into(),
            ));
        }
        if let Some(seq) = taken_until {
            sqlx::query("DELETE FROM notification_queue WHERE seq <= $1")
                .bind(seq)
                .execute(&mut *tx)
                .await?;
        }
        for out in outgoing {
            insert_notice(&mut tx, out, self.epoch).await?;
        }
        // A test is taken once its channel is loaded (a channel created a moment ago may not
        // be yet); one whose channel stays unknown (disabled, or its secrets cannot be opened)
        // is given up after a while, recorded as such.
        let known: Vec<Uuid> = channels.iter().map(|c| c.id).collect();
        let tests: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "UPDATE notification_tests SET taken_at = now()
             WHERE taken_at IS NULL AND channel_id = ANY($1)
             RETURNING id, channel_id",
        )
        .bind(&known)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "WITH abandoned AS (
                 UPDATE notification_tests SET taken_at = now()
                 WHERE taken_at IS NULL AND NOT (channel_id = ANY($1))
                   AND requested_at < now() - interval '2 minutes'
                 RETURNING id, channel_id
             )
             INSERT INTO notifications (id, channel_id, channel_name, summary, event_ids, alert_ids,
                                        server_ids, test, status, epoch, finished_at)
             SELECT a.id, a.channel_id, coalesce(c.name, ''),
                    'test notification: the channel is disabled or its secrets cannot be opened',
                    '{}', '{}', '{}', true, 'given_up', $2, now()
             FROM abandoned a LEFT JOIN notification_channels c ON c.id = a.channel_id",
        )
        .bind(&known)
        .bind(self.epoch)
        .execute(&mut *tx)
        .await?;
        for (id, channel) in &tests {
            let name = channels
                .iter()
                .find(|c| c.id == *channel)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            sqlx::query(
                "INSERT INTO notifications (id, channel_id, channel_name, summary, event_ids, alert_ids,
                                            server_ids, test, status, epoch)
                 VALUES ($1, $2, $3, 'test notification', '{}', '{}', '{}', true, 'sending', $4)",
            )
            .bind(id)
            .bind(channel)
            .bind(name)
            .bind(self.epoch)
            .execute(&mut *tx)
            .await?;
        }
        world.update_acks(&mut tx, incidents, now).await?;
        tx.commit().await?;
        Ok(tests)
    }

    /// Delivers on its own task: a slow receiver never holds up the others.
    fn deliver(&self, out: Outgoing) {
        let Some(slot) = self.notifier.slot() else {
            metrics::counter!("flick_alerter_notifications_total", "outcome" => "dropped")
                .increment(1);
            tracing::warn!(channel = %out.channel.name, "Too many notifications in flight; one dropped");
            return;
        };
        let pool = self.pool.clone();
        let notifier = self.notifier.clone();
        tokio::spawn(async move {
            deliver(&pool, &notifier, &out).await;
            drop(slot);
        });
    }
}

fn repeat_of(entries: &[Entry], channel: &Channel) -> Option<chrono::Duration> {
    entries
        .iter()
        .find(|e| e.channel.id == channel.id)
        .and_then(|e| e.repeat_every)
}

async fn insert_notice(
    tx: &mut sqlx::PgConnection,
    out: &Outgoing,
    epoch: i64,
) -> Result<(), sqlx::Error> {
    let events = &out.notice.events;
    let mut servers: Vec<&str> = events.iter().map(|e| e.server_id.as_str()).collect();
    servers.dedup();
    sqlx::query(
        "INSERT INTO notifications (id, channel_id, channel_name, summary, event_ids, alert_ids,
                                    server_ids, repeat, status, epoch)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'sending', $9)",
    )
    .bind(out.notice.id)
    .bind(out.channel.id)
    .bind(&out.channel.name)
    .bind(send::summary(&out.notice))
    .bind(events.iter().map(|e| e.id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.alert_id).collect::<Vec<_>>())
    .bind(servers)
    .bind(out.notice.repeat)
    .bind(epoch)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Attempts until delivered, refused for good, or `notify_give_up_secs` passed; records each.
#[tracing::instrument(skip_all, fields(channel = %out.channel.name, notice = %out.notice.id))]
async fn deliver(pool: &PgPool, notifier: &Notifier, out: &Outgoing) {
    let give_up_at = Instant::now() + notifier.give_up_after();
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut attempt = 0u32;
    let status = loop {
        attempt += 1;
        let started = Instant::now();
        let result = send::attempt(
            notifier.http(),
            notifier.destinations(),
            &out.channel,
            &out.notice,
            attempt,
        )
        .await;
        let latency = started.elapsed();
        let (outcome, error) = match &result {
            Ok(()) => ("delivered", None),
            Err(failure) if !failure.retry => ("refused", Some(failure.reason.clone())),
            Err(failure) => ("failed", Some(failure.reason.clone())),
        };
        record_attempt(
            pool,
            out.notice.id,
            attempt,
            outcome,
            latency,
            error.as_deref(),
        )
        .await;
        match result {
            Ok(()) => {
                metrics::counter!("flick_alerter_notifications_total", "outcome" => "delivered")
                    .increment(1);
                let now = Utc::now();
                for event in &out.notice.events {
                    let since = (now - event.at).to_std().unwrap_or_default();
                    metrics::histogram!("flick_alerter_notification_latency_seconds")
                        .record(since.as_secs_f64());
                }
                tracing::debug!(attempt, "Notification delivered");
                break "delivered";
            }
            Err(failure) => {
                metrics::counter!("flick_alerter_notification_failures_total").increment(1);
                let delay = backoff.next_delay();
                if !failure.retry || Instant::now() + delay > give_up_at {
                    let outcome = if failure.retry { "given_up" } else { "refused" };
                    metrics::counter!("flick_alerter_notifications_total", "outcome" => outcome)
                        .increment(1);
                    tracing::error!(attempt, reason = failure.reason, "Notification given up");
                    break "given_up";
                }
                tracing::warn!(
                    attempt,
                    reason = failure.reason,
                    retry_in_ms = delay.as_millis() as u64,
                    "Notification failed; retrying"
                );
                tokio::time::sleep(delay).await;
            }
        }
    };
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    for _ in 0..10 {
        match sqlx::query("UPDATE notifications SET status = $2, finished_at = now() WHERE id = $1")
            .bind(out.notice.id)
            .bind(status)
            .execute(pool)
            .await
        {
            Ok(_) => return,
            Err(err) => {
                tracing::warn!(error = %err, "Cannot record how a notice ended; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

async fn record_attempt(
    pool: &PgPool,
    notice: Uuid,
    attempt: u32,
    outcome: &str,
    latency: Duration,
    error: Option<&str>,
) {
    let recorded = sqlx::query(
        "INSERT INTO notification_attempts (notification_id, attempt, outcome, latency_ms, error)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(notice)
    .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
    .bind(outcome)
    .bind(latency.as_secs_f64() * 1_000.0)
    .bind(error)
    .execute(pool)
    .await;
    if let Err(err) = recorded {
        tracing::warn!(error = %err, "Cannot record a delivery attempt");
    }
}

/// The firing alerts and where they were sent, for a leader taking over; notices its
/// predecessors left `sending` become `unknown`.
async fn resume(pool: &PgPool, epoch: i64) -> Result<Incidents, sqlx::Error> {
    sqlx::query(
        "UPDATE notifications SET status = 'unknown', finished_at = now()
         WHERE status = 'sending' AND epoch < $1",
    )
    .bind(epoch)
    .execute(pool)
    .await?;
    type Row = (
        String,
        String,
        String,
        String,
        DateTime<Utc>,
        Uuid,
        Option<f64>,
        Option<f64>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT server_id, metric, severity, container, since, alert_id, value, threshold
         FROM alert_state WHERE phase = 'firing' AND alert_id IS NOT NULL",
    )
    .fetch_all(pool)
    .await?;
    let firing: Vec<AlertEvent> = rows
        .into_iter()
        .filter_map(
            |(server, metric, severity, container, since, alert_id, value, threshold)| {
                Some(AlertEvent {
                    v: 1,
                    id: alert_id,
                    alert_id,
                    server_id: ServerId::parse(&server).ok()?,
                    metric,
                    severity: if severity == "critical" {
                        AlertSeverity::Critical
                    } else {
                        AlertSeverity::Warning
                    },
                    state: AlertState::Firing,
                    value,
                    threshold,
                    started_at: since,
                    at: since,
                    message: None,
                    top_processes: Vec::new(),
                    container: (!container.is_empty()).then_some(container),
                })
            },
        )
        .collect();
    let ids: Vec<Uuid> = firing.iter().map(|e| e.alert_id).collect();
    let sent_rows: Vec<(Uuid, Uuid, DateTime<Utc>)> = sqlx::query_as(
        "SELECT a.alert_id, n.channel_id, max(n.created_at)
         FROM notifications n, unnest(n.alert_ids) AS a(alert_id)
         WHERE a.alert_id = ANY($1) AND n.channel_id IS NOT NULL
         GROUP BY 1, 2",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let mut sent: HashMap<Uuid, HashMap<Uuid, DateTime<Utc>>> = HashMap::new();
    for (alert, channel, at) in sent_rows {
        sent.entry(alert).or_default().insert(channel, at);
    }
    Ok(Incidents::resume(firing, &sent))
}

/// A silence as the notifier matches it.
struct Silence {
    owner: Uuid,
    owner_is_admin: bool,
    server: Option<String>,
    tags: Vec<String>,
    metric: Option<String>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

/// An acknowledgeable incident: server, metric and container (`''` for the host's own).
type Incident = (String, String, String);

/// Servers (tags, owner), silences and acknowledgements, read for one decision.
struct World {
    servers: HashMap<ServerId, (Option<Uuid>, Vec<String>)>,
    silences: Vec<Silence>,
    /// Acknowledged incidents still in force, and whether each was resolved meanwhile.
    acks: HashMap<Incident, bool>,
    /// Acknowledgements whose incident stayed resolved long enough: deleted.
    stale: Vec<Incident>,
}

impl World {
    async fn load(
        pool: &PgPool,
        servers: &HashSet<ServerId>,
        now: DateTime<Utc>,
        ack_clear: chrono::Duration,
    ) -> Result<Self, sqlx::Error> {
        let ids: Vec<&str> = servers.iter().map(ServerId::as_str).collect();
        let rows: Vec<(String, Option<Uuid>, Vec<String>)> = if ids.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as("SELECT id, owner_id, tags FROM servers WHERE id = ANY($1)")
                .bind(&ids)
                .fetch_all(pool)
                .await?
        };
        type SilenceRow = (
            Uuid,
            bool,
            Option<String>,
            Vec<String>,
            Option<String>,
            DateTime<Utc>,
            DateTime<Utc>,
        );
        let silences: Vec<SilenceRow> = sqlx::query_as(
            "SELECT s.owner_id, u.role = 'admin', s.server_id, s.tags, s.metric, s.starts_at, s.ends_at
             FROM silences s JOIN users u ON u.id = s.owner_id
             WHERE s.ends_at > $1 AND s.starts_at <= $1 + interval '1 day'",
        )
        .bind(now)
        .fetch_all(pool)
        .await?;
        let acks: Vec<(String, String, String, Option<DateTime<Utc>>)> =
            sqlx::query_as("SELECT server_id, metric, container, resolved_at FROM alert_acks")
                .fetch_all(pool)
                .await?;
        let mut live = HashMap::new();
        let mut stale = Vec::new();
        for (server, metric, container, resolved_at) in acks {
            match resolved_at {
                Some(at) if now - at >= ack_clear => stale.push((server, metric, container)),
                resolved => {
                    live.insert((server, metric, container), resolved.is_some());
                }
            }
        }
        Ok(Self {
            servers: rows
                .into_iter()
                .filter_map(|(id, owner, tags)| Some((ServerId::parse(&id).ok()?, (owner, tags))))
                .collect(),
            silences: silences
                .into_iter()
                .map(
                    |(owner, owner_is_admin, server, tags, metric, starts_at, ends_at)| Silence {
                        owner,
                        owner_is_admin,
                        server,
                        tags,
                        metric,
                        starts_at,
                        ends_at,
                    },
                )
                .collect(),
            acks: live,
            stale,
        })
    }

    /// Keeps acknowledgements in step with their incidents: resolved (the clock of
    /// `ack_clear_secs` starts), firing again (it stops), or over (deleted).
    async fn update_acks(
        &self,
        tx: &mut sqlx::PgConnection,
        incidents: &Incidents,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        let open: HashSet<Incident> = incidents
            .open_incidents()
            .into_iter()
            .map(|(server, metric, container)| (server.as_str().to_owned(), metric, container))
            .collect();
        for (server, metric, container) in &self.stale {
            sqlx::query(
                "DELETE FROM alert_acks WHERE server_id = $1 AND metric = $2 AND container = $3
                   AND resolved_at IS NOT NULL",
            )
            .bind(server)
            .bind(metric)
            .bind(container)
            .execute(&mut *tx)
            .await?;
        }
        for (incident, resolved) in &self.acks {
            let (server, metric, container) = incident;
            let firing = open.contains(incident);
            let set: Option<Option<DateTime<Utc>>> = match (firing, resolved) {
                (true, true) => Some(None),
                (false, false) => Some(Some(now)),
                _ => None,
            };
            if let Some(resolved_at) = set {
                sqlx::query(
                    "UPDATE alert_acks SET resolved_at = $3
                     WHERE server_id = $1 AND metric = $2 AND container = $4",
                )
                .bind(server)
                .bind(metric)
                .bind(resolved_at)
                .bind(container)
                .execute(&mut *tx)
                .await?;
            }
        }
        Ok(())
    }
}

impl Circumstances for World {
    fn tags(&self, server: &ServerId) -> &[String] {
        self.servers
            .get(server)
            .map(|(_, tags)| tags.as_slice())
            .unwrap_or(&[])
    }

    fn silenced(&self, event: &AlertEvent, now: DateTime<Utc>) -> bool {
        let (owner, tags) = match self.servers.get(&event.server_id) {
            Some((owner, tags)) => (*owner, tags.as_slice()),
            None => (None, &[][..]),
        };
        self.silences.iter().any(|s| {
            s.starts_at <= now
                && now < s.ends_at
                && (s.owner_is_admin || owner == Some(s.owner))
                && s.server
                    .as_deref()
                    .is_none_or(|id| id == event.server_id.as_str())
                && s.metric.as_deref().is_none_or(|m| m == event.metric)
                && s.tags.iter().all(|tag| tags.contains(tag))
        })
    }

    fn acknowledged(&self, server: &ServerId, metric: &str, container: &str) -> bool {
        self.acks.contains_key(&(
            server.as_str().to_owned(),
            metric.to_owned(),
            container.to_owned(),
        ))
    }
}
