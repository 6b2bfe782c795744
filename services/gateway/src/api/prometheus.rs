//! `GET /prometheus`: the fleet in Prometheus' text exposition format, for a Prometheus that
//! already watches everything else to scrape FLick with an API token (scope
//! `metrics:scrape`) instead of running node_exporter on every host.
//!
//! Each scrape answers the newest stored sample of every server the token's owner may see,
//! with `server_id`, `hostname`, `name` and the server's tags as labels, and one
//! `flick_alert_firing` series per firing alert (as Prometheus' own `ALERTS`). A sample older
//! than [`FRESH`] is not presented as current: such a server shows only its
//! `flick_last_seen_timestamp_seconds` and its alerts (`offline` among them), so a stopped
//! host's last CPU figure does not stay on a graph as if it were live. No timestamps are
//! written: Prometheus stamps each scrape, and its staleness handling then works as usual.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use sqlx::Row as _;
use sqlx::types::Json;
use tracing::Instrument as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use flick_shared::wire::{InterfaceRates, MountUsage, Temperature};

use crate::auth::CurrentUser;
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(scrape))
}

/// How old the newest sample may be and still be shown: Prometheus' own look-back window.
const FRESH: &str = "5 minutes";

/// The content type of the text format, version 0.0.4 (what every Prometheus reads).
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every family, in the order they are written: (name, type, help).
const FAMILIES: &[(&str, &str, &str)] = &[
    (
        "flick_server_info",
        "gauge",
        "Always 1: one series per server the token may see, with its labels.",
    ),
    (
        "flick_last_seen_timestamp_seconds",
        "gauge",
        "When the server's newest sample was stored (Unix time); absent before its first.",
    ),
    (
        "flick_sample_timestamp_seconds",
        "gauge",
        "Time of the sample the figures below come from (Unix time).",
    ),
    (
        "flick_cpu_usage_ratio",
        "gauge",
        "Share of all CPU cores busy (0 to 1).",
    ),
    (
        "flick_cpu_core_usage_ratio",
        "gauge",
        "Share of one CPU core busy (0 to 1).",
    ),
    (
        "flick_memory_usage_ratio",
        "gauge",
        "Share of memory in use (0 to 1).",
    ),
    ("flick_memory_used_bytes", "gauge", "Memory in use."),
    ("flick_memory_total_bytes", "gauge", "Memory installed."),
    ("flick_swap_used_bytes", "gauge", "Swap in use."),
    ("flick_swap_total_bytes", "gauge", "Swap configured."),
    (
        "flick_disk_usage_ratio",
        "gauge",
        "The fullest filesystem's used share, as df shows it (0 to 1).",
    ),
    ("flick_filesystem_size_bytes", "gauge", "Filesystem size."),
    (
        "flick_filesystem_used_bytes",
        "gauge",
        "Filesystem space in use (total minus free, as df's Used).",
    ),
    (
        "flick_filesystem_avail_bytes",
        "gauge",
        "Filesystem space a non-root writer can still use (as df's Avail).",
    ),
    (
        "flick_filesystem_usage_ratio",
        "gauge",
        "Filesystem used share, used / (used + avail) as df shows it (0 to 1).",
    ),
    (
        "flick_disk_read_bytes_per_second",
        "gauge",
        "Bytes read from the host's disks per second.",
    ),
    (
        "flick_disk_written_bytes_per_second",
        "gauge",
        "Bytes written to the host's disks per second.",
    ),
    (
        "flick_network_receive_bytes_per_second",
        "gauge",
        "Bytes received per second, per interface.",
    ),
    (
        "flick_network_transmit_bytes_per_second",
        "gauge",
        "Bytes sent per second, per interface.",
    ),
    ("flick_load1", "gauge", "1-minute load average."),
    ("flick_load5", "gauge", "5-minute load average."),
    ("flick_load15", "gauge", "15-minute load average."),
    (
        "flick_uptime_seconds",
        "gauge",
        "Time since the host booted.",
    ),
    ("flick_processes", "gauge", "Processes running on the host."),
    (
        "flick_temperature_celsius",
        "gauge",
        "Temperature sensor reading.",
    ),
    (
        "flick_alert_firing",
        "gauge",
        "1 for each firing FLick alert, by metric and severity (and container).",
    ),
];

