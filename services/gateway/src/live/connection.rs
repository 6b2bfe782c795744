//! One live connection: authentication, the client's requests, and sending what its queue holds.
//!
//! One task per connection reads and writes (keeping an idle connection small). Close codes:
//! 1008 policy violation (no or bad authentication, token expired), 1009 message too big,
//! 1013 try again later (the client does not keep up), 1001 going away (shutdown).

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use futures::{SinkExt, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota};
use serde_json::{Value, json};
use tokio::time::Instant;
use tracing::Instrument;

use flick_shared::wire::ServerId;

use super::protocol::{
    self, Code, FLEET_INTERVAL_MS, FleetSubscribe, Limits, MAX_INTERVAL_MS, Request, ServerChanges,
    Subscribe, ack, error, pong, replayed, revoked,
};
use super::queue::{AlertScope, ClientQueue};
use super::replay::{self, Replay, Sink};
use crate::auth::{CurrentUser, Role, Via};
use crate::limits::SocketSlot;
use crate::state::AppState;

/// Why the gateway ends a connection.
struct Close(u16, &'static str);

/// What the serving loop must do after a client message.
enum Step {
    Close(Close),
    /// Send a `since` replay (the loop holds the socket).
    Replay(Option<Value>, Replay),
}

/// A fleet subscription's side in the connection: what it last announced.
struct FleetView {
    tags: Vec<String>,
    /// Each visible server and a digest of what was announced of it (name, host, tags, owner).
    announced: HashMap<ServerId, u64>,
}

struct Connection {
    id: u64,
    state: AppState,
    queue: Arc<ClientQueue>,
    /// Counts this connection against its address and, once authenticated, its user.
    slot: SocketSlot,
    user: Option<CurrentUser>,
    /// When the current token expires (seconds since the epoch).
    expires_at: i64,
    limiter: DefaultDirectRateLimiter,
    last_heard: Instant,
    fleet: Option<FleetView>,
}

/// The client-message budget the `auth` ack advertises (one computation for both).
fn limiter(limits: &Limits) -> DefaultDirectRateLimiter {
    let rate = NonZeroU32::new(limits.messages_per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(limits.message_burst).unwrap_or(NonZeroU32::MIN);
    DefaultDirectRateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
}

pub use super::credential::Authenticated;

pub async fn run(
    socket: WebSocket,
    state: AppState,
    slot: SocketSlot,
    authenticated: Option<Authenticated>,
) {
    let id = state.hub.next_id();
    let span = tracing::info_span!("ws", connection = id);
    let queue = Arc::new(ClientQueue::new(state.settings.ws_max_queued));
    let mut connection = Connection {
        id,
        limiter: limiter(&Limits::of(&state.settings)),
        queue,
        slot,
        user: None,
        expires_at: 0,
        state,
        last_heard: Instant::now(),
        fleet: None,
    };
    async move {
        let close = match authenticated {
            Some(authenticated) => connection.authenticate(&authenticated).err(),
            None => None,
        };
        let close = match close {
            Some(close) => {
                let (mut sink, _) = socket.split();
                Box::pin(send_close(&mut sink, &close)).await;
                Some(close)
            }
            // Boxed, as the rarer steps inside it are: an async fn's future is as large as its
            // largest await (a database query, a JetStream replay), and every idle connection
            // would hold that much. Boxed, an idle connection's task is ~3 KB, not ~9 KB.
            None => Box::pin(connection.serve(socket)).await,
        };
        metrics::counter!("flick_gateway_ws_disconnects_total", "reason" => close.map_or("client", |c| c.1)).increment(1);
        connection.state.hub.disconnect(connection.id, &connection.queue.watched());
    }
    .instrument(span)
    .await;
}

impl Connection {
    /// Takes `authenticated` (already checked, its role the account's current one) as the
    /// connection's user; refused when the user holds `gateway.ws_max_per_user` connections
    /// already.
    fn authenticate(&mut self, authenticated: &Authenticated) -> Result<(), Close> {
        let user = authenticated.user;
        let first = self.user.is_none();
        if first && !self.state.limits.claim_socket_for(&mut self.slot, user.id) {
            return Err(Close(
                close_code::AGAIN,
                "too many live connections for this user",
            ));
        }
        self.user = Some(user);
        self.expires_at = authenticated.expires_at;
        if first {
            self.queue.set_user(user.id);
            self.state.hub.connect(self.id, self.queue.clone());
        }
        Ok(())
    }

    /// Re-checks the account and the session: `Some` when the connection must end. When the
    /// database cannot answer, the connection stays (an outage should not cut every stream).
    async fn revalidate(&mut self) -> Option<Close> {
        let user = self.user.as_mut()?;
        let (standing, ended) = match user.via {
            Via::Session(session) => (
                self.state
                    .access
                    .check(&self.state.pool, user.id, session)
                    .await,
                "the session has ended or the account is disabled",
            ),
            Via::Token(token) => (
                self.state
                    .access
                    .token_standing(&self.state.pool, token)
                    .await
                    .map(|grant| grant.role),
                "the API token was revoked or the account is disabled",
            ),
        };
        match standing {
            Ok(role) => {
                user.role = role;
                None
            }
            Err(crate::error::ApiError::Unauthorized(_)) => Some(Close(close_code::POLICY, ended)),
            Err(err) => {
                tracing::warn!(error = %err, "Cannot re-check a live connection's session");
                None
            }
        }
    }

    /// Runs until the client leaves (`None`) or the gateway ends the connection.
    async fn serve(&mut self, socket: WebSocket) -> Option<Close> {
        let (mut sink, mut stream) = socket.split();
        let settings = self.state.settings.clone();
        let auth_deadline = Instant::now() + Duration::from_millis(settings.ws_auth_timeout_ms);
        let ping_every = Duration::from_secs(settings.ws_ping_secs);
        let send_timeout = Duration::from_millis(settings.ws_send_timeout_ms);
        let mut next_metric: Option<Instant> = None;
        // Reused between wake-ups: no allocation per batch of frames.
        let mut frames: Vec<Utf8Bytes> = Vec::new();
        // Spread over the period so that thousands of connections do not query together.
        let recheck_every = Duration::from_secs(settings.ws_recheck_secs);
        let spread = recheck_every.mul_f64((self.id % 1000) as f64 / 1000.0);
        // One timer for everything due at a time — the authentication deadline or the token's
        // expiry, a held-back frame, the next ping, the periodic re-check — set to the earliest
        // (each timer costs an idle connection a few hundred bytes). It and the shutdown future
        // live across wake-ups (pinned, reset when the earliest time changes) rather than being
        // made anew each time: a fresh shutdown future would lock the token every connection
        // shares, a fresh sleep would enter the timer wheel, for each of thousands of
        // connections' every frame.
        let mut next_ping = Instant::now() + ping_every;
        let mut next_recheck = Instant::now() + recheck_every + spread;
        let shutdown = self.state.shutdown.clone();
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        let mut deadline_key = self.deadline_key();
        let mut deadline = self.deadline_at(auth_deadline);
        let mut wake = deadline.min(next_ping).min(next_recheck);
        let timer = tokio::time::sleep_until(wake);
        tokio::pin!(timer);
        let close = loop {
            // The clock is read only when what the deadline depends on changed.
            if self.deadline_key() != deadline_key {
                deadline_key = self.deadline_key();
                deadline = self.deadline_at(auth_deadline);
            }
            let earliest = [
                Some(deadline),
                next_metric,
                Some(next_ping),
                Some(next_recheck),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(deadline);
            if earliest != wake {
                wake = earliest;
                timer.as_mut().reset(wake);
            }
            tokio::select! {
                biased;
                () = &mut cancelled => break Some(Close(close_code::AWAY, "the gateway is shutting down")),
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        self.last_heard = Instant::now();
                        match Box::pin(self.handle(text.as_str())).await {
                            None => {}
                            Some(Step::Close(close)) => break Some(close),
                            Some(Step::Replay(id, request)) => {
                                // The ack first, then the stored samples, then live ones.
                                if let Err(close) = self.send_ready(&mut sink, &mut frames, send_timeout).await {
                                    break close;
                                }
                                // Bounded (replay.rs), and shutdown does not wait for it.
                                let replay = Box::pin(self.replay(&mut sink, id, &request, send_timeout));
                                tokio::select! {
                                    biased;
                                    () = &mut cancelled => break Some(Close(close_code::AWAY, "the gateway is shutting down")),
                                    sent = replay => if let Err(close) = sent {
                                        break close;
                                    },
                                }
                                // The client was not read meanwhile; and what changed meanwhile
                                // (a server given away) is settled before the held frames go.
                                self.last_heard = Instant::now();
                                if self.queue.take_recheck() {
                                    if let Some(close) = Box::pin(self.revalidate()).await {
                                        break Some(close);
                                    }
                                    Box::pin(self.recheck_access()).await;
                                }
                            }
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        self.last_heard = Instant::now();
                        self.queue.push_control(error(None, Code::BadRequest, "messages are JSON text"));
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => self.last_heard = Instant::now(),
                    Some(Ok(Message::Close(_))) | None => break None,
                    Some(Err(err)) => {
                        if too_big(err) {
                            break Some(Close(close_code::SIZE, "message too big"));
                        }
                        break None;
                    }
                },
                () = self.queue.changed() => {
                    if self.queue.take_recheck() {
                        if let Some(close) = Box::pin(self.revalidate()).await {
                            break Some(close);
                        }
                        Box::pin(self.recheck_access()).await;
                    }
                }
                () = &mut timer => {
                    let now = Instant::now();
                    if now >= deadline {
                        break Some(if self.user.is_none() {
                            Close(close_code::POLICY, "not authenticated within the time allowed")
                        } else {
                            Close(close_code::POLICY, "token expired; authenticate again before it expires")
                        });
                    }
                    if now >= next_recheck {
                        next_recheck = now + recheck_every;
                        if let Some(close) = Box::pin(self.revalidate()).await {
                            break Some(close);
                        }
                        Box::pin(self.recheck_access()).await;
                    }
                    if now >= next_ping {
                        next_ping = now + ping_every;
                        if self.last_heard.elapsed() > ping_every * 3 {
                            break Some(Close(close_code::AWAY, "no answer to pings"));
                        }
                        if tokio::time::timeout(send_timeout, sink.send(Message::Ping(Default::default()))).await.map_or(true, |r| r.is_err()) {
                            break Some(Close(close_code::AGAIN, "too slow"));
                        }
                    }
                    // A held-back frame that is due goes below, with the others.
                }
            }
            if self.queue.overflowed() {
                break Some(Close(close_code::AGAIN, "too far behind"));
            }
            match self.send_ready(&mut sink, &mut frames, send_timeout).await {
                Ok(next) => next_metric = next,
                Err(close) => break close,
            }
        };
        if let Some(close) = &close {
            send_close(&mut sink, close).await;
        }
        close
    }

    /// Sends what the queue holds now: every frame into the write buffer, then one flush (one
    /// write to the socket for all of them; it writes earlier only when the buffer fills), not a
    /// write and a flush per frame. Each step has the send timeout, as one frame had. `Ok` says
    /// when a held-back frame may go; `Err` ends the connection (`None`: the socket failed).
    async fn send_ready(
        &self,
        sink: &mut Sink,
        frames: &mut Vec<Utf8Bytes>,
        send_timeout: Duration,
    ) -> Result<Option<Instant>, Option<Close>> {
        let next = self.queue.ready(Instant::now(), frames);
        if frames.is_empty() {
            return Ok(next);
        }
        for frame in frames.drain(..) {
            match tokio::time::timeout(send_timeout, sink.feed(Message::Text(frame))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(None),
                Err(_) => return Err(Some(Close(close_code::AGAIN, "too slow"))),
            }
        }
        match tokio::time::timeout(send_timeout, sink.flush()).await {
            Ok(Ok(())) => Ok(next),
            Ok(Err(_)) => Err(None),
            Err(_) => Err(Some(Close(close_code::AGAIN, "too slow"))),
        }
    }

    /// Sends a `since` replay, then `server_metrics.replayed`, and lets the live frames flow.
    /// A replay cut short says so in that frame (`complete: false`, `reason`); live frames flow
    /// all the same.
    async fn replay(
        &self,
        sink: &mut Sink,
        id: Option<Value>,
        request: &Replay,
        send_timeout: Duration,
    ) -> Result<(), Option<Close>> {
        let span = tracing::info_span!("replay", server = %request.server, since = %request.since);
        let Ok(done) = replay::send(&self.state, &self.queue, request, sink, send_timeout)
            .instrument(span)
            .await
        else {
            return Err(None);
        };
        if let Some(cut) = &done.cut {
            tracing::warn!(server = %request.server, reason = %cut, "A since replay stopped short");
        }
        self.queue.replayed(&request.server, done.until);
        metrics::counter!("flick_gateway_ws_replayed_samples_total").increment(done.samples);
        let frame = replayed(id.as_ref(), request.server.as_str(), &done);
        match tokio::time::timeout(send_timeout, sink.send(Message::Text(frame))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(None),
            Err(_) => Err(Some(Close(close_code::AGAIN, "too slow"))),
        }
    }

    /// Ends the subscriptions to servers the user may no longer see (deleted, or given to
    /// another owner) and narrows the alerts the same way. When the database cannot answer, the
    /// current access stays: an outage should not cut every stream.
    async fn recheck_access(&mut self) {
        let Some(user) = self.user else {
            return;
        };
        self.recheck_fleet(&user).await;
        let watched = self.queue.watched();
        // An admin's alerts are every server's; demoted since, only their own servers'.
        let demoted = user.role != Role::Admin && self.queue.alerts_all();
        let alerts_limited = self.queue.alerts_limited() || demoted;
        if watched.is_empty() && !alerts_limited {
            return;
        }
        let visible: Result<Vec<String>, sqlx::Error> = if user.role == Role::Admin {
            let ids: Vec<String> = watched.iter().map(|s| s.as_str().to_owned()).collect();
            sqlx::query_scalar("SELECT id FROM servers WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(&self.state.pool)
                .await
        } else {
            sqlx::query_scalar("SELECT id FROM servers WHERE owner_id = $1")
                .bind(user.id)
                .fetch_all(&self.state.pool)
                .await
        };
        let visible: HashSet<ServerId> = match visible {
            Ok(ids) => ids
                .into_iter()
                .filter_map(|id| ServerId::parse(id).ok())
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err, "Cannot re-check a live connection's access");
                return;
            }
        };
        if demoted {
            self.queue.set_alerts(AlertScope::Servers(visible.clone()));
        } else if alerts_limited {
            self.queue.narrow_alerts(&visible);
        }
        for server in watched.iter().filter(|s| !visible.contains(*s)) {
            if self.queue.unwatch(server) {
                self.state.hub.unwatch(server, self.id);
                tracing::info!(server = %server, "Live subscription ended: access lost");
                self.queue.push_control(revoked(server.as_str()));
            }
        }
    }

    /// What the connection's deadline depends on: whether it is authenticated, and until when.
    fn deadline_key(&self) -> (bool, i64) {
        (self.user.is_some(), self.expires_at)
    }

    /// When the connection ends unless something changes: the authentication deadline until
    /// authenticated, then the token's expiry.
    fn deadline_at(&self, auth_deadline: Instant) -> Instant {
        if self.user.is_none() {
            return auth_deadline;
        }
        let left = self.expires_at - chrono::Utc::now().timestamp();
        Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0))
    }

    /// Answers one client message; `Some` when the connection must end or a replay follows.
    async fn handle(&mut self, text: &str) -> Option<Step> {
        if self.limiter.check().is_err() {
            self.queue.push_control(error(
                None,
                Code::RateLimited,
                "too many messages; slow down",
            ));
            return None;
        }
        let (id, request) = match protocol::parse(text) {
            Ok(message) => message,
            Err(refused) => {
                self.queue.push_control(refused.frame());
                return None;
            }
        };
        let id = id.as_ref();
        if let Request::Auth(auth) = &request {
            return self.handle_auth(id, &auth.token).await.map(Step::Close);
        }
        let Some(user) = self.user else {
            self.queue.push_control(error(
                id,
                Code::Unauthorized,
                "authenticate first: {\"type\":\"auth\",\"data\":{\"token\":…}}",
            ));
            return None;
        };
        let answer = match request {
            Request::Auth(_) => return None,
            Request::Subscribe(subscribe) => match self.subscribe(&user, id, subscribe).await {
                Ok((answer, replay)) => {
                    self.queue.push_control(answer);
                    return replay.map(|replay| Step::Replay(id.cloned(), replay));
                }
                Err(answer) => answer,
            },
            Request::Unsubscribe(server) => self.unsubscribe(id, &server.server_id),
            Request::FleetSubscribe(fleet) => {
                match self.watch_fleet(&user, id, fleet.unwrap_or_default()).await {
                    Ok(()) => return None,
                    Err(answer) => answer,
                }
            }
            Request::FleetUnsubscribe(_) => {
                self.fleet = None;
                self.queue.unwatch_fleet();
                self.state.hub.unwatch_fleet(self.id);
                ack(id, "fleet.unsubscribe", json!({}))
            }
            Request::AlertsSubscribe(_) => self.alerts(&user, id, true).await,
            Request::AlertsUnsubscribe(_) => self.alerts(&user, id, false).await,
            Request::Ping(_) => pong(id),
        };
        self.queue.push_control(answer);
        None
    }

    async fn handle_auth(&mut self, id: Option<&Value>, token: &str) -> Option<Close> {
        let checked = super::credential::authenticate(&self.state, token, None).await;
        match checked {
            Ok(authenticated) if self.user.is_some_and(|u| u.id != authenticated.user.id) => {
                self.queue.push_control(error(
                    id,
                    Code::Unauthorized,
                    "a connection cannot change its user",
                ));
                None
            }
            Ok(authenticated) => {
                if let Err(close) = self.authenticate(&authenticated) {
                    return Some(close);
                }
                let user = authenticated.user;
                self.queue.push_control(ack(
                    id,
                    "auth",
                    json!({
                        "userId": user.id,
                        "role": user.role.as_str(),
                        "expiresAt": authenticated.expires.then_some(authenticated.expires_at),
                        "limits": Limits::of(&self.state.settings),
                    }),
                ));
                None
            }
            Err(crate::error::ApiError::Forbidden(message)) => {
                if self.user.is_none() {
                    return Some(Close(
                        close_code::POLICY,
                        "this API token may not read the live stream",
                    ));
                }
                self.queue
                    .push_control(error(id, Code::Unauthorized, &message));
                None
            }
            Err(err) if !matches!(err, crate::error::ApiError::Unauthorized(_)) => {
                tracing::warn!(error = %err, "Cannot check a live connection's session");
                self.queue.push_control(error(
                    id,
                    Code::Internal,
                    "cannot check the session now; retry",
                ));
                None
            }
            _ if self.user.is_none() => Some(Close(close_code::POLICY, "invalid or expired token")),
            _ => {
                self.queue
                    .push_control(error(id, Code::Unauthorized, "invalid or expired token"));
                None
            }
        }
    }

    /// Subscribes to a server's samples: the ack (or the refusal), and the replay to send when
    /// the client asked for `since`.
    async fn subscribe(
        &mut self,
        user: &CurrentUser,
        id: Option<&Value>,
        request: Subscribe,
    ) -> Result<(Utf8Bytes, Option<Replay>), Utf8Bytes> {
        let server = request.server_id.as_str();
        let interval = match request.interval_ms {
            None => Duration::ZERO,
            Some(ms) if ms <= MAX_INTERVAL_MS => Duration::from_millis(ms),
            Some(_) => {
                return Err(error(
                    id,
                    Code::BadRequest,
                    "data.intervalMs must be 0 to 3600000",
                ));
            }
        };
        if request
            .since
            .is_some_and(|since| since > chrono::Utc::now() + flick_shared::wire::MAX_FUTURE_SKEW)
        {
            return Err(error(id, Code::BadRequest, "data.since is in the future"));
        }
        let Ok(server_id) = ServerId::parse(server) else {
            return Err(error(id, Code::NotFound, "server not found"));
        };
        if !self.queue.watching(&server_id)
            && self.queue.watch_count() >= self.state.settings.ws_max_subscriptions
        {
            return Err(error(
                id,
                Code::Limit,
                &format!(
                    "at most {} servers per connection",
                    self.state.settings.ws_max_subscriptions
                ),
            ));
        }
        match crate::api::visible_server(&self.state, user, server).await {
            Ok(_) => {}
            Err(crate::error::ApiError::NotFound(_)) => {
                return Err(error(id, Code::NotFound, "server not found"));
            }
            Err(err) => {
                tracing::warn!(error = %err, "Cannot check a live subscription");
                return Err(error(id, Code::Internal, "internal error"));
            }
        }
        self.queue
            .watch(&server_id, interval, request.since.is_some());
        if let Err(err) = self
            .state
            .hub
            .watch(&server_id, self.id, self.queue.clone())
            .await
        {
            self.queue.unwatch(&server_id);
            tracing::warn!(error = %err, "Cannot subscribe on NATS");
            return Err(error(id, Code::Internal, "live data is unavailable"));
        }
        let mut answer = json!({ "serverId": server, "intervalMs": interval.as_millis() as u64 });
        if let Some(since) = request.since {
            answer["since"] = json!(since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        }
        let replay = request.since.map(|since| Replay {
            server: server_id,
            since,
            interval,
        });
        Ok((ack(id, "server_metrics.subscribe", answer), replay))
    }

    fn unsubscribe(&mut self, id: Option<&Value>, server: &str) -> Utf8Bytes {
        match ServerId::parse(server) {
            Ok(server_id) if self.queue.unwatch(&server_id) => {
                self.state.hub.unwatch(&server_id, self.id);
                ack(
                    id,
                    "server_metrics.unsubscribe",
                    json!({ "serverId": server }),
                )
            }
            _ => error(id, Code::NotFound, "not subscribed to this server"),
        }
    }

    /// Starts (or changes) the fleet subscription: the ack, then the list of every server the
    /// user may see (`fleet.servers`, `initial`), then their headlines.
    async fn watch_fleet(
        &mut self,
        user: &CurrentUser,
        id: Option<&Value>,
        request: FleetSubscribe,
    ) -> Result<(), Utf8Bytes> {
        let interval_ms = request.interval_ms.unwrap_or(FLEET_INTERVAL_MS);
        if interval_ms > MAX_INTERVAL_MS {
            return Err(error(
                id,
                Code::BadRequest,
                "data.intervalMs must be 0 to 3600000",
            ));
        }
        // Marked before the listing is read, so that a server created meanwhile asks for a
        // re-check (which announces it) instead of being missed until the periodic one.
        if !self.queue.watches_fleet() {
            self.queue
                .watch_fleet(Duration::from_millis(interval_ms), HashSet::new());
        }
        let servers = match crate::api::servers::visible_servers(&self.state, user).await {
            Ok(servers) => servers,
            Err(err) => {
                tracing::warn!(error = %err, "Cannot list a fleet subscriber's servers");
                if self.fleet.is_none() {
                    self.queue.unwatch_fleet();
                }
                return Err(error(id, Code::Internal, "internal error"));
            }
        };
        let mut view = FleetView {
            tags: request.tags,
            announced: HashMap::new(),
        };
        let changes = view.update(servers, true);
        self.queue.watch_fleet(
            Duration::from_millis(interval_ms),
            view.announced.keys().cloned().collect(),
        );
        if let Err(err) = self
            .state
            .hub
            .watch_fleet(self.id, self.queue.clone())
            .await
        {
            self.queue.unwatch_fleet();
            tracing::warn!(error = %err, "Cannot subscribe on NATS");
            return Err(error(id, Code::Internal, "live data is unavailable"));
        }
        let answer = ack(
            id,
            "fleet.subscribe",
            json!({ "intervalMs": interval_ms, "tags": view.tags }),
        );
        self.fleet = Some(view);
        self.queue.push_control(answer);
        for frame in changes {
            self.queue.push_control(frame);
        }
        Ok(())
    }

    /// Re-reads the servers a fleet subscriber may see and announces what changed.
    async fn recheck_fleet(&mut self, user: &CurrentUser) {
        if self.fleet.is_none() {
            return;
        }
        let servers = match crate::api::servers::visible_servers(&self.state, user).await {
            Ok(servers) => servers,
            Err(err) => {
                tracing::warn!(error = %err, "Cannot re-check a fleet subscriber's servers");
                return;
            }
        };
        let Some(view) = &mut self.fleet else {
            return;
        };
        let frames = view.update(servers, false);
        if frames.is_empty() {
            return;
        }
        self.queue
            .set_fleet_visible(view.announced.keys().cloned().collect());
        for frame in frames {
            self.queue.push_control(frame);
        }
    }

    /// Alerts of every server the user may see (admins: all), fixed when subscribing.
    async fn alerts(&mut self, user: &CurrentUser, id: Option<&Value>, on: bool) -> Utf8Bytes {
        if !on {
            self.queue.set_alerts(AlertScope::None);
            return ack(id, "alerts.unsubscribe", json!({}));
        }
        let scope = if user.role == Role::Admin {
            AlertScope::All
        } else {
            let owned: Result<Vec<String>, _> =
                sqlx::query_scalar("SELECT id FROM servers WHERE owner_id = $1")
                    .bind(user.id)
                    .fetch_all(&self.state.pool)
                    .await;
            match owned {
                Ok(ids) => AlertScope::Servers(
                    ids.into_iter()
                        .filter_map(|id| ServerId::parse(id).ok())
                        .collect::<HashSet<_>>(),
                ),
                Err(err) => {
                    tracing::warn!(error = %err, "Cannot list a user's servers");
                    return error(id, Code::Internal, "internal error");
                }
            }
        };
        self.queue.set_alerts(scope);
        ack(id, "alerts.subscribe", json!({}))
    }
}

/// Servers per `fleet.servers` frame, so that a large fleet's list stays well under the write
/// buffer's bound.
const SERVERS_PER_FRAME: usize = 500;

impl FleetView {
    /// Takes the servers the user may see now (those with every wanted tag) and gives the
    /// `fleet.servers` frames that announce the difference: everything when `initial`.
    fn update(
        &mut self,
        servers: Vec<crate::api::servers::Server>,
        initial: bool,
    ) -> Vec<Utf8Bytes> {
        let mut changes = ServerChanges {
            initial,
            ..ServerChanges::default()
        };
        let mut now = HashMap::new();
        for server in servers {
            if !self.tags.iter().all(|tag| server.tags.contains(tag)) {
                continue;
            }
            let Ok(id) = ServerId::parse(server.id.as_str()) else {
                continue;
            };
            let digest = digest(&server);
            match self.announced.get(&id) {
                None => changes.added.push(json!(server)),
                Some(before) if *before != digest => changes.changed.push(json!(server)),
                Some(_) => {}
            }
            now.insert(id, digest);
        }
        changes.removed = self
            .announced
            .keys()
            .filter(|id| !now.contains_key(*id))
            .map(|id| id.as_str().to_owned())
            .collect();
        changes.removed.sort();
        self.announced = now;
        if changes.is_empty() {
            return Vec::new();
        }
        let mut frames = Vec::new();
        while changes.added.len() > SERVERS_PER_FRAME
            || changes.changed.len() > SERVERS_PER_FRAME
            || changes.removed.len() > SERVERS_PER_FRAME
        {
            let part = ServerChanges {
                initial,
                complete: false,
                added: take_front(&mut changes.added),
                changed: take_front(&mut changes.changed),
                removed: take_front(&mut changes.removed),
            };
            frames.push(part.frame());
        }
        changes.complete = true;
        frames.push(changes.frame());
        frames
    }
}

fn take_front<T>(items: &mut Vec<T>) -> Vec<T> {
    let rest = items.split_off(items.len().min(SERVERS_PER_FRAME));
    std::mem::replace(items, rest)
}

/// What a fleet subscriber is told again when it changes: not the status or the last-seen time,
/// which the headlines show, and which change all the time.
fn digest(server: &crate::api::servers::Server) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        &server.name,
        &server.hostname,
        &server.tags,
        server.owner_id,
        &server.origin,
    )
        .hash(&mut hasher);
    hasher.finish()
}

/// Whether a read failed on a message or frame over the configured size (tungstenite's
/// capacity error, which axum wraps), the one failure that gets its own close code.
fn too_big(err: axum::Error) -> bool {
    err.into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

/// Tells the client why the connection ends (at most a second's wait).
async fn send_close(sink: &mut Sink, Close(code, reason): &Close) {
    tracing::debug!(code, reason, "Closing a live connection");
    let frame = CloseFrame {
        code: *code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        sink.send(Message::Close(Some(frame))),
    )
    .await;
}
