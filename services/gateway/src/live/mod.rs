//! `WS /api/v1/ws`: live metrics and alerts.
//!
//! The gateway holds one NATS subscription per server that at least one of its clients watches
//! (dropped when the last one leaves) and one for all alerts. Each sample is validated and
//! framed once, and the same frame is shared by every client that wants it. Each client has a
//! bounded queue: for metrics only the newest frame per server is kept (a slow client skips
//! samples, it never piles them up), alerts and answers are never dropped, and a client that
//! stops reading is disconnected. See README.md for the protocol.

mod connection;
mod credential;
pub mod hub;
mod protocol;
mod queue;
mod replay;
mod route;

pub use hub::Hub;
pub use route::router;
