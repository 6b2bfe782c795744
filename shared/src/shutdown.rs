//! How a FLick process learns that it should stop.
//!
//! Every service's `run` takes a [`CancellationToken`]: `main` cancels it on SIGINT or SIGTERM,
//! a test or the all-in-one runner cancels it directly. Every task listens to the same token,
//! finishes the unit of work in hand, and returns.

pub use tokio_util::sync::CancellationToken;

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM (`docker stop`, systemd, Kubernetes).
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => tracing::info!(signal = "SIGINT", "Shutting down"),
                    _ = term.recv() => tracing::info!(signal = "SIGTERM", "Shutting down"),
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "Cannot listen for SIGTERM; only Ctrl-C stops this process");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A token that is cancelled by the first SIGINT or SIGTERM.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        signal().await;
        cancel.cancel();
    });
    token
}
