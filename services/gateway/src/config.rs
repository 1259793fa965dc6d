//! Gateway configuration: defaults here, then the TOML file, then the environment.
//!
//! Every key below is also settable as `TICKSTREAM_GATEWAY__<KEY>`; the common
//! ones keep their plain names (`HOST`, `PORT`, `REDIS_URL`, `LOG_LEVEL`,
//! `LOG_FORMAT`).

use serde::{Deserialize, Serialize};
use tickstream_model::Symbol;
use tickstream_runtime::config::{ConfigError, EnvAlias, ServiceConfig};
/// The secrets of `[gateway.auth]`, the runtime's redacting type (kept at this path for `crate::config::Secret` users).
pub use tickstream_runtime::secret::Secret;
use tickstream_runtime::telemetry::LogConfig;

/// Plain-named variables beyond the common ones.
pub const ALIASES: &[EnvAlias] = &[
    EnvAlias::list("DEFAULT_SYMBOLS", "gateway.default_symbols"),
    EnvAlias::list("ALLOWED_ORIGINS", "gateway.allowed_origins"),
];

/// The whole gateway configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Interface to bind (`HOST`).
    pub host: String,
    /// Port to bind (`PORT`); 0 picks a free one (tests).
    pub port: u16,
    /// Redis to subscribe to (`REDIS_URL`).
    pub redis_url: String,
    /// Redis Cluster seed nodes `host:port,...` (`REDIS_CLUSTER_NODES`); empty (the default) = one Redis at `redis_url`.
    #[serde(
        default,
        deserialize_with = "tickstream_runtime::config::string_or_list"
    )]
    pub redis_cluster_nodes: Vec<String>,
    /// Logging (`LOG_LEVEL`, `LOG_FORMAT`).
    pub log: LogConfig,
    /// Gateway-specific settings (`TICKSTREAM_GATEWAY__*`).
    pub gateway: GatewaySection,
}

