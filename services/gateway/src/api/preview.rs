//! `POST /servers/{id}/thresholds/preview`: the alerts a rule would have fired over a server's
//! stored samples, before it is saved.
//!
//! The samples of the range are read in timestamp order and fed to the alerter's own evaluator
//! ([`flick_shared::alerting::backtest`]), from a state where nothing is pending or firing. The
//! work is bounded like a history query: at most a day, at most [`MAX_SAMPLES`] rows streamed
//! one at a time, the history gate's per-user and overall limits, and the gateway's
//! `statement_timeout`.
//!
//! What may differ from the live alerter: samples are stored as `real`, so a value within about
//! 1e-7 of a threshold may compare differently; an alert already pending or firing before
//! `from` starts afresh; `offline` cannot be previewed (stored samples do not say when a server
//! was silent).

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use flick_shared::alerting::backtest::{self, Backtest};
use flick_shared::alerting::rules::Metric;
use flick_shared::alerting::validate;
use flick_shared::wire::{
    AlertEvent, AlertSeverity, AlertState, MetricSample, ServerId, Temperature,
};

use super::access::visible_server;
use super::thresholds::{Rule, RuleChange, in_force};
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(preview))
}

/// The longest range a preview replays.
pub const MAX_RANGE: chrono::Duration = chrono::Duration::hours(24);
/// The most samples a preview reads: a day of a collector reporting twice a second.
pub const MAX_SAMPLES: i64 = 2 * 86_400;

/// A rule to try over past samples.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewRequest {
    /// `cpu`, `memory` or `disk`.
    pub metric: String,
    /// The rule to try; omitted fields (or the whole rule) are the rule in force for this
    /// server and metric.
    #[serde(default)]
    pub rule: Option<RuleChange>,
    /// Start of the range, RFC 3339.
    pub from: String,
    /// End of the range (exclusive), RFC 3339; at most 24 hours after `from`.
    pub to: String,
}

/// One alert the rule would have fired.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewAlert {
    pub alert_id: Uuid,
    /// `warning` or `critical`.
    pub severity: &'static str,
    pub fired_at: DateTime<Utc>,
    /// `null`: still firing at the end of the range.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The highest value from firing to resolution (or the end of the range).
    pub peak: f64,
    pub threshold: f64,
}

/// One transition, as the alerter would have published it (`AlertEvent`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewTransition {
    pub id: Uuid,
    pub alert_id: Uuid,
    pub metric: String,
    /// `warning` or `critical`.
    pub severity: &'static str,
    /// `firing` or `resolved`.
    pub state: &'static str,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub started_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
    pub message: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    pub server_id: String,
    pub metric: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The rule replayed: the one given over the rule in force (`source` says which that was).
    pub rule: Rule,
    /// Samples replayed.
    pub samples: u64,
    /// In the order they fired.
    pub alerts: Vec<PreviewAlert>,
    pub transitions: Vec<PreviewTransition>,
}

fn severity(severity: AlertSeverity) -> &'static str {
    match severity {
        AlertSeverity::Warning => "warning",
        AlertSeverity::Critical => "critical",
    }
}

impl From<backtest::Alert> for PreviewAlert {
    fn from(alert: backtest::Alert) -> Self {
        PreviewAlert {
            alert_id: alert.alert_id,
            severity: severity(alert.severity),
            fired_at: alert.fired_at,
            resolved_at: alert.resolved_at,
            peak: alert.peak,
            threshold: alert.threshold,
        }
    }
}

impl From<AlertEvent> for PreviewTransition {
    fn from(event: AlertEvent) -> Self {
        PreviewTransition {
            id: event.id,
            alert_id: event.alert_id,
            metric: event.metric,
            severity: severity(event.severity),
            state: match event.state {
                AlertState::Firing => "firing",
                AlertState::Resolved => "resolved",
            },
            value: event.value,
            threshold: event.threshold,
            started_at: event.started_at,
            at: event.at,
            message: event.message,
        }
    }
}

fn parse_time(name: &str, value: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::unprocessable(format!("{name}: {value:?} is not an RFC 3339 time")))
}

/// The range to replay: `from` before `to`, at most [`MAX_RANGE`] apart.
pub fn parse_range(from: &str, to: &str) -> ApiResult<(DateTime<Utc>, DateTime<Utc>)> {
    let (from, to) = (parse_time("from", from)?, parse_time("to", to)?);
    if from >= to {
        return Err(ApiError::unprocessable("to: must be after from"));
    }
    if to - from > MAX_RANGE {
        return Err(ApiError::unprocessable(
            "to: the range may span at most 24 hours",
        ));
    }
    Ok((from, to))
}

