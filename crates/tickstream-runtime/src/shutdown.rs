//! One future for "the operator asked us to stop".

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (docker stop, systemd, Kubernetes).
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot watch SIGTERM; only Ctrl-C stops the service.");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Polls `shutdown` once and says whether it has already resolved. A service
/// calls it first thing, so the signal handlers are installed before it logs
/// `Listening.` (a stop that arrives after that line is never lost).
pub async fn poll_once<F: std::future::Future<Output = ()> + Unpin>(shutdown: &mut F) -> bool {
    tokio::select! {
        biased;
        _ = shutdown => true,
        _ = std::future::ready(()) => false,
    }
}
