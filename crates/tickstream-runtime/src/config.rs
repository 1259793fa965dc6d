//! Layered configuration: defaults in code < optional TOML file < environment.
//!
//! The common variables keep their plain names (`HOST`, `PORT`, `REDIS_URL`,
//! `LOG_LEVEL`, `LOG_FORMAT`, plus per-service aliases such as `SYMBOLS`);
//! every other key is reachable as `TICKSTREAM_<SECTION>__<KEY>`. A value that
//! does not fit its type stops the service at start with an error that names
//! both the key and the variable that set it.

use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::telemetry::LogConfig;

/// Env prefix for keys without a plain alias (`TICKSTREAM_GATEWAY__QUEUE_CAPACITY`).
pub const ENV_PREFIX: &str = "TICKSTREAM";
/// Env variable naming the optional TOML file (also `--config PATH`).
pub const CONFIG_PATH_ENV: &str = "TICKSTREAM_CONFIG";
/// Default bind address (`HOST`) of a service: every interface, as a container needs.
pub const DEFAULT_HOST: &str = "0.0.0.0";
/// Default `REDIS_URL` (`docs/configuration.md`: common env).
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A plain-named environment variable and the config key it sets.
#[derive(Debug, Clone, Copy)]
pub struct EnvAlias {
    /// Variable name, e.g. `PORT`.
    pub env: &'static str,
    /// Dotted config key, e.g. `port` or `sim.symbols`.
    pub key: &'static str,
    /// Comma separated list (`SYMBOLS=A,B`) rather than a scalar.
    pub list: bool,
}

impl EnvAlias {
    /// A scalar alias.
    pub const fn scalar(env: &'static str, key: &'static str) -> Self {
        Self {
            env,
            key,
            list: false,
        }
    }
    /// A comma-list alias.
    pub const fn list(env: &'static str, key: &'static str) -> Self {
        Self {
            env,
            key,
            list: true,
        }
    }
}

/// The aliases every service honours (`docs/configuration.md`: common env).
pub const COMMON_ALIASES: &[EnvAlias] = &[
    EnvAlias::scalar("HOST", "host"),
    EnvAlias::scalar("PORT", "port"),
    EnvAlias::scalar("REDIS_URL", "redis_url"),
    EnvAlias::list("REDIS_CLUSTER_NODES", "redis_cluster_nodes"),
    EnvAlias::scalar("LOG_LEVEL", "log.level"),
    EnvAlias::scalar("LOG_FORMAT", "log.format"),
];

/// A configuration problem found at start; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file is missing or malformed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file given by `--config` or `TICKSTREAM_CONFIG`.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A value does not fit its type or breaks a rule.
    #[error("invalid configuration value for `{key}`{source_hint}: {reason}")]
    Invalid {
        /// Dotted key.
        key: String,
        /// ` (from env PORT)` when an environment variable set it.
        source_hint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Any other failure of the config crate.
    #[error("invalid configuration: {0}")]
    Other(String),
}

impl ConfigError {
    /// Builds an `Invalid` error for post-deserialization checks, naming the env alias if any.
    pub fn invalid(key: &str, aliases: &[EnvAlias], reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_owned(),
            source_hint: hint_for(key, aliases),
            reason: reason.into(),
        }
    }
}

fn env_name_for(key: &str) -> String {
    format!(
        "{ENV_PREFIX}_{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

fn hint_for(key: &str, aliases: &[EnvAlias]) -> String {
    let alias = aliases
        .iter()
        .chain(COMMON_ALIASES)
        .find(|a| a.key == key && std::env::var_os(a.env).is_some())
        .map(|a| a.env.to_owned());
    match alias {
        Some(env) => format!(" (from env {env})"),
        None => {
            let env = env_name_for(key);
            if std::env::var_os(&env).is_some() {
                format!(" (from env {env})")
            } else {
                String::new()
            }
        }
    }
}

/// Every environment variable a service reads and its default, from its real config struct.
///
/// Leaves of `defaults` become `TICKSTREAM_<SECTION>__<KEY>`; aliases (plain
/// names such as `PORT`) are listed with the default of the key they set.
/// Binaries print this with `--print-env`, so docs and the deploy checks can
/// prove that compose files pass no dead or misspelt variables.
pub fn env_table<T: Serialize>(defaults: &T, aliases: &[EnvAlias]) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, child) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, child, out);
                }
            }
            leaf => out.push((prefix.to_owned(), render(leaf))),
        }
    }
    fn render(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            serde_json::Value::Array(items) => {
                items.iter().map(render).collect::<Vec<_>>().join(",")
            }
            other => other.to_string(),
        }
    }
    let mut leaves = Vec::new();
    if let Ok(v) = serde_json::to_value(defaults) {
        walk("", &v, &mut leaves);
    }
    let mut out: Vec<(String, String)> = leaves
        .iter()
        .map(|(k, v)| (env_name_for(k), v.clone()))
        .collect();
    for alias in COMMON_ALIASES.iter().chain(aliases) {
        if let Some((_, v)) = leaves.iter().find(|(k, _)| k == alias.key) {
            out.push((alias.env.to_owned(), v.clone()));
        }
    }
    out.push((CONFIG_PATH_ENV.to_owned(), String::new()));
    out.sort();
    out.dedup();
    out
}

