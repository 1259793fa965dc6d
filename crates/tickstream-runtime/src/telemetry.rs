//! Logging on tracing-subscriber, configured by `LOG_LEVEL` and `LOG_FORMAT`.

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// Human-readable lines for terminals or one JSON object per line for log shippers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Colourless, compact, one event per line.
    #[default]
    Pretty,
    /// `{"timestamp":..,"level":..,"fields":{"message":..},"target":..}`.
    Json,
}

/// The `[log]` section every service config embeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// An `EnvFilter` directive: `info`, `debug`, or `info,gateway=debug`.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Pretty,
        }
    }
}

/// A log level directive that does not parse; names `LOG_LEVEL`.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration value for `log.level` (LOG_LEVEL): {0}")]
pub struct LogLevelError(String);

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init(cfg: &LogConfig) -> Result<(), LogLevelError> {
    // Accept the uppercase spellings existing deployments use (LOG_LEVEL=INFO).
    let directive = cfg.level.to_ascii_lowercase();
    let filter = EnvFilter::builder()
        .parse(&directive)
        .map_err(|e| LogLevelError(format!("{:?}: {e}", cfg.level)))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let result = match cfg.format {
        LogFormat::Pretty => builder.with_ansi(false).compact().try_init(),
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
    };
    // A second init (tests running several services in one process) keeps the first.
    let _ = result;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_level_names_the_variable() {
        let e = init(&LogConfig {
            level: "info,=[".into(),
            format: LogFormat::Json,
        })
        .unwrap_err();
        assert!(e.to_string().contains("LOG_LEVEL"));
        init(&LogConfig {
            level: "INFO".into(),
            format: LogFormat::Json,
        })
        .unwrap();
    }
}
