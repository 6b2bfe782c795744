//! One [`Sink`](crate::pipeline::Sink) per stream: how its payloads are checked and stored.

mod alerts;
mod binary_copy;
mod containers;
mod logs;
mod metrics;
mod processes;

pub use alerts::AlertsSink;
pub use logs::LogsSink;
pub use metrics::MetricsSink;
pub use processes::ProcessesSink;
