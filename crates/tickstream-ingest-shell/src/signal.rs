//! SIGHUP, the operator's "reload your configuration", as a stream of requests.

/// SIGHUP as a stream of reload requests; several signals before one is handled coalesce.
pub struct Hangups {
    /// `None` when the handler could not be installed (or off Unix): never fires.
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    /// Installs the SIGHUP handler now, so a SIGHUP never kills the service with the default action.
    pub fn install(source: &'static str) -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::hangup()) {
                Ok(s) => Self { signal: Some(s) },
                Err(e) => {
                    tracing::warn!(source, error = %e, "Cannot watch SIGHUP; symbols change only on restart.");
                    Self { signal: None }
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = source;
            Self {}
        }
    }

    /// Resolves at the next SIGHUP; pending forever if there is no handler.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = self.signal.as_mut() {
            if s.recv().await.is_some() {
                return;
            }
            self.signal = None;
        }
        std::future::pending::<()>().await;
    }
}
