//! The WebSocket protocol: what clients send, and the frames the gateway answers with.
//!
//! Client → gateway: `{"type": "...", "data": {...}, "id": <anything, echoed back>}`, one
//! [`Request`] per message (see README.md, "Live", for every type). Gateway → client: `ack` (with
//! the client's `id`), `error` (`code`, `message`, the `id`), `resource_metrics` (the sample,
//! original field names), `server_metrics.replayed`, `fleet.servers`, `fleet.metrics`, `alert`
//! (the AlertEvent), `pong`.

use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use flick_shared::wire::MetricSample;

/// One client message, tagged on `type` with its payload in `data`.
///
/// Messages without a payload accept `data` missing, `null` or an object (older clients sent
/// `{}`); payloads refuse fields they do not know, so a misspelt `intervalMS` is an error, not a
/// silently ignored option.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", content = "data")]
// The `NoData` payloads are read only to be accepted, never looked at.
#[allow(dead_code)]
pub enum Request {
    #[serde(rename = "auth")]
    Auth(Auth),
    #[serde(rename = "server_metrics.subscribe")]
    Subscribe(Subscribe),
    #[serde(rename = "server_metrics.unsubscribe")]
    Unsubscribe(ServerRef),
    #[serde(rename = "fleet.subscribe")]
    FleetSubscribe(Option<FleetSubscribe>),
    #[serde(rename = "fleet.unsubscribe")]
    FleetUnsubscribe(Option<NoData>),
    #[serde(rename = "alerts.subscribe")]
    AlertsSubscribe(Option<NoData>),
    #[serde(rename = "alerts.unsubscribe")]
    AlertsUnsubscribe(Option<NoData>),
    #[serde(rename = "ping")]
    Ping(Option<NoData>),
}

impl Request {
    /// Every `type` a client may send, for telling an unknown type from a bad payload.
    pub const TYPES: [&'static str; 8] = [
        "auth",
        "server_metrics.subscribe",
        "server_metrics.unsubscribe",
        "fleet.subscribe",
        "fleet.unsubscribe",
        "alerts.subscribe",
        "alerts.unsubscribe",
        "ping",
    ];
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub token: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subscribe {
    pub server_id: String,
    /// At most one sample per interval (the newest); 0 or absent: every sample.
    pub interval_ms: Option<u64>,
    /// Replay the stored samples after this time first, then continue live.
    #[serde(default, with = "flick_shared::wire::timestamp::option")]
    pub since: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerRef {
    pub server_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetSubscribe {
    /// At most one `fleet.metrics` frame per interval; default [`FLEET_INTERVAL_MS`].
    pub interval_ms: Option<u64>,
    /// Only servers carrying every one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// The payload of a message that needs none: anything, ignored.
#[derive(Debug, Deserialize)]
pub struct NoData {}

/// The fleet's frame period when the client names none.
pub const FLEET_INTERVAL_MS: u64 = 1_000;
/// The longest interval a subscription may ask for (an hour).
pub const MAX_INTERVAL_MS: u64 = 3_600_000;

/// Error codes of `error` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadRequest,
    UnknownType,
    Unauthorized,
    NotFound,
    RateLimited,
    Limit,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "bad_request",
            Code::UnknownType => "unknown_type",
            Code::Unauthorized => "unauthorized",
            Code::NotFound => "not_found",
            Code::RateLimited => "rate_limited",
            Code::Limit => "limit_exceeded",
            Code::Internal => "internal",
        }
    }
}

/// A message the gateway could not read, with the client's `id` when it could find one.
#[derive(Debug)]
pub struct Refused {
    pub id: Option<Value>,
    pub code: Code,
    pub message: String,
}

impl Refused {
    pub fn frame(&self) -> Utf8Bytes {
        error(self.id.as_ref(), self.code, &self.message)
    }
}

/// Reads one client message: the request and the client's `id`, or why it is refused
/// (`bad_request` for what is not a message or a payload that does not fit its type,
/// `unknown_type` for a type the gateway does not know).
pub fn parse(text: &str) -> Result<(Option<Value>, Request), Refused> {
    #[derive(Deserialize)]
    struct Message {
        #[serde(default)]
        id: Option<Value>,
        #[serde(flatten)]
        request: Request,
    }
    let err = match serde_json::from_str::<Message>(text) {
        Ok(message) => return Ok((message.id, message.request)),
        Err(err) => err,
    };
    // What a refused message still says, to answer it by its id and name what went wrong.
    let Ok(mut head) = serde_json::from_str::<serde_json::Map<String, Value>>(text) else {
        return Err(Refused {
            id: None,
            code: Code::BadRequest,
            message: format!("not a message (a JSON object with a type): {err}"),
        });
    };
    let (code, message) = match head.remove("type") {
        None => (Code::BadRequest, "the message has no type".to_owned()),
        Some(Value::String(kind)) if !Request::TYPES.contains(&kind.as_str()) => (
            Code::UnknownType,
            format!(
                "unknown type {kind:?}; one of {}",
                Request::TYPES.join(", ")
            ),
        ),
        Some(Value::String(kind)) => (Code::BadRequest, format!("bad data for {kind}: {err}")),
        Some(_) => (Code::BadRequest, "type must be a string".to_owned()),
    };
    Err(Refused {
        id: head.remove("id"),
        code,
        message,
    })
}

/// The connection's limits, advertised in the `auth` ack so that clients need not copy them.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Servers one connection may subscribe to (`gateway.ws_max_subscriptions`).
    pub subscriptions: usize,
    /// Client messages per second, and the burst allowed above it.
    pub messages_per_second: u32,
    pub message_burst: u32,
    /// Answers and alerts waiting for a client before it is disconnected as too slow.
    pub queued_frames: usize,
    /// The largest client message.
    pub message_bytes: usize,
}

