//! `/servers/{id}/thresholds`: the alert rules in force for one server, and per-server
//! overrides of the defaults (the alerter re-reads them within seconds).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{double_option, visible_server};
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_thresholds, put_thresholds))
}

const METRICS: [&str; 4] = ["cpu", "memory", "disk", "offline"];

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
    /// `default` (the alerter's configuration) or `server` (an override of this server).
    pub source: &'static str,
}

/// A rule to set. Omitted fields take the default's value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleChange {
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub for_secs: Option<i32>,
    pub margin: Option<f64>,
    pub enabled: Option<bool>,
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
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<RuleChange>)]
    pub offline: Option<Option<RuleChange>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Thresholds {
    pub server_id: String,
    /// By metric: `cpu`, `memory`, `disk`, `offline`.
    pub rules: BTreeMap<String, Rule>,
}

fn default_rule(state: &AppState, metric: &str) -> Rule {
    let d = &state.defaults;
    let (warning, critical, for_secs) = match metric {
        "cpu" => (Some(d.cpu_warning), Some(d.cpu_critical), d.for_secs),
        "memory" => (Some(d.memory_warning), Some(d.memory_critical), d.for_secs),
        "disk" => (Some(d.disk_warning), Some(d.disk_critical), d.for_secs),
        _ => (None, None, d.offline_timeout_secs),
    };
    Rule {
        warning,
        critical,
        for_secs: i32::try_from(for_secs).unwrap_or(i32::MAX),
        margin: d.margin,
        enabled: true,
        source: "default",
    }
}

type RuleRow = (String, Option<f32>, Option<f32>, i32, Option<f32>, bool);

async fn thresholds_of(state: &AppState, server: &str) -> ApiResult<Thresholds> {
    let rows: Vec<RuleRow> = sqlx::query_as(
        "SELECT metric, warning, critical, for_secs, margin, enabled FROM alert_rules WHERE server_id = $1",
    )
    .bind(server)
    .fetch_all(&state.pool)
    .await?;
    let mut rules: BTreeMap<String, Rule> = METRICS
        .iter()
        .map(|m| ((*m).to_owned(), default_rule(state, m)))
        .collect();
    for (metric, warning, critical, for_secs, margin, enabled) in rows {
        rules.insert(
            metric,
            Rule {
                warning: warning.map(f64::from),
                critical: critical.map(f64::from),
                for_secs,
                margin: margin.map_or(state.defaults.margin, f64::from),
                enabled,
                source: "server",
            },
        );
    }
    Ok(Thresholds {
        server_id: server.to_owned(),
        rules,
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

fn check(metric: &str, change: &RuleChange, default: &Rule) -> ApiResult<RuleValues> {
    let invalid = |message: String| Err(ApiError::unprocessable(format!("{metric}: {message}")));
    let for_secs = change.for_secs.unwrap_or(default.for_secs);
    let enabled = change.enabled.unwrap_or(true);
    if metric == "offline" {
        if change.warning.is_some() || change.critical.is_some() || change.margin.is_some() {
            return invalid("offline takes only forSecs and enabled".into());
        }
        if !(2..=86_400).contains(&for_secs) {
            return invalid("forSecs must be 2 to 86400".into());
        }
        return Ok((None, None, for_secs, None, enabled));
    }
    let warning = change.warning.or(default.warning);
    let critical = change.critical.or(default.critical);
    for (name, value) in [("warning", warning), ("critical", critical)] {
        if let Some(value) = value
            && !(value.is_finite() && (0.0..=100.0).contains(&value))
        {
            return invalid(format!("{name} must be a percentage (0 to 100)"));
        }
    }
    if let (Some(w), Some(c)) = (warning, critical)
        && w > c
    {
        return invalid("warning must not be above critical".into());
    }
    if !(0..=86_400).contains(&for_secs) {
        return invalid("forSecs must be 0 to 86400".into());
    }
    if let Some(margin) = change.margin
        && !(margin.is_finite() && (0.0..=50.0).contains(&margin))
    {
        return invalid("margin must be 0 to 50".into());
    }
    Ok((warning, critical, for_secs, change.margin, enabled))
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
        ("cpu", body.cpu),
        ("memory", body.memory),
        ("disk", body.disk),
        ("offline", body.offline),
    ];
    let mut tx = state.pool.begin().await?;
    for (metric, change) in changes {
        let Some(change) = change else { continue };
        match change {
            None => {
                sqlx::query("DELETE FROM alert_rules WHERE server_id = $1 AND metric = $2")
                    .bind(&server.id)
                    .bind(metric)
                    .execute(&mut *tx)
                    .await?;
            }
            Some(change) => {
                let (warning, critical, for_secs, margin, enabled) =
                    check(metric, &change, &default_rule(&state, metric))?;
                sqlx::query(
                    "INSERT INTO alert_rules (server_id, metric, warning, critical, for_secs, margin, enabled, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, now())
                     ON CONFLICT (server_id, metric) DO UPDATE SET warning = EXCLUDED.warning,
                         critical = EXCLUDED.critical, for_secs = EXCLUDED.for_secs, margin = EXCLUDED.margin,
                         enabled = EXCLUDED.enabled, updated_at = now()",
                )
                .bind(&server.id)
                .bind(metric)
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