/// Limits and tuning of the gateway, each with a production default.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewaySection {
    /// Symbols advertised by `/symbols` as the suggested set (a TOML list or a comma separated string).
    #[serde(deserialize_with = "tickstream_runtime::config::string_or_list")]
    pub default_symbols: Vec<String>,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Per-connection outbound queue, in frames; when full, that client's ticks are conflated to the newest per symbol.
    pub queue_capacity: usize,
    /// A client behind (conflating) this long, or whose socket write stays blocked this long, is closed with 1008 `slow consumer`.
    pub slow_consumer_timeout_ms: u64,
    /// Write batching (off at 0): the first tick of a burst waits this long before its connections are woken
    /// (one timer per worker), so each writes what arrived meanwhile at once, trading up to this much latency
    /// for fewer wake-ups and syscalls per delivery. At most 1000.
    pub write_delay_ms: u64,
    /// Most open connections (native + Socket.IO sessions) in total; 0 = unlimited. Beyond: HTTP 429.
    pub max_connections: usize,
    /// Most open connections from one peer IP; 0 = unlimited (the default: behind a load balancer every client shares its IP). Beyond: HTTP 429.
    pub max_connections_per_ip: usize,
    /// Browser origins allowed for REST (CORS), WebSocket upgrades and Engine.IO (403 otherwise); empty = any.
    #[serde(
        default,
        deserialize_with = "tickstream_runtime::config::string_or_list"
    )]
    pub allowed_origins: Vec<String>,
    /// Optional JWT authentication of clients (off by default).
    #[serde(default)]
    pub auth: AuthSection,
    /// Most symbols one connection may hold (`too_many_symbols` beyond).
    pub max_symbols_per_connection: usize,
    /// Inbound text frames larger than this get `too_large` (the connection stays).
    pub max_message_bytes: usize,
    /// Frames larger than this close the connection with 1009.
    pub max_frame_bytes: usize,
    /// subscribe/unsubscribe requests per second per connection (`rate_limited` beyond).
    pub requests_per_second: u32,
    /// Limit breaches in a row after which the connection is closed with 1008.
    pub max_violations: u32,
    /// Seconds between server pings.
    pub ping_interval_secs: u64,
    /// Seconds without any inbound frame (pong included) before the client is dropped.
    pub idle_timeout_secs: u64,
    /// Seconds SIGTERM waits for connections to close before exiting.
    pub shutdown_grace_secs: u64,
    /// Socket.IO: Engine.IO `pingInterval` in ms (the reference server's default, 25000).
    pub socketio_ping_interval_ms: u64,
    /// Socket.IO: Engine.IO `pingTimeout` in ms (reference default 20000); silent sessions are reaped after interval + timeout.
    pub socketio_ping_timeout_ms: u64,
    /// Socket.IO: Engine.IO `maxPayload` in bytes per POST body or WebSocket message (reference default 1000000).
    pub socketio_max_payload_bytes: usize,
    /// Socket.IO: ms a probed WebSocket has to complete the upgrade (reference `upgradeTimeout`, 10000).
    pub socketio_upgrade_timeout_ms: u64,
    /// Bind with SO_REUSEPORT so several gateway processes on one host share `PORT` and the kernel spreads
    /// new connections over them (replicas without a load balancer, zero-downtime restarts); every process
    /// on the port must set it. Off (the default): a second process on the port fails to start.
    #[serde(default)]
    pub reuse_port: bool,
    /// Most items one `history` request or REST history page returns.
    #[serde(default = "default_history_max_items")]
    pub history_max_items: usize,
    /// Most items one recovery (`subscribe` with `since`) replays per channel; further behind is
    /// refused with `recovered:false` (`too_far_behind`) and answered with the latest snapshot.
    #[serde(default = "default_recovery_max_items")]
    pub recovery_max_items: usize,
    /// Compatibility profiles for existing clients and the symbol alias table (`[gateway.compat]`).
    #[serde(default)]
    pub compat: crate::compat::CompatSection,
    /// Bearer token that authorizes `POST /feeds/{name}/stop|start` (at least 16 bytes; empty = none,
    /// then only a JWT with an admin claim does); never logged.
    #[serde(default)]
    pub admin_token: Secret,
    /// How long `POST /feeds/{name}/stop|start` waits for the feed to report the state asked for before answering 504.
    #[serde(default = "default_feed_control_timeout_ms")]
    pub feed_control_timeout_ms: u64,
}

/// Default `gateway.feed_control_timeout_ms`: a feed acts within a second; this leaves room for a slow upstream close.
fn default_feed_control_timeout_ms() -> u64 {
    5000
}

/// Default `gateway.history_max_items`.
fn default_history_max_items() -> usize {
    1000
}

/// Default `gateway.recovery_max_items`: a 10-second gap of a symbol at 500 updates/s.
fn default_recovery_max_items() -> usize {
    5000
}

/// JWT settings (`[gateway.auth]`, `TICKSTREAM_GATEWAY__AUTH__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthSection {
    /// `none` (default: no auth), `HS256` (shared secret) or `RS256` (public key).
    pub algorithm: String,
    /// HS256 shared secret; never logged.
    pub hs256_secret: Secret,
    /// RS256 public key, PEM text (or use `rs256_public_key_file`).
    pub rs256_public_key_pem: Secret,
    /// RS256 public key, path of a PEM file.
    pub rs256_public_key_file: String,
    /// Required `iss` claim; empty = not checked.
    pub issuer: String,
    /// Required `aud` claim; empty = not checked.
    pub audience: String,
    /// Clock skew allowed for `exp`/`nbf`, in seconds.
    pub leeway_secs: u64,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            algorithm: "none".to_owned(),
            hs256_secret: Secret::default(),
            rs256_public_key_pem: Secret::default(),
            rs256_public_key_file: String::new(),
            issuer: String::new(),
            audience: String::new(),
            leeway_secs: 30,
        }
    }
}