impl Limits {
    pub fn of(settings: &crate::config::GatewaySettings) -> Self {
        let per_second = settings.ws_messages_per_second.max(1);
        Self {
            subscriptions: settings.ws_max_subscriptions,
            messages_per_second: per_second,
            message_burst: per_second.saturating_mul(2),
            queued_frames: settings.ws_max_queued,
            message_bytes: settings.ws_max_message_bytes,
        }
    }
}

pub fn ack(id: Option<&Value>, kind: &str, extra: Value) -> Utf8Bytes {
    let mut data = json!({ "type": kind });
    if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
        data.extend(extra);
    }
    json!({ "type": "ack", "id": id, "data": data })
        .to_string()
        .into()
}

pub fn error(id: Option<&Value>, code: Code, message: &str) -> Utf8Bytes {
    json!({ "type": "error", "id": id, "data": { "code": code.as_str(), "message": message } })
        .to_string()
        .into()
}

pub fn pong(id: Option<&Value>) -> Utf8Bytes {
    json!({ "type": "pong", "id": id }).to_string().into()
}

/// Tells a client that a subscription ended without its asking: the server was deleted or
/// given to another owner.
pub fn revoked(server: &str) -> Utf8Bytes {
    json!({ "type": "error", "id": null, "data": {
        "code": Code::NotFound.as_str(),
        "message": "server no longer visible; unsubscribed",
        "serverId": server,
    } })
    .to_string()
    .into()
}

/// The end of a `since` replay (with the subscription's `id`): live samples follow.
pub fn replayed(id: Option<&Value>, server: &str, done: &super::replay::Replayed) -> Utf8Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Replayed<'a> {
        server_id: &'a str,
        samples: u64,
        #[serde(with = "flick_shared::wire::timestamp::option")]
        until: Option<DateTime<Utc>>,
        complete: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
    }
    let data = Replayed {
        server_id: server,
        samples: done.samples,
        until: done.until,
        complete: done.complete,
        reason: done.cut.as_deref(),
    };
    json!({ "type": "server_metrics.replayed", "id": id, "data": data })
        .to_string()
        .into()
}