/// Lines of each family, written family by family (the format wants each family in one
/// group, while the rows come server by server).
struct Exposition {
    bodies: Vec<String>,
}

impl Exposition {
    fn new() -> Self {
        Self {
            bodies: vec![String::new(); FAMILIES.len()],
        }
    }

    /// One series: `labels` is the server's label text, `extra` more `name="value"` pairs.
    fn push(&mut self, family: &str, labels: &str, extra: &[(&str, &str)], value: f64) {
        if !value.is_finite() {
            return;
        }
        let Some(index) = FAMILIES.iter().position(|(name, ..)| *name == family) else {
            debug_assert!(false, "unknown family {family}");
            return;
        };
        let body = &mut self.bodies[index];
        body.push_str(family);
        body.push('{');
        body.push_str(labels);
        for (name, text) in extra {
            body.push(',');
            push_label(body, name, text);
        }
        // `{}` prints the shortest text that parses back to the same f64.
        let _ = writeln!(body, "}} {value}");
    }

    fn finish(self) -> String {
        let mut out =
            String::with_capacity(self.bodies.iter().map(String::len).sum::<usize>() + 4096);
        for ((name, kind, help), body) in FAMILIES.iter().zip(self.bodies) {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            out.push_str(&body);
        }
        out
    }
}

/// `name="value"`, the value escaped as the text format wants (`\\`, `\"`, `\n`).
fn push_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The labels every series of a server carries. Tags go in `tags` as `,a,b,` (so
/// `tags=~".*,prod,.*"` selects a tag, the convention of Prometheus' own service discovery),
/// and a `key=value` tag whose key is a valid label name also as `tag_<key>="value"`.
fn server_labels(id: &str, name: &str, hostname: Option<&str>, tags: &[String]) -> String {
    let mut out = String::new();
    push_label(&mut out, "server_id", id);
    out.push(',');
    push_label(&mut out, "hostname", hostname.unwrap_or(""));
    out.push(',');
    push_label(&mut out, "name", name);
    out.push(',');
    let joined = if tags.is_empty() {
        String::new()
    } else {
        format!(",{},", tags.join(","))
    };
    push_label(&mut out, "tags", &joined);
    let mut seen = BTreeSet::new();
    for tag in tags {
        let Some((key, value)) = tag.split_once('=') else {
            continue;
        };
        let valid = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid && seen.insert(key) {
            out.push(',');
            push_label(&mut out, &format!("tag_{key}"), value);
        }
    }
    out
}

/// Percent to ratio: the figures are stored as percents.
fn ratio(percent: f32) -> f64 {
    f64::from(percent) / 100.0
}

/// The newest sample of every server the caller may see, and their firing alerts, in the
/// Prometheus text format.
#[utoipa::path(get, path = "/prometheus", tag = "metrics", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String),
        (status = 401, body = ErrorBody),
        (status = 403, description = "A token without `metrics:scrape` or `read`", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn scrape(State(state): State<AppState>, user: CurrentUser) -> ApiResult<impl IntoResponse> {
    let span =
        tracing::info_span!("prometheus_scrape", user = %user.id, servers = tracing::field::Empty);
    // A whole fleet's newest rows is a heavy read: bounded as history queries are.
    let _admission = state.history.admit(user.id).await?;
    let mut out = Exposition::new();
    let mut servers = 0u64;
    let query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT s.id, s.name, s.hostname, s.tags, s.last_seen_at,
                m.ts, m.cpu, m.memory, m.disk, m.network_rx, m.network_tx, m.load1, m.load5,
                m.load15, m.memory_used, m.memory_total, m.swap_used, m.swap_total, m.disk_read,
                m.disk_write, m.uptime_secs, m.processes, m.cpu_cores, m.mounts, m.interfaces,
                m.temperatures,
                ARRAY(SELECT a.metric || chr(31) || a.severity || chr(31) || a.container
                      FROM alerts a WHERE a.server_id = s.id AND a.state = 'firing'
                      ORDER BY a.metric, a.severity, a.container) AS firing
         FROM servers s
         LEFT JOIN LATERAL (
             SELECT * FROM metrics
             WHERE server_id = s.id AND ts > now() - interval '{FRESH}'
             ORDER BY ts DESC LIMIT 1) m ON true
         WHERE $1 OR s.owner_id = $2
         ORDER BY s.id"
    )))
    .bind(user.is_admin())
    .bind(user.id);
    crate::heavy::for_each_row(&state.pool, query, |row| {
        servers += 1;
        write_server(&mut out, &row).map_err(|err| crate::error::ApiError::Internal(err.into()))
    })
    .instrument(span.clone())
    .await?;
    span.record("servers", servers);
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], out.finish()))
}