impl AuthSection {
    /// Whether JWT auth is on.
    pub fn enabled(&self) -> bool {
        !self.algorithm.is_empty() && !self.algorithm.eq_ignore_ascii_case("none")
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let key = "gateway.auth.algorithm";
        match self.algorithm.to_ascii_uppercase().as_str() {
            "" | "NONE" => Ok(()),
            "HS256" if self.hs256_secret.expose().len() < 16 => Err(ConfigError::invalid(
                "gateway.auth.hs256_secret",
                ALIASES,
                "HS256 needs a secret of at least 16 bytes",
            )),
            "HS256" => Ok(()),
            "RS256"
                if self.rs256_public_key_pem.expose().is_empty()
                    && self.rs256_public_key_file.is_empty() =>
            {
                Err(ConfigError::invalid(
                    "gateway.auth.rs256_public_key_pem",
                    ALIASES,
                    "RS256 needs rs256_public_key_pem or rs256_public_key_file",
                ))
            }
            "RS256" => Ok(()),
            other => Err(ConfigError::invalid(
                key,
                ALIASES,
                format!("{other:?}: expected none, HS256 or RS256"),
            )),
        }
    }
}

/// The default symbol mix, matching ingest-sim's default.
pub const DEFAULT_SYMBOLS: &[&str] = &[
    "BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "ADAUSDT", "AAPL", "MSFT", "NVDA", "EUR/USD",
];

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".to_owned(),
            port: 5021,
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            redis_cluster_nodes: Vec::new(),
            log: LogConfig::default(),
            gateway: GatewaySection {
                default_symbols: DEFAULT_SYMBOLS.iter().map(|s| (*s).to_owned()).collect(),
                workers: 0,
                queue_capacity: 1024,
                slow_consumer_timeout_ms: 10_000,
                write_delay_ms: 0,
                max_connections: 100_000,
                max_connections_per_ip: 0,
                allowed_origins: Vec::new(),
                auth: AuthSection::default(),
                max_symbols_per_connection: 200,
                max_message_bytes: 16 * 1024,
                max_frame_bytes: 1024 * 1024,
                requests_per_second: 20,
                max_violations: 20,
                ping_interval_secs: 20,
                idle_timeout_secs: 60,
                shutdown_grace_secs: 5,
                socketio_ping_interval_ms: 25_000,
                socketio_ping_timeout_ms: 20_000,
                socketio_max_payload_bytes: 1_000_000,
                socketio_upgrade_timeout_ms: 10_000,
                reuse_port: false,
                history_max_items: default_history_max_items(),
                recovery_max_items: default_recovery_max_items(),
                compat: crate::compat::CompatSection::default(),
                admin_token: Secret::default(),
                feed_control_timeout_ms: default_feed_control_timeout_ms(),
            },
        }
    }
}

