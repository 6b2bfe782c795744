//! Everything the four FLick services agree on: the JSON they exchange over NATS, the subjects and
//! streams it travels on, how configuration is loaded, how logs are written, how a process is
//! told to stop, and how a NATS connection is made.
//!
//! Keeping these in one crate is what lets the services be deployed, scaled and restarted
//! independently while still speaking one versioned public interface.

pub mod alerting;
pub mod backoff;
pub mod batch;
pub mod config;
pub mod crypto;
pub mod db;
#[cfg(feature = "ops")]
pub mod deadletter;
pub mod nats;
pub mod natsauth;
#[cfg(feature = "ops")]
pub mod ops;
pub mod outage;
pub mod outbound;
pub mod secret;
pub mod service;
pub mod shutdown;
pub mod streams;
pub mod subjects;
pub mod tasks;
pub mod telemetry;
pub mod wire;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use secret::Secret;
pub use subjects::Subjects;
