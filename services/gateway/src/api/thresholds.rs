//! `/servers/{id}/thresholds`: the alert rules in force for one server, and per-server
//! overrides of the defaults (the alerter re-reads them within seconds).
//!
//! The defaults shown are the ones the alerter recorded in `alert_defaults` (`defaultsFrom:
//! "alerter"`), or the built-in ones while no alerter has started (`"built-in"`). Rules are
//! checked with the shared validation the alerter applies to its own defaults.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use flick_shared::alerting::rules::{self, Metric, RuleSet};
use flick_shared::alerting::{defaults, validate};

use super::access::{double_option, visible_server};
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_thresholds, put_thresholds))
}

/// One metric's rule as it applies to the server.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Percent; `null`: no warning alert (always `null` for `offline`).
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    /// How long the threshold must be exceeded before firing; for `offline`, the silence that
    /// fires it.
    pub for_secs: i32,
    /// Points below the threshold a value must fall to resolve.
    pub margin: f64,
    pub enabled: bool,
    /// `default` (the alerter's default, see `defaultsFrom`) or `server` (an override of this
    /// server).
    pub source: &'static str,
}

impl Rule {
    pub fn of(rule: &rules::Rule, source: &'static str) -> Self {
        Rule {
            warning: rule.warning,
            critical: rule.critical,
            for_secs: i32::try_from(rule.for_secs()).unwrap_or(i32::MAX),
            margin: rule.margin,
            enabled: rule.enabled,
            source,
        }
    }
}

/// A rule to set. Omitted fields take the default's value.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleChange {
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub for_secs: Option<i32>,
    pub margin: Option<f64>,
    pub enabled: Option<bool>,
}

impl RuleChange {
    /// `base` with the fields this change gives replaced.
    pub fn applied_to(&self, base: &rules::Rule) -> rules::Rule {
        rules::Rule {
            warning: self.warning.or(base.warning),
            critical: self.critical.or(base.critical),
            hold: chrono::Duration::seconds(self.for_secs.map_or(base.for_secs(), i64::from)),
            margin: self.margin.unwrap_or(base.margin),
            enabled: self.enabled.unwrap_or(base.enabled),
        }
    }
}

/// Rules to set, by metric. A metric set to `null` returns to the default; a metric left out is
/// unchanged.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdChanges {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<RuleChange>)]
    pub cpu: Option<Option<RuleChange>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<RuleChange>)]
    pub memory: Option<Option<RuleChange>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<RuleChange>)]
    pub disk: Option<Option<RuleChange>>,
    /// The hottest sensor, °C (0 to 150); off by default: setting it enables it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<RuleChange>)]
    pub temperature: Option<Option<RuleChange>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<RuleChange>)]
    pub offline: Option<Option<RuleChange>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Thresholds {
    pub server_id: String,
    /// By metric: `cpu`, `memory`, `disk`, `temperature` (°C), `offline`.
    pub rules: BTreeMap<String, Rule>,
    /// Where the defaults come from: `alerter` (recorded by the alerter from its configuration
    /// when it started or took the lead) or `built-in` (no alerter has recorded any yet).
    #[schema(value_type = String, example = "alerter")]
    pub defaults_from: &'static str,
    /// When the alerter recorded them; `null` for the built-in defaults.
    pub defaults_recorded_at: Option<DateTime<Utc>>,
}

/// The default rules in force and where they come from.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub rules: RuleSet,
    pub from: &'static str,
    pub recorded_at: Option<DateTime<Utc>>,
}

/// One `alert_defaults` row: metric, warning, critical, for_secs, margin, enabled, updated_at.
type DefaultRow = (
    String,
    Option<f64>,
    Option<f64>,
    i32,
    f64,
    bool,
    DateTime<Utc>,
);

/// The defaults the alerter recorded, else the built-in ones.
pub async fn recorded_defaults(state: &AppState) -> ApiResult<Defaults> {
    let rows: Vec<DefaultRow> = sqlx::query_as(
        "SELECT metric, warning, critical, for_secs, margin, enabled, updated_at FROM alert_defaults",
    )
    .fetch_all(&state.pool)
    .await?;
    let built_in = defaults::built_in();
    if rows.is_empty() {
        return Ok(Defaults {
            rules: built_in,
            from: "built-in",
            recorded_at: None,
        });
    }
    let mut by_metric: HashMap<Metric, rules::Rule> = Metric::ALL
        .iter()
        .map(|m| (*m, built_in.default_rule(*m)))
        .collect();
    let mut recorded_at = None;
    for (metric, warning, critical, for_secs, margin, enabled, updated_at) in rows {
        let Some(metric) = Metric::parse(&metric) else {
            continue;
        };
        by_metric.insert(
            metric,
            rules::Rule {
                warning,
                critical,
                hold: chrono::Duration::seconds(i64::from(for_secs)),
                margin,
                enabled,
            },
        );
        recorded_at = recorded_at.max(Some(updated_at));
    }
    Ok(Defaults {
        rules: RuleSet::new(by_metric),
        from: "alerter",
        recorded_at,
    })
}