/// Reads a comma list that may arrive as a TOML array or one string (`SYMBOLS=A,B`),
/// trimmed and without blank entries; use as `#[serde(deserialize_with = "string_or_list")]`.
pub fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    let items = match <Raw as serde::Deserialize>::deserialize(d)? {
        Raw::One(s) => s.split(',').map(str::to_owned).collect(),
        Raw::Many(v) => v,
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

/// Schemes a WebSocket URL setting may use.
pub const WS_SCHEMES: &[&str] = &["ws://", "wss://"];
/// Schemes an HTTP URL setting may use.
pub const HTTP_SCHEMES: &[&str] = &["http://", "https://"];

/// Refuses a URL setting whose scheme is not one of `schemes`, naming the key and its variable.
pub fn check_url(
    key: &str,
    url: &str,
    schemes: &[&str],
    aliases: &[EnvAlias],
) -> Result<(), ConfigError> {
    if schemes.iter().any(|s| url.starts_with(s)) {
        return Ok(());
    }
    Err(ConfigError::invalid(
        key,
        aliases,
        format!("{url:?} must start with {}", schemes.join(" or ")),
    ))
}

/// Config key of the Redis Cluster seed nodes (`REDIS_CLUSTER_NODES`); empty = one Redis at `redis_url`.
pub const REDIS_CLUSTER_NODES_KEY: &str = "redis_cluster_nodes";

/// Refuses an empty `host`, a `redis_url` that is not a Redis URL, and a malformed cluster seed, naming the key:
/// the checks every service that talks to Redis shares.
pub fn check_host_and_redis(
    host: &str,
    redis_url: &str,
    cluster_nodes: &[String],
    aliases: &[EnvAlias],
) -> Result<(), ConfigError> {
    if host.trim().is_empty() {
        return Err(ConfigError::invalid("host", aliases, "must not be empty"));
    }
    let url = redis_url.trim();
    let schemes = ["redis://", "rediss://", "unix://", "redis+unix://"];
    if !schemes.iter().any(|s| url.starts_with(s)) {
        return Err(ConfigError::invalid(
            "redis_url",
            aliases,
            format!("{url:?} is not a Redis URL; expected redis://HOST:PORT[/DB]"),
        ));
    }
    check_cluster_nodes(cluster_nodes, aliases)
}

/// Refuses a Redis Cluster seed that is not `host:port` (optionally `redis://host:port`), naming the key,
/// so a typo fails at start instead of as a connection error later.
pub fn check_cluster_nodes(nodes: &[String], aliases: &[EnvAlias]) -> Result<(), ConfigError> {
    for node in nodes {
        let bare = node.trim();
        let bare = bare
            .strip_prefix("redis://")
            .or_else(|| bare.strip_prefix("rediss://"))
            .unwrap_or(bare);
        let ok = bare.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !ok {
            return Err(ConfigError::invalid(
                REDIS_CLUSTER_NODES_KEY,
                aliases,
                format!(
                    "{node:?} is not host:port (a comma separated list of Redis Cluster seeds)"
                ),
            ));
        }
    }
    Ok(())
}

/// Prints [`env_table`] as `NAME=default` lines: what `--print-env` shows.
///
/// Stops quietly when the reader goes away (`--print-env | head`) instead of
/// panicking as `println!` would.
pub fn print_env<T: Serialize>(defaults: &T, aliases: &[EnvAlias]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for (name, default) in env_table(defaults, aliases) {
        if writeln!(out, "{name}={default}").is_err() {
            return;
        }
    }
}

/// Where the optional TOML file is: `--config` wins over `TICKSTREAM_CONFIG`.
pub fn file_from_env(cli: Option<PathBuf>) -> Option<PathBuf> {
    cli.or_else(|| std::env::var_os(CONFIG_PATH_ENV).map(PathBuf::from))
}

/// A service's whole configuration, so one `main` ([`crate::cli::main`]) can
/// print, load, validate and log any of them.
pub trait ServiceConfig: Serialize + DeserializeOwned + Default {
    /// The service's own plain-named variables (`SYMBOLS`, `BINANCE_WS_URL`), on top of [`COMMON_ALIASES`].
    const ALIASES: &'static [EnvAlias];

    /// Checks the rules types cannot express, so a bad value stops the service at start naming the key.
    fn validate(&self) -> Result<(), ConfigError>;

    /// The `[log]` section, for [`crate::telemetry::init`].
    fn log(&self) -> &LogConfig;

    /// Loads defaults < `file` < environment and validates, so the caller gets a config it can run.
    fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let config: Self = self::load(&Self::default(), file, Self::ALIASES)?;
        config.validate()?;
        Ok(config)
    }
}

