//! The configuration of an upstream ingestor, written once: the common keys,
//! the venue's own section and the shared `[upstream]` timings, loaded
//! defaults in code < optional TOML file < environment.
//!
//! ```toml
//! host = "0.0.0.0"                      # HOST
//! port = 9101                           # PORT (the venue's VenueConfig::DEFAULT_PORT)
//! redis_url = "redis://127.0.0.1:6379"  # REDIS_URL
//!
//! [log]
//! level = "info"                        # LOG_LEVEL
//! format = "pretty"                     # LOG_FORMAT = pretty | json
//!
//! [binance]                             # the venue's section (VenueConfig::NAME), TICKSTREAM_BINANCE__<KEY>
//! symbols = ["btcusdt", "ethusdt"]
//!
//! [upstream]                            # TICKSTREAM_UPSTREAM__<KEY>, see [`crate::settings`]
//! stall_timeout_ms = 60000
//! ```
//!
//! A venue supplies only its section (a [`VenueConfig`]); [`IngestorConfig`]
//! adds the rest, and is a [`ServiceConfig`], so the shared `main`
//! (`tickstream_runtime::cli::main`) can print, load and validate it.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tickstream_ingest_shell::ShellOptions;
use tickstream_runtime::config::{
    ConfigError, EnvAlias, ServiceConfig, DEFAULT_HOST, DEFAULT_REDIS_URL,
};
use tickstream_runtime::telemetry::LogConfig;

use crate::settings::UpstreamSettings;
use crate::venue::Venue;

/// Upper bound on one Redis command of a venue ingestor.
pub const REDIS_OP_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the service listens and which Redis it uses (the common config keys).
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Bind address (`HOST`).
    pub host: String,
    /// Ops port (`PORT`; 0 picks a free one).
    pub port: u16,
    /// `REDIS_URL`.
    pub redis_url: String,
    /// `REDIS_CLUSTER_NODES`: Redis Cluster seeds; empty = one Redis at `redis_url`.
    pub redis_cluster_nodes: Vec<String>,
    /// The `[upstream]` section.
    pub settings: UpstreamSettings,
}

impl ServiceOptions {
    /// What the shared shell opens: the ops port and Redis, with the `[upstream]` price TTL.
    pub fn shell(&self) -> ShellOptions {
        ShellOptions {
            host: self.host.clone(),
            port: self.port,
            redis_url: self.redis_url.clone(),
            redis_cluster_nodes: self.redis_cluster_nodes.clone(),
            price_ttl: Duration::from_secs(self.settings.price_ttl_secs),
            op_timeout: REDIS_OP_TIMEOUT,
            history_len: self.settings.history_len,
        }
    }
}

/// A venue's own config section (`[binance]`), the only part of the
/// configuration a new upstream writes.
pub trait VenueConfig: Default + Serialize + DeserializeOwned {
    /// The section's name: `[binance]` in TOML, `TICKSTREAM_BINANCE__<KEY>` in the environment.
    const NAME: &'static str;
    /// The ops port the ingestor listens on by default; each ingestor has its own (see the README).
    const DEFAULT_PORT: u16;
    /// The venue's plain-named variables (`SYMBOLS`, `BINANCE_WS_URL`), on top of the common ones.
    const ALIASES: &'static [EnvAlias];
    /// The venue this section configures.
    type Venue: Venue;

    /// Rejects values of the section that cannot work, naming the key.
    fn validate(&self) -> Result<(), ConfigError>;

    /// The venue for a validated section.
    fn build(&self) -> Result<Self::Venue, ConfigError>;
}

/// Everything an upstream ingestor reads at start.
///
/// (De)serialized as a flat table whose venue section is named by
/// [`VenueConfig::NAME`], so the file and variables read exactly as if each
/// venue had written the struct itself.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestorConfig<S> {
    /// Address of the ops server (`/health`, `/metrics`).
    pub host: String,
    /// Port of the ops server; 0 picks a free one (tests).
    pub port: u16,
    /// Where ticks are published.
    pub redis_url: String,
    /// Redis Cluster seed nodes (`REDIS_CLUSTER_NODES`); empty = one Redis at `redis_url`.
    pub redis_cluster_nodes: Vec<String>,
    /// Log level and format.
    pub log: LogConfig,
    /// The venue's endpoints, keys and symbols.
    pub venue: S,
    /// Shared reconnect/stall/fallback timings.
    pub upstream: UpstreamSettings,
}

