//! The gateway's side of NATS for live clients: one subscription per watched server, shared by
//! every client of this gateway watching it, one for every server's samples while a client
//! holds a fleet subscription, and one subscription for all alerts.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_nats::Client;
use chrono::Utc;
use futures::StreamExt;
use tokio::task::JoinHandle;

use flick_shared::Subjects;
use flick_shared::deadletter::DeadLetters;
use flick_shared::shutdown::CancellationToken;
use flick_shared::subjects::StreamKind;
use flick_shared::wire::{AlertEvent, MetricSample, ServerId, decode_on};

use super::protocol::{headline, wrap};
use super::queue::ClientQueue;

type Clients = Arc<RwLock<HashMap<u64, Arc<ClientQueue>>>>;

#[derive(Debug)]
struct Topic {
    clients: Clients,
    task: JoinHandle<()>,
}

impl Topic {
    fn add(&self, id: u64, queue: Arc<ClientQueue>) {
        self.clients
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, queue);
    }

    /// Removes a client; `true` when none is left (the subscription should go).
    fn remove(&self, id: u64) -> bool {
        let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
        clients.remove(&id);
        clients.is_empty()
    }
}

#[derive(Debug)]
pub struct Hub {
    nats: Client,
    subjects: Subjects,
    deadletters: Arc<DeadLetters>,
    topics: Mutex<HashMap<ServerId, Topic>>,
    /// Every server's samples, for the fleet subscribers.
    fleet: Mutex<Option<Topic>>,
    /// Every connected, authenticated client (alerts are offered to each).
    connected: Clients,
    next_id: AtomicU64,
}