/// What a `fleet.servers` frame announces: the whole list (`initial`) or what changed since the
/// previous one. A list too long for one frame comes in several; the last says `complete`.
#[derive(Debug, Default, Serialize)]
pub struct ServerChanges {
    pub initial: bool,
    pub complete: bool,
    pub added: Vec<Value>,
    pub changed: Vec<Value>,
    pub removed: Vec<String>,
}

impl ServerChanges {
    pub fn is_empty(&self) -> bool {
        !self.initial && self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    pub fn frame(&self) -> Utf8Bytes {
        json!({ "type": "fleet.servers", "data": self })
            .to_string()
            .into()
    }
}

/// The headline figures of a sample, as a fleet subscriber receives them: built once per sample
/// and shared by every fleet subscriber.
pub fn headline(sample: &MetricSample) -> Utf8Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Headline<'a> {
        server_id: &'a str,
        #[serde(with = "flick_shared::wire::timestamp")]
        timestamp: DateTime<Utc>,
        cpu_usage: f64,
        memory_usage: f64,
        disk_usage: f64,
        network_usage: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        uptime_secs: Option<u64>,
    }
    serde_json::to_string(&Headline {
        server_id: sample.server_id.as_str(),
        timestamp: sample.timestamp,
        cpu_usage: sample.cpu_usage,
        memory_usage: sample.memory_usage,
        disk_usage: sample.disk_usage,
        network_usage: sample.network_usage,
        uptime_secs: sample.uptime_secs,
    })
    .unwrap_or_default()
    .into()
}

/// One `fleet.metrics` frame around headlines that are already JSON.
pub fn fleet_metrics<'a>(headlines: impl Iterator<Item = &'a Utf8Bytes>) -> Utf8Bytes {
    let mut frame = String::from("{\"type\":\"fleet.metrics\",\"data\":{\"samples\":[");
    for (n, headline) in headlines.enumerate() {
        if n > 0 {
            frame.push(',');
        }
        frame.push_str(headline.as_str());
    }
    frame.push_str("]}}");
    frame.into()
}

