//! One live connection: authentication, the client's requests, and sending what its queue holds.
//!
//! One task per connection reads and writes (keeping an idle connection small). Close codes:
//! 1008 policy violation (no or bad authentication, token expired), 1009 message too big,
//! 1013 try again later (the client does not keep up), 1001 going away (shutdown).

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use futures::{SinkExt, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota};
use serde_json::{Value, json};
use tokio::time::Instant;
use tracing::Instrument;

use flick_shared::batch::until;
use flick_shared::wire::ServerId;

use super::protocol::{Code, Envelope, ack, error, revoked};
use super::queue::{AlertScope, ClientQueue};
use crate::auth::tokens::Claims;
use crate::auth::{CurrentUser, Role};
use crate::limits::SocketSlot;
use crate::state::AppState;

/// Why the gateway ends a connection.
struct Close(u16, &'static str);

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
}

fn limiter(per_second: u32) -> DefaultDirectRateLimiter {
    let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(per_second.max(1).saturating_mul(2)).unwrap_or(NonZeroU32::MIN);
    DefaultDirectRateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
}

/// A connection authenticated on the upgrade: its token's claims and the account's role now.
pub type Authenticated = (Claims, Role);

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
        limiter: limiter(state.settings.ws_messages_per_second),
        queue,
        slot,
        user: None,
        expires_at: 0,
        state,
        last_heard: Instant::now(),
    };
    async move {
        let close = match authenticated {
            Some((claims, role)) => connection.authenticate(&claims, role).err(),
            None => None,
        };
        let close = match close {
            Some(close) => {
                let (mut sink, _) = socket.split();
                send_close(&mut sink, &close).await;
                Some(close)
            }
            None => connection.serve(socket).await,
        };
        metrics::counter!("flick_gateway_ws_disconnects_total", "reason" => close.map_or("client", |c| c.1)).increment(1);
        connection.state.hub.disconnect(connection.id, &connection.queue.watched());
    }
    .instrument(span)
    .await;
}

impl Connection {
    /// Takes `claims` (already checked, `role` the account's current one) as the connection's
    /// user; refused when the user holds `gateway.ws_max_per_user` connections already.
    fn authenticate(&mut self, claims: &Claims, role: Role) -> Result<(), Close> {
        let first = self.user.is_none();
        if first
            && !self
                .state
                .limits
                .claim_socket_for(&mut self.slot, claims.sub)
        {
            return Err(Close(
                close_code::AGAIN,
                "too many live connections for this user",
            ));
        }
        self.user = Some(CurrentUser {
            id: claims.sub,
            role,
            session: claims.sid,
        });
        self.expires_at = claims.exp;
        if first {
            self.queue.set_user(claims.sub);
            self.state.hub.connect(self.id, self.queue.clone());
        }
        Ok(())
    }