fn write_server(out: &mut Exposition, row: &sqlx::postgres::PgRow) -> Result<(), sqlx::Error> {
    let id: String = row.try_get("id")?;
    let name: String = row.try_get("name")?;
    let hostname: Option<String> = row.try_get("hostname")?;
    let tags: Vec<String> = row.try_get("tags")?;
    let labels = server_labels(&id, &name, hostname.as_deref(), &tags);
    out.push("flick_server_info", &labels, &[], 1.0);
    let last_seen: Option<DateTime<Utc>> = row.try_get("last_seen_at")?;
    if let Some(at) = last_seen {
        out.push(
            "flick_last_seen_timestamp_seconds",
            &labels,
            &[],
            seconds(at),
        );
    }
    let firing: Vec<String> = row.try_get("firing")?;
    for alert in &firing {
        let mut parts = alert.split('\u{1f}');
        let (metric, severity) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let container = parts.next().unwrap_or("");
        let mut extra = vec![("metric", metric), ("severity", severity)];
        if !container.is_empty() {
            extra.push(("container", container));
        }
        out.push("flick_alert_firing", &labels, &extra, 1.0);
    }
    let Some(at) = row.try_get::<Option<DateTime<Utc>>, _>("ts")? else {
        return Ok(());
    };
    out.push("flick_sample_timestamp_seconds", &labels, &[], seconds(at));
    let real = |column: &str| row.try_get::<Option<f32>, _>(column);
    let big = |column: &str| row.try_get::<Option<i64>, _>(column);
    if let Some(cpu) = real("cpu")? {
        out.push("flick_cpu_usage_ratio", &labels, &[], ratio(cpu));
    }
    if let Some(cores) = row.try_get::<Option<Vec<f32>>, _>("cpu_cores")? {
        for (i, core) in cores.iter().enumerate() {
            out.push(
                "flick_cpu_core_usage_ratio",
                &labels,
                &[("core", &i.to_string())],
                ratio(*core),
            );
        }
    }
    if let Some(memory) = real("memory")? {
        out.push("flick_memory_usage_ratio", &labels, &[], ratio(memory));
    }
    if let Some(disk) = real("disk")? {
        out.push("flick_disk_usage_ratio", &labels, &[], ratio(disk));
    }
    for (family, column) in [
        ("flick_memory_used_bytes", "memory_used"),
        ("flick_memory_total_bytes", "memory_total"),
        ("flick_swap_used_bytes", "swap_used"),
        ("flick_swap_total_bytes", "swap_total"),
        ("flick_disk_read_bytes_per_second", "disk_read"),
        ("flick_disk_written_bytes_per_second", "disk_write"),
        ("flick_uptime_seconds", "uptime_secs"),
    ] {
        if let Some(value) = big(column)? {
            out.push(family, &labels, &[], value as f64);
        }
    }
    if let Some(processes) = row.try_get::<Option<i32>, _>("processes")? {
        out.push("flick_processes", &labels, &[], f64::from(processes));
    }
    for (family, column) in [
        ("flick_load1", "load1"),
        ("flick_load5", "load5"),
        ("flick_load15", "load15"),
    ] {
        if let Some(load) = real(column)? {
            out.push(family, &labels, &[], f64::from(load));
        }
    }
    let mounts: Option<Json<Vec<MountUsage>>> = row.try_get("mounts")?;
    for mount in mounts.map(|m| m.0).unwrap_or_default() {
        let extra = [
            ("mountpoint", mount.mount_point.as_str()),
            ("device", mount.device.as_str()),
            ("fstype", mount.file_system.as_str()),
        ];
        out.push(
            "flick_filesystem_size_bytes",
            &labels,
            &extra,
            mount.total_bytes as f64,
        );
        out.push(
            "flick_filesystem_used_bytes",
            &labels,
            &extra,
            mount.used_bytes as f64,
        );
        if let Some(avail) = mount.available_bytes {
            out.push(
                "flick_filesystem_avail_bytes",
                &labels,
                &extra,
                avail as f64,
            );
        }
        out.push(
            "flick_filesystem_usage_ratio",
            &labels,
            &extra,
            mount.usage_percent() / 100.0,
        );
    }
    let interfaces: Option<Json<Vec<InterfaceRates>>> = row.try_get("interfaces")?;
    let interfaces = interfaces.map(|i| i.0).unwrap_or_default();
    if interfaces.is_empty() {
        // An older collector: the host's totals only.
        for (family, column) in [
            ("flick_network_receive_bytes_per_second", "network_rx"),
            ("flick_network_transmit_bytes_per_second", "network_tx"),
        ] {
            if let Some(value) = big(column)? {
                out.push(family, &labels, &[("device", "all")], value as f64);
            }
        }
    }
    for interface in &interfaces {
        let extra = [("device", interface.name.as_str())];
        out.push(
            "flick_network_receive_bytes_per_second",
            &labels,
            &extra,
            interface.rx_bytes_per_sec as f64,
        );
        out.push(
            "flick_network_transmit_bytes_per_second",
            &labels,
            &extra,
            interface.tx_bytes_per_sec as f64,
        );
    }
    let temperatures: Option<Json<Vec<Temperature>>> = row.try_get("temperatures")?;
    for sensor in temperatures.map(|t| t.0).unwrap_or_default() {
        out.push(
            "flick_temperature_celsius",
            &labels,
            &[("sensor", &sensor.label)],
            sensor.celsius,
        );
    }
    Ok(())
}

