//! A WebSocket client for the live socket's tests.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::Gateway;

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn open(
    gw: &Gateway,
    token: Option<&str>,
    origin: Option<&str>,
) -> Result<Socket, WsError> {
    let mut request = format!("ws://{}/api/v1/ws", gw.address).into_client_request()?;
    if let Some(token) = token {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("header"));
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

pub async fn send(socket: &mut Socket, value: Value) {
    socket
        .send(Message::text(value.to_string()))
        .await
        .expect("send");
}

/// The next JSON frame within `within` (pings are skipped); `None` on timeout.
pub async fn next(socket: &mut Socket, within: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??;
        match message.ok()? {
            Message::Text(text) => return serde_json::from_str(text.as_str()).ok(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

pub async fn expect(socket: &mut Socket, kind: &str) -> Value {
    let frame = next(socket, Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("no {kind} frame"));
    assert_eq!(frame["type"], kind, "{frame}");
    frame
}

/// Waits for the close frame and returns its code and reason.
pub async fn closed(socket: &mut Socket, within: Duration) -> (CloseCode, String) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                return (frame.code, frame.reason.to_string());
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("ended without a close frame: {other:?}"),
            Err(_) => panic!("not closed within {within:?}"),
        }
    }
}