/// Loads `T` from `defaults`, then the TOML `file`, then the environment.
///
/// `aliases` are the service's own plain-named variables on top of [`COMMON_ALIASES`].
pub fn load<T>(defaults: &T, file: Option<&Path>, aliases: &[EnvAlias]) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned,
{
    let defaults = Config::try_from(defaults).map_err(|e| ConfigError::Other(e.to_string()))?;
    let mut builder = Config::builder().add_source(defaults);
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::File {
                path: path.to_owned(),
                reason: "no such file".to_owned(),
            });
        }
        builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
    }
    builder = builder.add_source(
        Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .ignore_empty(true),
    );
    for alias in COMMON_ALIASES.iter().chain(aliases) {
        let Ok(raw) = std::env::var(alias.env) else {
            continue;
        };
        if raw.trim().is_empty() {
            continue;
        }
        builder = if alias.list {
            let items: Vec<String> = raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            builder.set_override(alias.key, items)
        } else {
            builder.set_override(alias.key, raw)
        }
        .map_err(|e| ConfigError::Other(e.to_string()))?;
    }
    let built = builder.build().map_err(|e| map_error(e, file, aliases))?;
    built
        .try_deserialize::<T>()
        .map_err(|e| map_error(e, file, aliases))
}

fn map_error(e: config::ConfigError, file: Option<&Path>, aliases: &[EnvAlias]) -> ConfigError {
    match e {
        config::ConfigError::Type {
            key: Some(key),
            unexpected,
            expected,
            ..
        } => ConfigError::Invalid {
            source_hint: hint_for(&key, aliases),
            key,
            reason: format!("got {unexpected}, expected {expected}"),
        },
        config::ConfigError::At {
            error,
            key: Some(key),
            ..
        } => ConfigError::Invalid {
            source_hint: hint_for(&key, aliases),
            key,
            reason: error.to_string(),
        },
        config::ConfigError::FileParse { uri, cause } => ConfigError::File {
            path: uri
                .map(PathBuf::from)
                .or_else(|| file.map(Path::to_owned))
                .unwrap_or_default(),
            reason: cause.to_string(),
        },
        other => ConfigError::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Demo {
        host: String,
        port: u16,
        redis_url: String,
        log: Log,
        sim: Section,
    }
    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Log {
        level: String,
        format: Format,
    }
    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Format {
        Pretty,
        Json,
    }
    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Section {
        rate: f64,
        symbols: Vec<String>,
    }

    fn defaults() -> Demo {
        Demo {
            host: "0.0.0.0".into(),
            port: 9100,
            redis_url: "redis://127.0.0.1:6379".into(),
            log: Log {
                level: "info".into(),
                format: Format::Pretty,
            },
            sim: Section {
                rate: 10.0,
                symbols: vec!["BTCUSDT".into()],
            },
        }
    }

    const ALIASES: &[EnvAlias] = &[EnvAlias::list("SYMBOLS", "sim.symbols")];

    #[test]
    fn check_url_names_the_key() {
        assert!(check_url("x.ws_url", "wss://a", WS_SCHEMES, ALIASES).is_ok());
        let e = check_url("x.rest_url", "ftp://a", HTTP_SCHEMES, ALIASES).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("`x.rest_url`") && e.contains("http:// or https://"),
            "{e}"
        );
    }

    #[test]
    fn cluster_seeds_must_be_host_port_and_errors_name_the_key() {
        let ok = |v: &[&str]| {
            let nodes: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
            check_cluster_nodes(&nodes, ALIASES)
        };
        assert!(ok(&[]).is_ok());
        assert!(ok(&["10.0.0.1:6379", "redis://node-2:7000", "node-3:1"]).is_ok());
        for bad in ["10.0.0.1", ":6379", "node:0", "node:99999", "node:port"] {
            let e = ok(&[bad]).unwrap_err().to_string();
            assert!(
                e.contains("`redis_cluster_nodes`") && e.contains(bad),
                "{e}"
            );
        }
    }

    #[test]
    fn lists_arrive_as_arrays_or_comma_strings() {
        #[derive(Debug, Deserialize)]
        struct L {
            #[serde(deserialize_with = "string_or_list")]
            symbols: Vec<String>,
        }
        let one: L = serde_json::from_value(serde_json::json!({"symbols": " A, B,,"})).unwrap();
        assert_eq!(one.symbols, ["A", "B"]);
        let many: L = serde_json::from_value(serde_json::json!({"symbols": [" A ", ""]})).unwrap();
        assert_eq!(many.symbols, ["A"]);
    }

    #[test]
    fn env_table_lists_aliases_and_prefixed_keys() {
        let t = env_table(&defaults(), ALIASES);
        let get = |n: &str| t.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("PORT"), Some("9100"));
        assert_eq!(get("TICKSTREAM_PORT"), Some("9100"));
        assert_eq!(get("SYMBOLS"), Some("BTCUSDT"));
        assert_eq!(get("TICKSTREAM_SIM__RATE"), Some("10.0"));
        assert_eq!(get("TICKSTREAM_LOG__FORMAT"), Some("pretty"));
        assert_eq!(get("LOG_LEVEL"), Some("info"));
        assert_eq!(get("TICKSTREAM_CONFIG"), Some(""));
        assert_eq!(get("NOT_A_VAR"), None);
    }

    // Environment is process-global: run every env scenario in one test, in sequence.
    #[test]
    fn layering_and_errors() {
        let dir = std::env::temp_dir().join(format!("tickstream-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "port = 9200\n[sim]\nrate = 5.5\n").unwrap();

        let c = load(&defaults(), None, ALIASES).unwrap();
        assert_eq!(c, defaults());

        let c = load(&defaults(), Some(&file), ALIASES).unwrap();
        assert_eq!(c.port, 9200);
        assert_eq!(c.sim.rate, 5.5);

        std::env::set_var("PORT", "9300");
        std::env::set_var("SYMBOLS", "AAPL, MSFT");
        std::env::set_var("TICKSTREAM_SIM__RATE", "7");
        std::env::set_var("LOG_FORMAT", "json");
        let c = load(&defaults(), Some(&file), ALIASES).unwrap();
        assert_eq!(c.port, 9300);
        assert_eq!(c.sim.symbols, vec!["AAPL", "MSFT"]);
        assert_eq!(c.sim.rate, 7.0);
        assert_eq!(c.log.format, Format::Json);

        std::env::set_var("PORT", "not-a-port");
        let e = load(&defaults(), None, ALIASES).unwrap_err().to_string();
        assert!(e.contains("`port`") && e.contains("PORT"), "{e}");
        std::env::set_var("PORT", "70000");
        let e = load(&defaults(), None, ALIASES).unwrap_err().to_string();
        assert!(e.contains("port"), "{e}");
        std::env::remove_var("PORT");

        std::env::set_var("LOG_FORMAT", "xml");
        let e = load(&defaults(), None, ALIASES).unwrap_err().to_string();
        assert!(e.contains("log.format") || e.contains("format"), "{e}");
        std::env::remove_var("LOG_FORMAT");

        std::env::set_var("TICKSTREAM_SIM__RATE", "fast");
        let e = load(&defaults(), None, ALIASES).unwrap_err().to_string();
        assert!(
            e.contains("sim.rate") && e.contains("TICKSTREAM_SIM__RATE"),
            "{e}"
        );
        std::env::remove_var("TICKSTREAM_SIM__RATE");
        std::env::remove_var("SYMBOLS");

        std::fs::write(&file, "port = [").unwrap();
        let e = load(&defaults(), Some(&file), ALIASES)
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.toml"), "{e}");
        let e = load(&defaults(), Some(&dir.join("missing.toml")), ALIASES)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.toml"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