impl Hub {
    /// Starts the alert subscription; it ends with `shutdown`.
    pub async fn start(
        nats: Client,
        subjects: Subjects,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Arc<Self>> {
        let hub = Arc::new(Self {
            deadletters: Arc::new(DeadLetters::new(nats.clone(), &subjects, crate::SERVICE)),
            nats,
            subjects,
            topics: Mutex::new(HashMap::new()),
            fleet: Mutex::new(None),
            connected: Arc::new(RwLock::new(HashMap::new())),
            next_id: AtomicU64::new(1),
        });
        let mut alerts = hub
            .nats
            .subscribe(hub.subjects.all_servers(StreamKind::Alerts))
            .await?;
        let fanout = hub.clone();
        tokio::spawn(async move {
            let mut seen = RecentIds::new(4_096);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    message = alerts.next() => {
                        let Some(message) = message else { return };
                        fanout.offer_alert(&message, &mut seen).await;
                    }
                }
            }
        });
        Ok(hub)
    }

    /// Asks every connection for which `wanted` holds to re-check its access.
    fn recheck_where(&self, wanted: impl Fn(&ClientQueue) -> bool) {
        let connected = self.connected.read().unwrap_or_else(|p| p.into_inner());
        for queue in connected.values().filter(|queue| wanted(queue)) {
            queue.request_recheck();
        }
    }

    /// A new connection's id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn connect(&self, id: u64, queue: Arc<ClientQueue>) {
        self.connected
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, queue);
        metrics::gauge!("flick_gateway_ws_clients").increment(1.0);
    }

    /// Forgets a connection and drops the subscriptions only it needed.
    pub fn disconnect(&self, id: u64, watched: &[ServerId]) {
        self.unwatch_fleet(id);
        if self
            .connected
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
            .is_some()
        {
            metrics::gauge!("flick_gateway_ws_clients").decrement(1.0);
        }
        for server in watched {
            self.unwatch(server, id);
        }
    }

    /// Adds a client to a server's subscription, subscribing on NATS if it is the first.
    pub async fn watch(
        &self,
        server: &ServerId,
        id: u64,
        queue: Arc<ClientQueue>,
    ) -> Result<(), async_nats::SubscribeError> {
        if let Some(topic) = self
            .topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(server)
        {
            topic.add(id, queue);
            return Ok(());
        }
        let subscription = self.subscribe(self.subjects.metrics(server)).await?;
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(topic) = topics.get(server) {
            // Another client subscribed meanwhile: use its subscription, drop ours.
            topic.add(id, queue);
            return Ok(());
        }
        let clients: Clients = Arc::new(RwLock::new(HashMap::from([(id, queue)])));
        let task = tokio::spawn(relay(
            subscription,
            server.clone(),
            self.subjects.clone(),
            clients.clone(),
            self.deadletters.clone(),
        ));
        topics.insert(server.clone(), Topic { clients, task });
        metrics::gauge!("flick_gateway_ws_subscriptions").increment(1.0);
        Ok(())
    }

    /// Subscribes on NATS and waits until the server has registered it: the client's ack must
    /// mean "samples flow from now on". `flush` only empties our write buffer; a request the
    /// server itself answers (JetStream's account info, which every role may ask) comes back
    /// only after everything sent before it on this connection, the SUB included, was processed.
    async fn subscribe(
        &self,
        subject: String,
    ) -> Result<async_nats::Subscriber, async_nats::SubscribeError> {
        let subscription = self.nats.subscribe(subject.clone()).await?;
        if let Err(err) = self.nats.request("$JS.API.INFO", bytes::Bytes::new()).await {
            tracing::warn!(%subject, error = %err, "Cannot confirm a new subscription");
        }
        Ok(subscription)
    }

    /// Adds a fleet subscriber, subscribing to every server's samples if it is the first.
    pub async fn watch_fleet(
        &self,
        id: u64,
        queue: Arc<ClientQueue>,
    ) -> Result<(), async_nats::SubscribeError> {
        if let Some(topic) = &*self.fleet.lock().unwrap_or_else(|p| p.into_inner()) {
            topic.add(id, queue);
            return Ok(());
        }
        let subscription = self
            .subscribe(self.subjects.all_servers(StreamKind::Metrics))
            .await?;
        let mut fleet = self.fleet.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(topic) = &*fleet {
            topic.add(id, queue);
            return Ok(());
        }
        let clients: Clients = Arc::new(RwLock::new(HashMap::from([(id, queue)])));
        let task = tokio::spawn(relay_fleet(
            subscription,
            self.subjects.clone(),
            clients.clone(),
        ));
        *fleet = Some(Topic { clients, task });
        metrics::gauge!("flick_gateway_ws_subscriptions").increment(1.0);
        Ok(())
    }

    /// Removes a fleet subscriber, unsubscribing if it was the last.
    pub fn unwatch_fleet(&self, id: u64) {
        let mut fleet = self.fleet.lock().unwrap_or_else(|p| p.into_inner());
        let empty = fleet.as_ref().is_some_and(|topic| topic.remove(id));
        if empty && let Some(topic) = fleet.take() {
            topic.task.abort();
            metrics::gauge!("flick_gateway_ws_subscriptions").decrement(1.0);
        }
    }

    /// The NATS client (JetStream replays of `since` subscriptions).
    pub fn nats(&self) -> &Client {
        &self.nats
    }

    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// Removes a client from a server's subscription, unsubscribing if it was the last.
    pub fn unwatch(&self, server: &ServerId, id: u64) {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        let empty = topics.get(server).is_some_and(|topic| topic.remove(id));
        if empty && let Some(topic) = topics.remove(server) {
            topic.task.abort();
            metrics::gauge!("flick_gateway_ws_subscriptions").decrement(1.0);
        }
    }

    /// Servers with a NATS subscription on this gateway.
    pub fn subscribed(&self) -> HashSet<ServerId> {
        self.topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    async fn offer_alert(&self, message: &async_nats::Message, seen: &mut RecentIds) {
        let event = match decode_on::<AlertEvent>(
            &self.subjects,
            &message.subject,
            &message.payload,
            Utc::now(),
        ) {
            Ok(event) => event,
            Err(err) => {
                self.deadletters
                    .forward(
                        &message.subject,
                        message.payload.clone(),
                        err.kind(),
                        &err.to_string(),
                    )
                    .await;
                return;
            }
        };
        // An alerter that died between publishing and recording re-publishes: show it once.
        if !seen.insert(event.id) {
            return;
        }
        let Ok(payload) = std::str::from_utf8(&message.payload) else {
            return;
        };
        let frame = wrap("alert", payload);
        let clients: Vec<Arc<ClientQueue>> = self
            .connected
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for client in clients {
            client.push_alert(&event.server_id, frame.clone());
        }
    }
}