impl<S: VenueConfig> Default for IngestorConfig<S> {
    fn default() -> Self {
        Self {
            host: DEFAULT_HOST.to_owned(),
            port: S::DEFAULT_PORT,
            redis_url: DEFAULT_REDIS_URL.to_owned(),
            redis_cluster_nodes: Vec::new(),
            log: LogConfig::default(),
            venue: S::default(),
            upstream: UpstreamSettings::default(),
        }
    }
}

impl<S> IngestorConfig<S> {
    /// Where the service listens, which Redis it uses and its timings, for [`crate::run`].
    pub fn options(&self) -> ServiceOptions {
        ServiceOptions {
            host: self.host.clone(),
            port: self.port,
            redis_url: self.redis_url.clone(),
            redis_cluster_nodes: self.redis_cluster_nodes.clone(),
            settings: self.upstream.clone(),
        }
    }
}

impl<S: VenueConfig> ServiceConfig for IngestorConfig<S> {
    const ALIASES: &'static [EnvAlias] = S::ALIASES;

    fn validate(&self) -> Result<(), ConfigError> {
        self.upstream.validate(S::ALIASES)?;
        tickstream_runtime::config::check_cluster_nodes(&self.redis_cluster_nodes, S::ALIASES)?;
        self.venue.validate()
    }

    fn log(&self) -> &LogConfig {
        &self.log
    }
}

impl<S: VenueConfig> Serialize for IngestorConfig<S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let mut table = serializer.serialize_struct("IngestorConfig", 7)?;
        table.serialize_field("host", &self.host)?;
        table.serialize_field("port", &self.port)?;
        table.serialize_field("redis_url", &self.redis_url)?;
        table.serialize_field("redis_cluster_nodes", &self.redis_cluster_nodes)?;
        table.serialize_field("log", &self.log)?;
        table.serialize_field(S::NAME, &self.venue)?;
        table.serialize_field("upstream", &self.upstream)?;
        table.end()
    }
}

impl<'de, S: VenueConfig> Deserialize<'de> for IngestorConfig<S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TableVisitor(PhantomData))
    }
}

/// `redis_cluster_nodes` as a TOML list or one comma separated string (`REDIS_CLUSTER_NODES=a:1,b:2`).
struct ClusterNodes(Vec<String>);

impl<'de> Deserialize<'de> for ClusterNodes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        tickstream_runtime::config::string_or_list(d).map(ClusterNodes)
    }
}

/// Reads the flat table; each value is read through the map, so the config
/// crate's errors keep naming the key (`binance.symbols`, `upstream.stall_timeout_ms`).
struct TableVisitor<S>(PhantomData<S>);

