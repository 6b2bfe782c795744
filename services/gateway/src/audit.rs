//! The audit trail: who did what, from where. Writing it never fails a request (a failure is
//! logged).

use std::net::IpAddr;

use sqlx::PgPool;
use uuid::Uuid;

/// Records `action` (`login_failed`, `server_created`, `credentials_read`, …) on `target`.
pub async fn record(
    pool: &PgPool,
    actor: Option<Uuid>,
    action: &'static str,
    target: Option<&str>,
    ip: Option<IpAddr>,
    detail: serde_json::Value,
) {
    let result = sqlx::query(
        "INSERT INTO audit_log (actor, action, target, ip, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(ip.map(|ip| ip.to_string()))
    .bind(detail)
    .execute(pool)
    .await;
    if let Err(err) = result {
        tracing::warn!(error = %err, action, "Cannot write the audit log");
    }
    tracing::info!(target: "audit", ?actor, action, target, ?ip, "Audit");
}