/// The rules in force for one server: each metric's rule and whether it is the default.
#[derive(Debug, Clone)]
pub struct InForce {
    pub defaults: Defaults,
    pub rules: BTreeMap<Metric, (rules::Rule, &'static str)>,
}

type RuleRow = (String, Option<f32>, Option<f32>, i32, Option<f32>, bool);

/// The rules in force for `server`: its `alert_rules` rows over the defaults, read as the
/// alerter reads them (a NULL margin is the default's).
pub async fn in_force(state: &AppState, server: &str) -> ApiResult<InForce> {
    let defaults = recorded_defaults(state).await?;
    let rows: Vec<RuleRow> = sqlx::query_as(
        "SELECT metric, warning, critical, for_secs, margin, enabled FROM alert_rules WHERE server_id = $1",
    )
    .bind(server)
    .fetch_all(&state.pool)
    .await?;
    let mut rules: BTreeMap<Metric, (rules::Rule, &'static str)> = Metric::ALL
        .iter()
        .map(|m| (*m, (defaults.rules.default_rule(*m), "default")))
        .collect();
    for (metric, warning, critical, for_secs, margin, enabled) in rows {
        let Some(metric) = Metric::parse(&metric) else {
            continue;
        };
        let default = defaults.rules.default_rule(metric);
        rules.insert(
            metric,
            (
                rules::Rule {
                    warning: warning.map(f64::from),
                    critical: critical.map(f64::from),
                    hold: chrono::Duration::seconds(i64::from(for_secs)),
                    margin: margin.map_or(default.margin, f64::from),
                    enabled,
                },
                "server",
            ),
        );
    }
    Ok(InForce { defaults, rules })
}

async fn thresholds_of(state: &AppState, server: &str) -> ApiResult<Thresholds> {
    let in_force = in_force(state, server).await?;
    Ok(Thresholds {
        server_id: server.to_owned(),
        rules: in_force
            .rules
            .iter()
            .map(|(metric, (rule, source))| (metric.as_str().to_owned(), Rule::of(rule, source)))
            .collect(),
        defaults_from: in_force.defaults.from,
        defaults_recorded_at: in_force.defaults.recorded_at,
    })
}

/// The rules in force for a server: its overrides, else the defaults.
#[utoipa::path(get, path = "/servers/{id}/thresholds", tag = "alerts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Server id")),
    responses((status = 200, body = Thresholds), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_thresholds(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<Thresholds>> {
    let server = visible_server(&state, &user, &id).await?;
    Ok(ApiJson(thresholds_of(&state, &server.id).await?))
}

/// warning, critical, for_secs, margin, enabled: an `alert_rules` row.
type RuleValues = (Option<f64>, Option<f64>, i32, Option<f64>, bool);

/// Checks `change` applied to the default as a rule of `metric` (the shared validation);
/// returns what to store (an omitted margin stays NULL: the default's hysteresis).
fn check(metric: Metric, change: &RuleChange, default: &rules::Rule) -> ApiResult<RuleValues> {
    let name = metric.as_str();
    if metric == Metric::Offline
        && (change.warning.is_some() || change.critical.is_some() || change.margin.is_some())
    {
        return Err(ApiError::unprocessable(format!(
            "{name}: offline takes only forSecs and enabled"
        )));
    }
    let rule = RuleChange {
        enabled: Some(change.enabled.unwrap_or(true)),
        ..*change
    }
    .applied_to(default);
    validate::check(metric, &rule)
        .map_err(|err| ApiError::unprocessable(format!("{name}: {err}")))?;
    let for_secs = i32::try_from(rule.for_secs())
        .map_err(|_| ApiError::unprocessable(format!("{name}: forSecs is out of range")))?;
    Ok((
        rule.warning,
        rule.critical,
        for_secs,
        change.margin,
        rule.enabled,
    ))
}

/// Sets per-server rules. The body maps metrics to rules; a metric mapped to `null` returns to
/// the default; metrics left out are unchanged.
#[utoipa::path(put, path = "/servers/{id}/thresholds", tag = "alerts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Server id")),
    request_body = ThresholdChanges,
    responses((status = 200, body = Thresholds), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_thresholds(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ThresholdChanges>,
) -> ApiResult<ApiJson<Thresholds>> {
    let server = visible_server(&state, &user, &id).await?;
    let changes = [
        (Metric::Cpu, body.cpu),
        (Metric::Memory, body.memory),
        (Metric::Disk, body.disk),
        (Metric::Temperature, body.temperature),
        (Metric::Offline, body.offline),
    ];
    let defaults = recorded_defaults(&state).await?;
    let mut tx = state.pool.begin().await?;
    for (metric, change) in changes {
        let Some(change) = change else { continue };
        match change {
            None => {
                sqlx::query("DELETE FROM alert_rules WHERE server_id = $1 AND metric = $2")
                    .bind(&server.id)
                    .bind(metric.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            Some(change) => {
                let (warning, critical, for_secs, margin, enabled) =
                    check(metric, &change, &defaults.rules.default_rule(metric))?;
                sqlx::query(
                    "INSERT INTO alert_rules (server_id, metric, warning, critical, for_secs, margin, enabled, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, now())
                     ON CONFLICT (server_id, metric) DO UPDATE SET warning = EXCLUDED.warning,
                         critical = EXCLUDED.critical, for_secs = EXCLUDED.for_secs, margin = EXCLUDED.margin,
                         enabled = EXCLUDED.enabled, updated_at = now()",
                )
                .bind(&server.id)
                .bind(metric.as_str())
                .bind(warning.map(|v| v as f32))
                .bind(critical.map(|v| v as f32))
                .bind(for_secs)
                .bind(margin.map(|v| v as f32))
                .bind(enabled)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(ApiJson(thresholds_of(&state, &server.id).await?))
}