/// The hottest sensor is what a temperature rule watches (`hottest_celsius` on the sample):
/// read as that reading alone, a one-sensor list.
const SAMPLES: &str = "SELECT ts, cpu::float8, memory::float8, disk::float8,
        (SELECT max((t->>'celsius')::float8) FROM json_array_elements(temperatures) AS t)
    FROM metrics
    WHERE server_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts LIMIT $4";

/// Replays a rule over a server's stored samples and returns the alerts it would have fired.
#[utoipa::path(post, path = "/servers/{id}/thresholds/preview", tag = "alerts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Server id")),
    request_body = PreviewRequest,
    responses((status = 200, body = Preview), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "Unknown metric, invalid rule, unparseable times, a range not forward or over 24 hours, too many samples", body = ErrorBody),
        (status = 429, description = "This user already runs gateway.history_per_user heavy queries", body = ErrorBody),
        (status = 503, description = "Too many heavy queries, or one slower than gateway.statement_timeout_ms", body = ErrorBody)))]
async fn preview(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PreviewRequest>,
) -> ApiResult<ApiJson<Preview>> {
    let server = visible_server(&state, &user, &id).await?;
    let metric = Metric::parse(&body.metric)
        .filter(|m| Metric::SAMPLED.contains(m))
        .ok_or_else(|| {
            ApiError::unprocessable(format!(
                "metric: {:?} is not one of cpu, memory, disk, temperature",
                body.metric
            ))
        })?;
    let (from, to) = parse_range(&body.from, &body.to)?;
    let in_force = in_force(&state, &server.id).await?;
    let (base, source) = in_force
        .rules
        .get(&metric)
        .copied()
        .unwrap_or((in_force.defaults.rules.default_rule(metric), "default"));
    // A proposed rule is one to be set, and setting a rule enables it (as PUT does): an
    // omitted `enabled` is on, even over a default that is off (temperature's).
    let rule = match body.rule {
        Some(change) => RuleChange {
            enabled: Some(change.enabled.unwrap_or(true)),
            ..change
        }
        .applied_to(&base),
        None => base,
    };
    validate::check(metric, &rule).map_err(|err| ApiError::unprocessable(format!("rule.{err}")))?;
    let server_id = ServerId::parse(&server.id)
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("a stored server id is not valid")))?;

    let _admission = state.history.admit(user.id).await?;
    let span = tracing::info_span!("preview", server = %server.id, metric = metric.as_str());
    let report = async {
        let mut backtest = Backtest::new(metric, rule);
        let query = sqlx::query(SAMPLES)
            .bind(&server.id)
            .bind(from)
            .bind(to)
            .bind(MAX_SAMPLES + 1);
        crate::heavy::for_each_row(&state.pool, query, |row| {
            use sqlx::Row as _;
            if backtest.samples() >= MAX_SAMPLES as u64 {
                return Err(ApiError::unprocessable(format!(
                    "to: the range holds more than {MAX_SAMPLES} samples; preview a shorter one"
                )));
            }
            let mut sample = MetricSample::minimal(
                server_id.clone(),
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                0,
            );
            if let Some(celsius) = row.try_get::<Option<f64>, _>(4)? {
                sample.temperatures = vec![Temperature {
                    label: String::new(),
                    celsius,
                    max_celsius: None,
                    critical_celsius: None,
                }];
            }
            backtest.observe(&sample);
            Ok(())
        })
        .await?;
        let report = backtest.finish();
        tracing::debug!(
            samples = report.samples,
            alerts = report.alerts.len(),
            "Replayed a rule"
        );
        Ok::<_, ApiError>(report)
    }
    .instrument(span)
    .await?;
    Ok(ApiJson(Preview {
        server_id: server.id,
        metric: metric.as_str().to_owned(),
        from,
        to,
        rule: Rule::of(&rule, source),
        samples: report.samples,
        alerts: report.alerts.into_iter().map(PreviewAlert::from).collect(),
        transitions: report
            .transitions
            .into_iter()
            .map(PreviewTransition::from)
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_must_be_forward_and_at_most_a_day() {
        assert!(parse_range("2026-11-24T10:00:00Z", "2026-11-25T10:00:00Z").is_ok());
        for (from, to, field) in [
            ("2026-11-24T10:00:00Z", "2026-11-25T10:00:01Z", "to:"),
            ("2026-11-24T10:00:00Z", "2026-11-24T10:00:00Z", "to:"),
            ("2026-11-24T11:00:00Z", "2026-11-24T10:00:00Z", "to:"),
            ("yesterday", "2026-11-24T10:00:00Z", "from:"),
            ("2026-11-24T10:00:00Z", "soon", "to:"),
        ] {
            let err = parse_range(from, to).expect_err("refused");
            assert!(err.to_string().starts_with(field), "{from} {to}: {err}");
        }
    }
}
