//! The shell every tickstream ingestor runs in, whatever feeds it: the
//! simulator (`services/ingest-sim`) and every venue ingestor (through
//! `tickstream-upstream`) alike.
//!
//! The shell owns the service lifecycle, written once: open the Redis handle
//! and bind the ops port ([`Shell::open`]), serve `/health` and `/metrics` and
//! write the heartbeat record the gateway reads ([`Shell::serve`]), restore the
//! per-symbol `seq` counters from Redis before the first publish
//! ([`seqs::load_retrying`]), turn SIGHUP into reload requests
//! ([`signal::Hangups`]), follow the operator's start/stop
//! ([`control::DesiredWatch`]), publish the feed status on `feeds`
//! ([`heartbeat::feed_status_loop`]), keep the status behind `/health` and the heartbeat
//! ([`CommonStatus`]), and stop it all within a bound ([`Running::stop`]).
//! What produces the ticks is the caller's.
//!
//! It is a crate of its own, not a module of `tickstream-upstream`, so that
//! Cargo enforces the direction: `tickstream-upstream` (the venue connector)
//! depends on this crate, never the reverse, and ingest-sim depends on this
//! crate alone, without the WebSocket and HTTP client stack.
//!
//! # Layout
//! - [`status`]: [`CommonStatus`], what every ingestor reports on `/health` and in its heartbeat.
//! - [`seqs`]: reading the last published seq (and cached tick) per symbol, retried until Redis answers.
//! - [`heartbeat`]: the heartbeat record's write loop and the feed status publisher.
//! - [`control`]: the feed's desired state (running/stopped) followed from Redis.
//! - [`metrics`]: [`CommonMetrics`], the gauges every ingestor exports.
//! - [`signal`]: SIGHUP as a stream of reload requests.
//! - [`Shell`] and [`Running`] (here): open, serve and stop, in that order.

#![forbid(unsafe_code)]

pub mod control;
pub mod heartbeat;
pub mod metrics;
pub mod seqs;
pub mod signal;
pub mod status;

use std::net::TcpListener;
use std::time::Duration;

use prometheus::{IntGauge, Registry};
use tickstream_bus::{BusError, FeedStatus, Heartbeat, Redis, RedisOptions};
use tickstream_runtime::config::ConfigError;
use tickstream_runtime::ops::{self, HealthFn};
use tokio::task::JoinHandle;

pub use heartbeat::{feed_status_loop, heartbeat_loop, HEARTBEAT_TTL_PERIODS};
pub use metrics::CommonMetrics;
pub use status::{Assessment, CommonStatus, Problem};

/// Why an ingestor could not run; all are start-up failures (non-zero exit).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is invalid; the message names the key.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The ops port cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// `host:port` from the configuration.
        addr: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The Redis URL is unusable.
    #[error("invalid configuration value for `redis_url`: {0}")]
    Redis(#[from] BusError),
}

/// What the shell needs from an ingestor's configuration, so every ingestor opens the same way.
#[derive(Debug, Clone)]
pub struct ShellOptions {
    /// Bind address of the ops server (`HOST`).
    pub host: String,
    /// Ops port (`PORT`; 0 picks a free one).
    pub port: u16,
    /// `REDIS_URL`.
    pub redis_url: String,
    /// `REDIS_CLUSTER_NODES`: Redis Cluster seeds; empty = one Redis at `redis_url`.
    pub redis_cluster_nodes: Vec<String>,
    /// TTL of `price:{SYMBOL}`, the ingestor's own config key.
    pub price_ttl: Duration,
    /// Upper bound on one Redis command; also bounds a publish in flight at shutdown.
    pub op_timeout: Duration,
    /// Entries kept per history stream (ticks and trades channels), the ingestor's own config key.
    pub history_len: usize,
}

