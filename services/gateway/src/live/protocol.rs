//! The WebSocket protocol: what clients send, and the frames the gateway answers with.
//!
//! Client → gateway: `{"type": "...", "data": {...}, "id": <anything, echoed back>}` with the
//! types `auth`, `server_metrics.subscribe` (`serverId`, optional `intervalMs`),
//! `server_metrics.unsubscribe`, `alerts.subscribe`, `alerts.unsubscribe`, `ping`.
//! Gateway → client: `ack` (with the client's `id`), `error` (`code`, `message`, the `id`),
//! `resource_metrics` (the sample, original field names), `alert` (the AlertEvent), `pong`.

use axum::extract::ws::Utf8Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
pub struct Envelope {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub data: Value,
}

/// Error codes of `error` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadRequest,
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
            Code::Unauthorized => "unauthorized",
            Code::NotFound => "not_found",
            Code::RateLimited => "rate_limited",
            Code::Limit => "limit_exceeded",
            Code::Internal => "internal",
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
}