/// `{"type": "<kind>", "data": <payload>}` around a payload that is already valid JSON: built
/// once per NATS message and shared by every client.
pub fn wrap(kind: &str, payload: &str) -> Utf8Bytes {
    let mut frame = String::with_capacity(payload.len() + kind.len() + 24);
    frame.push_str("{\"type\":\"");
    frame.push_str(kind);
    frame.push_str("\",\"data\":");
    frame.push_str(payload);
    frame.push('}');
    frame.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_json_with_the_clients_id() {
        let frame: Value = serde_json::from_str(
            wrap("resource_metrics", r#"{"serverId":"a","cpuUsage":1}"#).as_str(),
        )
        .expect("json");
        assert_eq!(frame["data"]["serverId"], "a");
        let ack: Value = serde_json::from_str(
            ack(
                Some(&json!(7)),
                "server_metrics.subscribe",
                json!({ "serverId": "a" }),
            )
            .as_str(),
        )
        .expect("json");
        assert_eq!(
            (
                ack["id"].clone(),
                ack["data"]["type"].clone(),
                ack["data"]["serverId"].clone()
            ),
            (json!(7), json!("server_metrics.subscribe"), json!("a"))
        );
        let error: Value =
            serde_json::from_str(error(None, Code::NotFound, "server not found").as_str())
                .expect("json");
        assert_eq!(error["data"]["code"], "not_found");
    }

    /// One message of each type, as a client writes it.
    fn example(kind: &str) -> String {
        let data = match kind {
            "auth" => r#","data":{"token":"t"}"#,
            "server_metrics.subscribe" => {
                r#","data":{"serverId":"a","intervalMs":5000,"since":"2026-12-03T10:00:00Z"}"#
            }
            "server_metrics.unsubscribe" => r#","data":{"serverId":"a"}"#,
            "fleet.subscribe" => r#","data":{"intervalMs":2000,"tags":["db"]}"#,
            _ => "",
        };
        format!(r#"{{"type":"{kind}","id":9{data}}}"#)
    }

    #[test]
    fn every_type_reads_into_its_request() {
        for kind in Request::TYPES {
            let (id, request) = parse(&example(kind)).unwrap_or_else(|e| panic!("{kind}: {e:?}"));
            assert_eq!(id, Some(json!(9)), "{kind}");
            let matched = match request {
                Request::Auth(a) => kind == "auth" && a.token == "t",
                Request::Subscribe(s) => {
                    kind == "server_metrics.subscribe"
                        && s.server_id == "a"
                        && s.interval_ms == Some(5000)
                        && s.since.map(|t| t.to_rfc3339())
                            == Some("2026-12-03T10:00:00+00:00".into())
                }
                Request::Unsubscribe(s) => {
                    kind == "server_metrics.unsubscribe" && s.server_id == "a"
                }
                Request::FleetSubscribe(f) => {
                    kind == "fleet.subscribe"
                        && f.is_some_and(|f| f.interval_ms == Some(2000) && f.tags == ["db"])
                }
                Request::FleetUnsubscribe(_) => kind == "fleet.unsubscribe",
                Request::AlertsSubscribe(_) => kind == "alerts.subscribe",
                Request::AlertsUnsubscribe(_) => kind == "alerts.unsubscribe",
                Request::Ping(_) => kind == "ping",
            };
            assert!(matched, "{kind}");
        }
    }

    #[test]
    fn messages_without_a_payload_take_none_null_or_an_object() {
        for text in [
            r#"{"type":"ping"}"#,
            r#"{"type":"ping","data":null}"#,
            r#"{"type":"alerts.subscribe","data":{}}"#,
            r#"{"type":"fleet.subscribe"}"#,
        ] {
            assert!(parse(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn refusals_are_typed_and_keep_the_id() {
        let cases = [
            ("not json", Code::BadRequest, None),
            ("[1,2]", Code::BadRequest, None),
            (r#"{"id":1}"#, Code::BadRequest, Some(json!(1))),
            (r#"{"type":7,"id":2}"#, Code::BadRequest, Some(json!(2))),
            (
                r#"{"type":"metrics.subscribe","id":3}"#,
                Code::UnknownType,
                Some(json!(3)),
            ),
            (
                r#"{"type":"server_metrics.subscribe","id":4}"#,
                Code::BadRequest,
                Some(json!(4)),
            ),
            (
                r#"{"type":"server_metrics.subscribe","id":5,"data":{"serverId":"a","intervalMS":1}}"#,
                Code::BadRequest,
                Some(json!(5)),
            ),
            (
                r#"{"type":"auth","data":{"token":3}}"#,
                Code::BadRequest,
                None,
            ),
        ];
        for (text, code, id) in cases {
            let refused = parse(text).expect_err(text);
            assert_eq!(
                (refused.code, refused.id.clone()),
                (code, id),
                "{text}: {refused:?}"
            );
        }
        let unknown = parse(r#"{"type":"nope"}"#).expect_err("unknown");
        assert!(
            unknown.message.contains("server_metrics.subscribe"),
            "{}",
            unknown.message
        );
        let misspelt =
            parse(r#"{"type":"server_metrics.subscribe","data":{"serverId":"a","intervalMS":1}}"#)
                .expect_err("misspelt");
        assert!(
            misspelt.message.contains("intervalMS"),
            "{}",
            misspelt.message
        );
    }

    #[test]
    fn fleet_frames_hold_every_headline() {
        let a: Utf8Bytes = r#"{"serverId":"a"}"#.into();
        let b: Utf8Bytes = r#"{"serverId":"b"}"#.into();
        let frame: Value =
            serde_json::from_str(fleet_metrics([&a, &b].into_iter()).as_str()).expect("json");
        assert_eq!(frame["data"]["samples"][1]["serverId"], "b");
        let empty: Value =
            serde_json::from_str(fleet_metrics(std::iter::empty()).as_str()).expect("json");
        assert_eq!(empty["data"]["samples"], json!([]));
    }
}
