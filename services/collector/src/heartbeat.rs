//! The collector's liveness for container health checks: each sample rewrites a small file with
//! its time, and `flick-collector healthcheck` says whether that time is recent.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Records that a sample was taken at `at`; a failure is logged, never fatal (sampling matters
/// more than the health file).
pub fn beat(path: &str, at: DateTime<Utc>) {
    if let Err(err) = std::fs::write(path, at.timestamp_millis().to_string()) {
        tracing::warn!(path, error = %err, "Cannot write the heartbeat file");
    }
}

/// `Ok` when the last sample recorded in `path` is at most `max_age` old.
pub fn check(path: &str, max_age: Duration) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("cannot read {path}: {err}"))?;
    let millis: i64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{path} does not hold a time"))?;
    let last =
        DateTime::from_timestamp_millis(millis).ok_or_else(|| format!("{path}: bad time"))?;
    let age = (Utc::now() - last).to_std().unwrap_or_default();
    if age <= max_age {
        Ok(())
    } else {
        Err(format!("last sample {:.1} s ago", age.as_secs_f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recent_beat_is_healthy_and_an_old_or_missing_one_is_not() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("beat");
        let path = path.to_str().expect("utf-8");
        assert!(check(path, Duration::from_secs(5)).is_err());
        beat(path, Utc::now());
        assert_eq!(check(path, Duration::from_secs(5)), Ok(()));
        beat(path, Utc::now() - chrono::Duration::seconds(30));
        let err = check(path, Duration::from_secs(5)).expect_err("stale");
        assert!(err.starts_with("last sample 30"), "{err}");
    }
}