impl<'de, S: VenueConfig> Visitor<'de> for TableVisitor<S> {
    type Value = IngestorConfig<S>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an ingestor configuration with a [{}] section", S::NAME)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut host, mut port, mut redis_url, mut log, mut venue, mut upstream) =
            (None, None, None, None, None, None);
        let mut redis_cluster_nodes = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "host" => host = Some(map.next_value()?),
                "port" => port = Some(map.next_value()?),
                "redis_url" => redis_url = Some(map.next_value()?),
                "redis_cluster_nodes" => {
                    redis_cluster_nodes = map.next_value::<ClusterNodes>()?.0;
                }
                "log" => log = Some(map.next_value()?),
                "upstream" => upstream = Some(map.next_value()?),
                name if name == S::NAME => venue = Some(map.next_value()?),
                // Unknown keys are ignored, as a derived struct would (`TICKSTREAM_CONFIG` lands here).
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(IngestorConfig {
            host: host.ok_or_else(|| de::Error::missing_field("host"))?,
            port: port.ok_or_else(|| de::Error::missing_field("port"))?,
            redis_url: redis_url.ok_or_else(|| de::Error::missing_field("redis_url"))?,
            redis_cluster_nodes,
            log: log.ok_or_else(|| de::Error::missing_field("log"))?,
            venue: venue.ok_or_else(|| de::Error::missing_field(S::NAME))?,
            upstream: upstream.ok_or_else(|| de::Error::missing_field("upstream"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use tickstream_model::Symbol;
    use tickstream_runtime::config::{env_table, load};

    use super::*;
    use crate::venue::{ParseError, WsConnection, WsEvent};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct DemoSection {
        ws_url: String,
        rate: u32,
        symbols: Vec<String>,
    }

    impl Default for DemoSection {
        fn default() -> Self {
            Self {
                ws_url: "wss://demo.example".into(),
                rate: 5,
                symbols: vec!["AAA".into()],
            }
        }
    }

    struct DemoVenue;

    impl Venue for DemoVenue {
        fn name(&self) -> &'static str {
            "demo"
        }
        fn symbols(&self) -> Vec<Symbol> {
            Vec::new()
        }
        fn connections(&self) -> Vec<WsConnection> {
            Vec::new()
        }
        fn parse(&self, _text: &str) -> Result<WsEvent, ParseError> {
            Ok(WsEvent::Control)
        }
    }

    const ALIASES: &[EnvAlias] = &[EnvAlias::list("DEMO_SYMBOLS", "demo.symbols")];

    impl VenueConfig for DemoSection {
        const NAME: &'static str = "demo";
        const DEFAULT_PORT: u16 = 9199;
        const ALIASES: &'static [EnvAlias] = ALIASES;
        type Venue = DemoVenue;

        fn validate(&self) -> Result<(), ConfigError> {
            if self.rate == 0 {
                return Err(ConfigError::invalid("demo.rate", ALIASES, "must be > 0"));
            }
            Ok(())
        }

        fn build(&self) -> Result<DemoVenue, ConfigError> {
            Ok(DemoVenue)
        }
    }

    type Demo = IngestorConfig<DemoSection>;

    #[test]
    fn the_section_is_named_by_the_venue() {
        let t = env_table(&Demo::default(), ALIASES);
        let get = |n: &str| t.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("PORT"), Some("9199"));
        assert_eq!(get("HOST"), Some("0.0.0.0"));
        assert_eq!(get("REDIS_URL"), Some("redis://127.0.0.1:6379"));
        assert_eq!(get("TICKSTREAM_DEMO__WS_URL"), Some("wss://demo.example"));
        assert_eq!(get("DEMO_SYMBOLS"), Some("AAA"));
        assert_eq!(get("TICKSTREAM_UPSTREAM__STALL_TIMEOUT_MS"), Some("60000"));
        let json = serde_json::to_value(Demo::default()).unwrap();
        let back: Demo = serde_json::from_value(json).unwrap();
        assert_eq!(back, Demo::default());
    }

    // Environment is process-global: every env scenario in one test, in sequence.
    #[test]
    fn loads_file_and_env_and_errors_name_the_key() {
        let dir = std::env::temp_dir().join(format!("tickstream-upstream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("demo.toml");
        std::fs::write(
            &file,
            "port = 9300\nunknown = 1\n[demo]\nrate = 7\n[upstream]\nstall_timeout_ms = 900\n",
        )
        .unwrap();
        let c = Demo::load(Some(&file)).unwrap();
        assert_eq!((c.port, c.venue.rate), (9300, 7));
        assert_eq!(c.upstream.stall_timeout_ms, 900);
        assert_eq!(c.venue.ws_url, "wss://demo.example");

        std::env::set_var("DEMO_SYMBOLS", "X, Y");
        std::env::set_var("TICKSTREAM_DEMO__RATE", "8");
        let c = Demo::load(Some(&file)).unwrap();
        assert_eq!(c.venue.symbols, ["X", "Y"]);
        assert_eq!(c.venue.rate, 8);

        std::env::set_var("TICKSTREAM_DEMO__RATE", "fast");
        let e = load(&Demo::default(), None, ALIASES)
            .unwrap_err()
            .to_string();
        assert!(e.contains("demo.rate"), "{e}");
        std::env::set_var("TICKSTREAM_DEMO__RATE", "0");
        let e = Demo::load(None).unwrap_err().to_string();
        assert!(e.contains("`demo.rate`"), "{e}");
        std::env::remove_var("TICKSTREAM_DEMO__RATE");
        std::env::set_var("TICKSTREAM_UPSTREAM__STALL_TIMEOUT_MS", "soon");
        let e = Demo::load(None).unwrap_err().to_string();
        assert!(e.contains("upstream.stall_timeout_ms"), "{e}");
        std::env::set_var("TICKSTREAM_UPSTREAM__STALL_TIMEOUT_MS", "0");
        let e = Demo::load(None).unwrap_err().to_string();
        assert!(e.contains("`upstream.stall_timeout_ms`"), "{e}");
        std::env::remove_var("TICKSTREAM_UPSTREAM__STALL_TIMEOUT_MS");
        std::env::remove_var("DEMO_SYMBOLS");
        std::fs::remove_dir_all(&dir).ok();
    }
}