/// An ingestor that has its Redis handle, metrics registry and ops port, and serves nothing yet.
///
/// Split from [`Running`] so the caller can register its metrics and build its
/// status (which reports the port actually bound) before anything is served.
pub struct Shell {
    /// The lazily connecting Redis handle; cheap to clone.
    pub redis: Redis,
    /// The registry `/metrics` exports; the caller registers its metrics here.
    pub registry: Registry,
    /// The ops port actually bound (differs from the configured one when that is 0).
    pub port: u16,
    /// The bound ops listener, served by [`Shell::serve`].
    listener: TcpListener,
    /// `host:port` as configured, for the bind error.
    addr: String,
}

impl Shell {
    /// Opens the Redis handle (no network yet), creates the registry and binds
    /// the ops port, logging `Listening.` with the real address.
    pub fn open(opts: &ShellOptions) -> Result<Shell, Error> {
        let redis = Redis::connect_lazy(RedisOptions {
            url: opts.redis_url.clone(),
            price_ttl: opts.price_ttl,
            op_timeout: opts.op_timeout,
            history_len: opts.history_len,
            cluster_nodes: opts.redis_cluster_nodes.clone(),
        })?;
        let registry = tickstream_runtime::metrics::registry();
        let addr = format!("{}:{}", opts.host, opts.port);
        let (listener, bound) = ops::bind(&opts.host, opts.port).map_err(|source| Error::Bind {
            addr: addr.clone(),
            source,
        })?;
        Ok(Shell {
            redis,
            registry,
            port: bound.port(),
            listener,
            addr,
        })
    }

    /// Starts serving `/health` (answered by `health`) and `/metrics`, and
    /// writes `record()` as the heartbeat every `heartbeat` period, with
    /// `redis_up` following Redis after each write; publishes `feed()` on the
    /// `feeds` channel when it changes and every `heartbeat` period.
    pub fn serve(
        self,
        health: HealthFn,
        heartbeat: Duration,
        redis_up: IntGauge,
        record: impl Fn() -> Heartbeat + Send + 'static,
        feed: impl Fn() -> FeedStatus + Send + 'static,
    ) -> Result<Running, Error> {
        let stopped = tickstream_runtime::metrics::register(
            &self.registry,
            tickstream_runtime::metrics::gauge_vec(
                "tickstream_ingest_feed_stopped",
                "Whether an operator has stopped this feed (1) or it runs (0).",
                &["source"],
            ),
        )
        .with_label_values(&[feed().name.as_str()]);
        let server =
            ops::serve(self.listener, self.registry, health).map_err(|source| Error::Bind {
                addr: self.addr,
                source,
            })?;
        let server_handle = server.handle();
        let server_task = tokio::spawn(server);
        let feed = tokio::spawn(feed_status_loop(self.redis.clone(), heartbeat, move || {
            let status = feed();
            stopped.set(i64::from(status.mode == tickstream_bus::FeedMode::Stopped));
            status
        }));
        let heartbeat = tokio::spawn(heartbeat_loop(self.redis, heartbeat, redis_up, record));
        Ok(Running {
            server_handle,
            server_task,
            heartbeat,
            feed,
        })
    }
}

/// A serving ingestor's ops server and heartbeat, until [`Running::stop`].
pub struct Running {
    /// Stops the ops server gracefully.
    server_handle: actix_web::dev::ServerHandle,
    /// The ops server's task.
    server_task: JoinHandle<std::io::Result<()>>,
    /// The heartbeat loop's task.
    heartbeat: JoinHandle<()>,
    /// The feed status publisher's task.
    feed: JoinHandle<()>,
}

impl Running {
    /// Stops the heartbeat at once (its record expires by itself) and gives
    /// the ops server at most `timeout` to finish its in-flight requests.
    pub async fn stop(self, timeout: Duration) {
        self.heartbeat.abort();
        self.feed.abort();
        let server_task = self.server_task;
        let handle = self.server_handle;
        let stopped = async move {
            handle.stop(true).await;
            let _ = server_task.await;
        };
        if tokio::time::timeout(timeout, stopped).await.is_err() {
            tracing::debug!("Ops server did not stop in time; exiting anyway.");
        }
    }
}