fn seconds(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_key_value_tags_become_labels() {
        let tags = vec![
            "prod".to_owned(),
            "team=core \"db\"".to_owned(),
            "9bad=x".to_owned(),
            "team=other".to_owned(),
        ];
        let labels = server_labels("web-1", "a\\b\nc", Some("web-1.example"), &tags);
        assert_eq!(
            labels,
            r#"server_id="web-1",hostname="web-1.example",name="a\\b\nc",tags=",prod,team=core \"db\",9bad=x,team=other,",tag_team="core \"db\"""#
        );
        assert_eq!(
            server_labels("x", "x", None, &[]),
            r#"server_id="x",hostname="",name="x",tags="""#
        );
    }

    #[test]
    fn each_family_is_written_once_with_help_and_type_and_its_series_together() {
        let mut out = Exposition::new();
        out.push("flick_cpu_usage_ratio", r#"server_id="a""#, &[], 0.425);
        out.push("flick_load1", r#"server_id="a""#, &[], 1.5);
        out.push("flick_cpu_usage_ratio", r#"server_id="b""#, &[], 1.0);
        out.push("flick_cpu_usage_ratio", r#"server_id="c""#, &[], f64::NAN);
        let text = out.finish();
        let cpu = text
            .find("# TYPE flick_cpu_usage_ratio gauge\n")
            .expect("typed");
        let after = &text[cpu..];
        assert!(after.contains(
            "flick_cpu_usage_ratio{server_id=\"a\"} 0.425\nflick_cpu_usage_ratio{server_id=\"b\"} 1\n# HELP"
        ));
        assert!(!text.contains("NaN"));
        assert_eq!(text.matches("# TYPE flick_load1 ").count(), 1);
    }
}