/// Forwards one server's samples: validated, framed once, offered to each watching client.
async fn relay(
    mut subscription: async_nats::Subscriber,
    server: ServerId,
    subjects: Subjects,
    clients: Clients,
    deadletters: Arc<DeadLetters>,
) {
    let mut receivers = Vec::new();
    while let Some(message) = subscription.next().await {
        let Some(sample) = sample_of(&message, &subjects, Some(&deadletters)).await else {
            continue;
        };
        let Ok(payload) = std::str::from_utf8(&message.payload) else {
            continue;
        };
        let frame = wrap("resource_metrics", payload);
        receivers.extend(
            clients
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .cloned(),
        );
        metrics::counter!("flick_gateway_ws_samples_total").increment(receivers.len() as u64);
        for client in receivers.drain(..) {
            client.push_metric(&server, frame.clone(), sample.timestamp);
        }
    }
}

/// Forwards every server's headline figures to the fleet subscribers that may see it. What it
/// cannot read it skips without a dead letter: the persister (and a watched server's relay)
/// report the same message, and one bad message should not be reported twice by this gateway.
async fn relay_fleet(
    mut subscription: async_nats::Subscriber,
    subjects: Subjects,
    clients: Clients,
) {
    let mut receivers = Vec::new();
    while let Some(message) = subscription.next().await {
        let Some(sample) = sample_of(&message, &subjects, None).await else {
            continue;
        };
        let frame = headline(&sample);
        receivers.extend(
            clients
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .cloned(),
        );
        let mut offered = 0;
        for client in receivers.drain(..) {
            offered += u64::from(client.push_fleet(&sample.server_id, frame.clone()));
        }
        metrics::counter!("flick_gateway_ws_fleet_headlines_total").increment(offered);
    }
}

/// The sample a message holds, or `None` (dead-lettered when `deadletters` is given).
async fn sample_of(
    message: &async_nats::Message,
    subjects: &Subjects,
    deadletters: Option<&DeadLetters>,
) -> Option<MetricSample> {
    match decode_on::<MetricSample>(subjects, &message.subject, &message.payload, Utc::now()) {
        Ok(sample) => Some(sample),
        Err(err) => {
            let deadletters = deadletters?;
            deadletters
                .forward(
                    &message.subject,
                    message.payload.clone(),
                    err.kind(),
                    &err.to_string(),
                )
                .await;
            None
        }
    }
}

/// The last `capacity` ids seen.
#[derive(Debug)]
struct RecentIds {
    order: VecDeque<uuid::Uuid>,
    set: HashSet<uuid::Uuid>,
    capacity: usize,
}

impl RecentIds {
    fn new(capacity: usize) -> Self {
        Self {
            order: VecDeque::with_capacity(capacity),
            set: HashSet::with_capacity(capacity),
            capacity,
        }
    }

    /// `false` if `id` was seen recently.
    fn insert(&mut self, id: uuid::Uuid) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

/// Changes of accounts, sessions and servers (PostgreSQL notifications) reach the connections
/// they concern at once, instead of at their next periodic re-check.
impl crate::auth::access::OnChange for Hub {
    fn user_changed(&self, user: uuid::Uuid) {
        self.recheck_where(|queue| queue.user() == Some(user));
    }

    fn server_changed(&self, server: &ServerId) {
        self.recheck_where(|queue| queue.concerns(server));
    }

    /// Left to the periodic re-check (`gateway.ws_recheck_secs`, spread over connections):
    /// re-checking every connection at once after a database outage would be a stampede.
    fn missed(&self) {}
}
