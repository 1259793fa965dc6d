//! Binds, serves and drains: the gateway's process lifecycle in one place.
//!
//! [`run`] builds the shared state (Redis, hub, subscriber, limits), binds the
//! port, serves HTTP and WebSocket upgrades on actix workers until the
//! shutdown future resolves, then stops listening, tells every connection to
//! close (native 1001, Socket.IO Engine.IO close) and waits for them under
//! `gateway.shutdown_grace_secs`.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::rc::Rc;

use actix_http::HttpService;
use actix_service::{
    fn_factory, fn_service, map_config, IntoServiceFactory, ServiceFactory, ServiceFactoryExt,
};
use actix_web::dev::AppConfig;
use actix_web::{web, App};
use tickstream_bus::{Redis, RedisOptions, Subscriber};
use tickstream_runtime::config::ConfigError;
use tokio::sync::watch;

use crate::client::{auth, limits};
use crate::config::{Config, ALIASES};
use crate::fanout::Hub;
use crate::metrics::GatewayMetrics;
use crate::state::{AppState, Rates};
use crate::websocket::upgrade;
use crate::{feeds, native, rest, socketio};

/// CORS for the REST endpoints: `gateway.allowed_origins`, or any origin when the list is empty.
pub fn rest_cors(allowed_origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "OPTIONS"])
        .allow_any_header()
        .max_age(3600);
    if allowed_origins.is_empty() {
        cors = cors.allow_any_origin().send_wildcard();
    } else {
        for origin in allowed_origins {
            cors = cors.allowed_origin(origin);
        }
    }
    cors
}

/// Registers every route; REST gets CORS for `allowed_origins` (WebSocket and Engine.IO check origins themselves).
pub fn routes(cfg: &mut web::ServiceConfig, allowed_origins: &[String]) {
    let socketio = || {
        web::route()
            .guard(
                actix_web::guard::Any(actix_web::guard::Get())
                    .or(actix_web::guard::Post())
                    .or(actix_web::guard::Options()),
            )
            .to(socketio::route)
    };
    cfg.configure(crate::dashboard::configure)
        .route("/ws", web::get().to(native::route))
        // The Vue plain-WebSocket client's streams (`crate::compat::streams`).
        .route(
            "/ws/market/stream",
            web::get().to(crate::compat::streams::market),
        )
        .route(
            "/ws/trading/signals/stream",
            web::get().to(crate::compat::streams::signals),
        )
        .route(
            "/ws/trading/binary/stream",
            web::get().to(crate::compat::streams::binary),
        )
        .route("/socket.io/", socketio())
        .route("/socket.io", socketio())
        .service(
            web::scope("")
                .wrap(rest_cors(allowed_origins))
                .route("/health", web::get().to(rest::health))
                .route("/stats", web::get().to(rest::stats))
                .route("/symbols", web::get().to(rest::symbols))
                .route("/prices", web::get().to(rest::prices))
                .route("/price/{symbol:.+}", web::get().to(rest::price))
                .route("/history/{symbol:.+}", web::get().to(rest::history))
                .route("/trades/{symbol:.+}", web::get().to(rest::trades))
                .route("/candles/{symbol:.+}", web::get().to(rest::candles))
                .route("/signals/{symbol:.+}", web::get().to(rest::signal))
                .route("/sentiment", web::get().to(rest::sentiment))
                .route("/feeds", web::get().to(feeds::list))
                .route("/feeds/{name}/stop", web::post().to(feeds::stop))
                .route("/feeds/{name}/start", web::post().to(feeds::start))
                .route("/metrics", web::get().to(rest::metrics)),
        );
}

