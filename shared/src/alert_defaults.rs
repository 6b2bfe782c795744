//! The default alert thresholds, known to the alerter (which applies them) and the gateway (which
//! shows them beside per-server overrides).

/// CPU warning / critical, percent.
pub const CPU: (f64, f64) = (80.0, 90.0);
/// Memory warning / critical, percent.
pub const MEMORY: (f64, f64) = (80.0, 90.0);
/// Disk (fullest filesystem) warning / critical, percent.
pub const DISK: (f64, f64) = (85.0, 95.0);
/// How long a threshold must be exceeded before its alert fires.
pub const FOR_SECS: u32 = 10;
/// How far below its threshold a value must fall to resolve.
pub const MARGIN: f64 = 5.0;
/// No sample for this long fires `offline`.
pub const OFFLINE_TIMEOUT_SECS: u32 = 30;
