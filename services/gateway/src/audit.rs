//! The audit trail: who did what, from where. Writing it never fails a request (a failure is
//! logged).

use std::net::IpAddr;

use sqlx::PgPool;
use uuid::Uuid;

/// The longest target kept (a client-chosen text: an email, a server id).
const MAX_TARGET_CHARS: usize = 256;

/// Records `action` (`login_failed`, `server_created`, `credentials_read`, …) on `target`
/// (cut to 256 characters: what a client sends is bounded in the log as everywhere).
pub async fn record(
    pool: &PgPool,
    actor: Option<Uuid>,
    action: &'static str,
    target: Option<&str>,
    ip: Option<IpAddr>,
    detail: serde_json::Value,
) {
    let target: Option<String> = target.map(|t| t.chars().take(MAX_TARGET_CHARS).collect());
    let target = target.as_deref();
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