    /// Re-checks the account and the session: `Some` when the connection must end. When the
    /// database cannot answer, the connection stays (an outage should not cut every stream).
    async fn revalidate(&mut self) -> Option<Close> {
        let user = self.user.as_mut()?;
        match self
            .state
            .access
            .check(&self.state.pool, user.id, user.session)
            .await
        {
            Ok(role) => {
                user.role = role;
                None
            }
            Err(crate::error::ApiError::Unauthorized(_)) => Some(Close(
                close_code::POLICY,
                "the session has ended or the account is disabled",
            )),
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
        let mut ping = tokio::time::interval(Duration::from_secs(settings.ws_ping_secs));
        ping.reset();
        let send_timeout = Duration::from_millis(settings.ws_send_timeout_ms);
        let mut next_metric: Option<Instant> = None;
        // Spread over the period so that thousands of connections do not query together.
        let recheck_every = Duration::from_secs(settings.ws_recheck_secs);
        let spread = recheck_every.mul_f64((self.id % 1000) as f64 / 1000.0);
        let mut recheck =
            tokio::time::interval_at(Instant::now() + recheck_every + spread, recheck_every);
        let shutdown = self.state.shutdown.clone();
        let close = loop {
            let expiry = self.expiry();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break Some(Close(close_code::AWAY, "the gateway is shutting down")),
                () = until(Some(auth_deadline)), if self.user.is_none() => {
                    break Some(Close(close_code::POLICY, "not authenticated within the time allowed"));
                }
                () = until(expiry), if expiry.is_some() => {
                    break Some(Close(close_code::POLICY, "token expired; authenticate again before it expires"));
                }
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        self.last_heard = Instant::now();
                        if let Some(close) = self.handle(text.as_str()).await {
                            break Some(close);
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
                        if let Some(close) = self.revalidate().await {
                            break Some(close);
                        }
                        self.recheck_access().await;
                    }
                }
                () = until(next_metric), if next_metric.is_some() => {}
                _ = recheck.tick() => {
                    if let Some(close) = self.revalidate().await {
                        break Some(close);
                    }
                    self.recheck_access().await;
                }
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > Duration::from_secs(settings.ws_ping_secs * 3) {
                        break Some(Close(close_code::AWAY, "no answer to pings"));
                    }
                    if tokio::time::timeout(send_timeout, sink.send(Message::Ping(Default::default()))).await.map_or(true, |r| r.is_err()) {
                        break Some(Close(close_code::AGAIN, "too slow"));
                    }
                }
            }
            if self.queue.overflowed() {
                break Some(Close(close_code::AGAIN, "too far behind"));
            }
            let (frames, next) = self.queue.ready(Instant::now());
            next_metric = next;
            // Every frame of this wake-up into the write buffer, then one flush: one write to
            // the socket for all of them (it writes earlier only when the buffer fills), not a
            // write and a flush per frame. Each step has the send timeout, as one frame had.
            if !frames.is_empty() {
                let mut failed = false;
                for frame in frames {
                    match tokio::time::timeout(send_timeout, sink.feed(Message::Text(frame))).await
                    {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => {
                            failed = true;
                            break;
                        }
                        Err(_) => return Some(Close(close_code::AGAIN, "too slow")),
                    }
                }
                if !failed {
                    match tokio::time::timeout(send_timeout, sink.flush()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => failed = true,
                        Err(_) => return Some(Close(close_code::AGAIN, "too slow")),
                    }
                }
                if failed {
                    break None;
                }
            }
        };
        if let Some(close) = &close {
            send_close(&mut sink, close).await;
        }
        close
    }

    /// Ends the subscriptions to servers the user may no longer see (deleted, or given to
    /// another owner) and narrows the alerts the same way. When the database cannot answer, the
    /// current access stays: an outage should not cut every stream.
    async fn recheck_access(&mut self) {
        let Some(user) = self.user else {
            return;
        };
        let watched = self.queue.watched();
        let alerts_limited = self.queue.alerts_limited();
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
        if alerts_limited {
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

    fn expiry(&self) -> Option<Instant> {
        self.user?;
        let left = self.expires_at - chrono::Utc::now().timestamp();
        Some(Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }

    /// Answers one client message; `Some` when the connection must end.
    async fn handle(&mut self, text: &str) -> Option<Close> {
        if self.limiter.check().is_err() {
            self.queue.push_control(error(
                None,
                Code::RateLimited,
                "too many messages; slow down",
            ));
            return None;
        }
        let envelope: Envelope = match serde_json::from_str(text) {
            Ok(envelope) => envelope,
            Err(err) => {
                self.queue.push_control(error(
                    None,
                    Code::BadRequest,
                    &format!("not a message: {err}"),
                ));
                return None;
            }
        };
        let id = envelope.id.as_ref();
        if envelope.kind == "auth" {
            return self.handle_auth(id, &envelope.data).await;
        }
        let Some(user) = self.user else {
            self.queue.push_control(error(
                id,
                Code::Unauthorized,
                "authenticate first: {\"type\":\"auth\",\"data\":{\"token\":…}}",
            ));
            return None;
        };
        let answer = match envelope.kind.as_str() {
            "server_metrics.subscribe" => self.subscribe(&user, id, &envelope.data).await,
            "server_metrics.unsubscribe" => self.unsubscribe(id, &envelope.data),
            "alerts.subscribe" => self.alerts(&user, id, true).await,
            "alerts.unsubscribe" => self.alerts(&user, id, false).await,
            "ping" => json!({ "type": "pong", "id": id }).to_string().into(),
            other => error(id, Code::BadRequest, &format!("unknown type {other:?}")),
        };
        self.queue.push_control(answer);
        None
    }

    async fn handle_auth(&mut self, id: Option<&Value>, data: &Value) -> Option<Close> {
        let claims = data["token"]
            .as_str()
            .and_then(|token| self.state.jwt.verify(token));
        let checked = match claims {
            Some(claims) if self.user.is_none_or(|u| u.id == claims.sub) => {
                let role = self
                    .state
                    .access
                    .check(&self.state.pool, claims.sub, claims.sid)
                    .await;
                Some(role.map(|role| (claims, role)))
            }
            Some(_) => {
                self.queue.push_control(error(
                    id,
                    Code::Unauthorized,
                    "a connection cannot change its user",
                ));
                return None;
            }
            None => None,
        };
        match checked {
            Some(Ok((claims, role))) => {
                if let Err(close) = self.authenticate(&claims, role) {
                    return Some(close);
                }
                self.queue.push_control(ack(
                    id,
                    "auth",
                    json!({ "userId": claims.sub, "role": role.as_str(), "expiresAt": claims.exp }),
                ));
                None
            }
            Some(Err(err)) if !matches!(err, crate::error::ApiError::Unauthorized(_)) => {
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

    async fn subscribe(
        &mut self,
        user: &CurrentUser,
        id: Option<&Value>,
        data: &Value,
    ) -> Utf8Bytes {
        let Some(server) = data["serverId"].as_str() else {
            return error(id, Code::BadRequest, "data.serverId is required");
        };
        let interval = match &data["intervalMs"] {
            Value::Null => Duration::ZERO,
            value => match value.as_u64().filter(|ms| *ms <= 3_600_000) {
                Some(ms) => Duration::from_millis(ms),
                None => return error(id, Code::BadRequest, "data.intervalMs must be 0 to 3600000"),
            },
        };
        let Ok(server_id) = ServerId::parse(server) else {
            return error(id, Code::NotFound, "server not found");
        };
        if !self.queue.watching(&server_id)
            && self.queue.watch_count() >= self.state.settings.ws_max_subscriptions
        {
            return error(
                id,
                Code::Limit,
                &format!(
                    "at most {} servers per connection",
                    self.state.settings.ws_max_subscriptions
                ),
            );
        }
        match crate::api::visible_server(&self.state, user, server).await {
            Ok(_) => {}
            Err(crate::error::ApiError::NotFound(_)) => {
                return error(id, Code::NotFound, "server not found");
            }
            Err(err) => {
                tracing::warn!(error = %err, "Cannot check a live subscription");
                return error(id, Code::Internal, "internal error");
            }
        }
        self.queue.watch(&server_id, interval);
        if let Err(err) = self
            .state
            .hub
            .watch(&server_id, self.id, self.queue.clone())
            .await
        {
            self.queue.unwatch(&server_id);
            tracing::warn!(error = %err, "Cannot subscribe on NATS");
            return error(id, Code::Internal, "live data is unavailable");
        }
        ack(
            id,
            "server_metrics.subscribe",
            json!({ "serverId": server, "intervalMs": interval.as_millis() as u64 }),
        )
    }

    fn unsubscribe(&mut self, id: Option<&Value>, data: &Value) -> Utf8Bytes {
        let Some(server) = data["serverId"].as_str() else {
            return error(id, Code::BadRequest, "data.serverId is required");
        };
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

/// Tells the client why the connection ends (at most a second's wait).
/// Whether a read failed on a message or frame over the configured size (tungstenite's
/// capacity error, which axum wraps), the one failure that gets its own close code.
fn too_big(err: axum::Error) -> bool {
    err.into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

async fn send_close(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    Close(code, reason): &Close,
) {
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