impl Config {
    /// Checks rules types cannot express (the error names the key) and parses
    /// the default symbols, so `run` starts only on a config it can serve.
    pub fn check(&self) -> Result<Vec<Symbol>, ConfigError> {
        tickstream_runtime::config::check_cluster_nodes(&self.redis_cluster_nodes, ALIASES)?;
        let g = &self.gateway;
        let mut defaults = Vec::with_capacity(g.default_symbols.len());
        for raw in &g.default_symbols {
            let sym = Symbol::parse(raw).map_err(|e| {
                ConfigError::invalid("gateway.default_symbols", ALIASES, format!("{raw:?}: {e}"))
            })?;
            defaults.push(sym);
        }
        let positive = [
            ("gateway.queue_capacity", g.queue_capacity as u64),
            ("gateway.history_max_items", g.history_max_items as u64),
            ("gateway.recovery_max_items", g.recovery_max_items as u64),
            (
                "gateway.slow_consumer_timeout_ms",
                g.slow_consumer_timeout_ms,
            ),
            (
                "gateway.max_symbols_per_connection",
                g.max_symbols_per_connection as u64,
            ),
            ("gateway.max_message_bytes", g.max_message_bytes as u64),
            (
                "gateway.requests_per_second",
                u64::from(g.requests_per_second),
            ),
            ("gateway.max_violations", u64::from(g.max_violations)),
            ("gateway.ping_interval_secs", g.ping_interval_secs),
            ("gateway.idle_timeout_secs", g.idle_timeout_secs),
            (
                "gateway.socketio_ping_interval_ms",
                g.socketio_ping_interval_ms,
            ),
            (
                "gateway.socketio_ping_timeout_ms",
                g.socketio_ping_timeout_ms,
            ),
            (
                "gateway.socketio_max_payload_bytes",
                g.socketio_max_payload_bytes as u64,
            ),
            (
                "gateway.socketio_upgrade_timeout_ms",
                g.socketio_upgrade_timeout_ms,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::invalid(key, ALIASES, "must be greater than 0"));
            }
        }
        if g.write_delay_ms > 1000 {
            return Err(ConfigError::invalid(
                "gateway.write_delay_ms",
                ALIASES,
                "must be at most 1000 (0 turns write batching off)",
            ));
        }
        if g.max_frame_bytes < g.max_message_bytes {
            return Err(ConfigError::invalid(
                "gateway.max_frame_bytes",
                ALIASES,
                "must be at least gateway.max_message_bytes",
            ));
        }
        for origin in &g.allowed_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    "gateway.allowed_origins",
                    ALIASES,
                    format!("{origin:?} is not an origin like https://app.example.com"),
                ));
            }
        }
        g.auth.validate()?;
        g.compat.validate()?;
        let admin = g.admin_token.expose();
        if !admin.is_empty() && admin.trim().len() < 16 {
            return Err(ConfigError::invalid(
                "gateway.admin_token",
                ALIASES,
                "must be at least 16 bytes (or empty to accept only admin JWTs)",
            ));
        }
        if !(100..=60_000).contains(&g.feed_control_timeout_ms) {
            return Err(ConfigError::invalid(
                "gateway.feed_control_timeout_ms",
                ALIASES,
                "must be between 100 and 60000",
            ));
        }
        if g.reuse_port && !cfg!(unix) {
            return Err(ConfigError::invalid(
                "gateway.reuse_port",
                ALIASES,
                "SO_REUSEPORT is only available on Unix",
            ));
        }
        if g.idle_timeout_secs <= g.ping_interval_secs {
            return Err(ConfigError::invalid(
                "gateway.idle_timeout_secs",
                ALIASES,
                "must be longer than gateway.ping_interval_secs",
            ));
        }
        Ok(defaults)
    }
}

/// The gateway's config for [`tickstream_runtime::cli::main`]: the same loading, `--print-env` and errors as every service.
impl ServiceConfig for Config {
    const ALIASES: &'static [EnvAlias] = ALIASES;

    fn validate(&self) -> Result<(), ConfigError> {
        self.check().map(drop)
    }

    fn log(&self) -> &LogConfig {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().check().unwrap().len(), 9);
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let mut c = Config::default();
        c.gateway.auth.hs256_secret = Secret::new("super-secret-value-123");
        let shown = format!("{c:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(shown.contains("[redacted]"));
        c.gateway.auth.algorithm = "HS256".into();
        assert!(c.check().is_ok());
        c.gateway.auth.algorithm = "none-such".into();
        assert!(c
            .check()
            .unwrap_err()
            .to_string()
            .contains("auth.algorithm"));
    }

    #[test]
    fn reuse_port_is_off_by_default_and_valid_when_on() {
        let mut c = Config::default();
        assert!(!c.gateway.reuse_port);
        c.gateway.reuse_port = true;
        assert_eq!(c.check().is_ok(), cfg!(unix));
    }

    #[test]
    fn rejects_named_keys() {
        let mut c = Config::default();
        c.gateway.queue_capacity = 0;
        assert!(c
            .check()
            .unwrap_err()
            .to_string()
            .contains("gateway.queue_capacity"));
        let mut c = Config::default();
        c.gateway.default_symbols = vec!["BAD SYM".into()];
        assert!(c
            .check()
            .unwrap_err()
            .to_string()
            .contains("default_symbols"));
    }
}