/// Runs the gateway until `shutdown` resolves, then closes every client (native: 1001; Socket.IO: Engine.IO close) and exits.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "Starting gateway.");
    let default_symbols = cfg.check()?;
    let redis = Redis::connect_lazy(RedisOptions {
        cluster_nodes: cfg.redis_cluster_nodes.clone(),
        ..RedisOptions::new(cfg.redis_url.clone())
    })
    .map_err(|e| {
        let key = if cfg.redis_cluster_nodes.is_empty() {
            "redis_url"
        } else {
            "redis_cluster_nodes"
        };
        ConfigError::invalid(key, ALIASES, e.to_string())
    })?;
    let auth = auth::Verifier::from_config(&cfg.gateway.auth)?;
    let limiter = limits::ConnLimiter::new(
        cfg.gateway.max_connections,
        cfg.gateway.max_connections_per_ip,
    );
    let metrics = GatewayMetrics::new();
    let metrics_for_gate = metrics.clone();
    let cfg_origins = cfg.gateway.allowed_origins.clone();
    let hub = Arc::new(Hub::new(metrics.clone()));
    // One Redis: one pub/sub connection; Redis Cluster: sharded pub/sub on each slot's master.
    let subscriber = Subscriber::spawn_for(&redis, hub.clone());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (listener, addr) = bind(&cfg.host, cfg.port, cfg.gateway.reuse_port)?;
    // Kept to stop listening at shutdown while connections drain (actix only closes it at the end).
    let listening = listener
        .try_clone()
        .map_err(|e| anyhow::anyhow!("cannot keep a handle on {addr} for shutdown: {e}"))?;

    let workers = match cfg.gateway.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let grace = Duration::from_secs(cfg.gateway.shutdown_grace_secs);
    let state = web::Data::new(AppState {
        served: Default::default(),
        cfg,
        default_symbols,
        port: addr.port(),
        hub,
        subscriber,
        redis,
        metrics,
        started: Instant::now(),
        shutdown: shutdown_rx,
        rates: Rates::default(),
        socketio: socketio::Sessions::default(),
        gate: limits::Gate {
            allowed_origins: cfg_origins,
            auth,
            limiter,
            metrics: metrics_for_gate,
        },
    });
    if state.gate.auth.is_some() {
        tracing::info!(algorithm = %state.cfg.gateway.auth.algorithm, "JWT authentication is on.");
    }
    let sampler = tokio::spawn(sample(state.clone()));
    let interest = tokio::spawn(feeds::interest_loop(state.clone()));

    // A client that stops reading is cut as a slow consumer; if it does not
    // read our close frame either, its socket is reset once it has taken no
    // bytes this long (else it would hold the socket and its buffers forever).
    let stall_limit = Duration::from_millis(state.cfg.gateway.slow_consumer_timeout_ms)
        + native::conn::CLOSE_TIMEOUT
        + Duration::from_secs(1);
    let app_state = state.clone();
    let origins = state.cfg.gateway.allowed_origins.clone();
    let make_app = move || {
        let origins = origins.clone();
        App::new()
            .app_data(app_state.clone())
            .configure(move |c| routes(c, &origins))
    };
    let server = actix_server::Server::build()
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(grace.as_secs())
        .listen("gateway", listener, move || {
            let upgrade_app = make_app.clone();
            HttpService::build()
                // Ticks are small writes: without this, Nagle holds each one back
                // until the client's (delayed) ACK of the previous one, up to 40 ms.
                .tcp_nodelay(true)
                .upgrade(fn_factory(move || {
                    // The same routes, called by `upgrade::serve` for WebSocket upgrades.
                    let app = upgrade_app().into_factory();
                    async move {
                        let app = Rc::new(app.new_service(AppConfig::default()).await?);
                        Ok::<_, ()>(fn_service(move |(req, framed)| {
                            // A task of its own: the dispatcher's (2.5 KB, sized for
                            // any HTTP request) ends here instead of idling beside it.
                            actix_web::rt::spawn(upgrade::serve(
                                app.clone(),
                                req,
                                framed,
                                stall_limit,
                            ));
                            std::future::ready(Ok::<_, actix_web::Error>(()))
                        }))
                    }
                }))
                .finish(map_config(
                    make_app().into_factory().map_err(|e| e.error_response()),
                    |()| AppConfig::default(),
                ))
                .tcp()
        })?
        .run();
    let handle = server.handle();
    let mut server_task = tokio::spawn(server);

    tokio::select! {
        _ = shutdown => {}
        res = &mut server_task => {
            sampler.abort();
            interest.abort();
            res??;
            return Ok(());
        }
    }
    stop_listening(&handle, &listening).await;
    tracing::info!("Shutting down: closing client connections.");
    let _ = shutdown_tx.send(true);
    let drained = tokio::time::timeout(grace, async {
        while state.connections() > 0 || !state.socketio.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("Grace period over with connections still open; stopping anyway.");
    }
    handle.stop(true).await;
    sampler.abort();
    interest.abort();
    let _ = server_task.await;
    tracing::info!("Stopped.");
    Ok(())
}

/// Stops taking connections before the drain: the accept loop pauses, then
/// the socket leaves the listening state (`shutdown(SHUT_RD)` on a listener,
/// Linux), so the kernel stops queueing connections for this process.
/// With `gateway.reuse_port` new clients go to the replicas still running
/// instead of being accepted here only to get 1001; alone, they are refused at
/// once and a load balancer or client retry moves on.
async fn stop_listening(handle: &actix_server::ServerHandle, listener: &TcpListener) {
    handle.pause().await;
    match socket2::SockRef::from(listener).shutdown(std::net::Shutdown::Read) {
        Ok(()) => tracing::info!("Stopped accepting connections."),
        Err(e) => tracing::warn!(error = %e, "Could not stop listening; accepting until exit."),
    }
}

/// Binds the listening socket: plainly (a second process on the port fails), or with SO_REUSEPORT
/// (`gateway.reuse_port`) so that several gateway processes on one host share the port.
fn bind(host: &str, port: u16, reuse_port: bool) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let bound = if reuse_port {
        tickstream_runtime::ops::bind_reuse_port(host, port)
    } else {
        tickstream_runtime::ops::bind(host, port)
    };
    bound.map_err(|e| {
        let hint = match (e.kind(), reuse_port) {
            (std::io::ErrorKind::AddrInUse, false) => {
                "; another process holds this port (to run several gateways on one port, set \
                 gateway.reuse_port = true, env TICKSTREAM_GATEWAY__REUSE_PORT=true, in every one of them)"
            }
            (std::io::ErrorKind::AddrInUse, true) => {
                "; the process holding this port did not set SO_REUSEPORT (gateway.reuse_port) \
                 or runs as another user"
            }
            _ => "",
        };
        anyhow::anyhow!("cannot listen on {host}:{port}: {e}{hint}")
    })
}

/// Once a second: per-second rates for `/stats` and Redis gauges for `/metrics`.
async fn sample(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let (mut last_ticks, mut last_msgs, mut last_reconnects) = (0u64, 0u64, 0u64);
    let mut last_at = Instant::now();
    loop {
        tick.tick().await;
        let m = &state.metrics;
        let (ticks, msgs) = (m.ticks_received.get(), m.messages_sent.get());
        let secs = last_at.elapsed().as_secs_f64().max(1e-3);
        state.rates.set(
            (ticks - last_ticks) as f64 / secs,
            (msgs - last_msgs) as f64 / secs,
        );
        (last_ticks, last_msgs, last_at) = (ticks, msgs, Instant::now());
        let health = state.redis.health();
        m.redis_up.set(i64::from(health.is_up()));
        let reconnects = health.reconnects();
        m.redis_reconnects
            .inc_by(reconnects.saturating_sub(last_reconnects));
        last_reconnects = reconnects;
    }
}
