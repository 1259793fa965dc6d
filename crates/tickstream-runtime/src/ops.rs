//! Binding and the small `/health` + `/metrics` server every ingestor reuses.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};
use prometheus::Registry;

use crate::health::HealthStatus;

/// What a service says about itself: the status word and the JSON body of `/health`.
pub type HealthFn = Arc<dyn Fn() -> (HealthStatus, serde_json::Value) + Send + Sync>;

/// Binds `host:port` (port 0 picks a free one) and logs the `Listening.` line
/// with the real address, which scripts and tests wait for.
pub fn bind(host: &str, port: u16) -> std::io::Result<(TcpListener, SocketAddr)> {
    listening(TcpListener::bind((host, port))?)
}

/// Backlog of a [`bind_reuse_port`] listener: 128, what `TcpListener::bind` passes to
/// listen(2), so sharing the port is the only difference from [`bind`].
const REUSE_PORT_BACKLOG: i32 = 128;

/// [`bind`] with SO_REUSEPORT set before bind(2), so several processes on one host can
/// share the port; the kernel spreads new connections over them by hashing addresses.
#[cfg(unix)]
pub fn bind_reuse_port(host: &str, port: u16) -> std::io::Result<(TcpListener, SocketAddr)> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::net::ToSocketAddrs;
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        let attempt = (|| {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            // As std does on Unix: a restart may rebind while old connections sit in TIME_WAIT.
            socket.set_reuse_address(true)?;
            socket.set_reuse_port(true)?;
            socket.bind(&addr.into())?;
            socket.listen(REUSE_PORT_BACKLOG)?;
            Ok::<TcpListener, std::io::Error>(socket.into())
        })();
        match attempt {
            Ok(listener) => return listening(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the host resolves to no address",
        )
    }))
}

/// SO_REUSEPORT is Unix-only: elsewhere sharing a port is refused.
#[cfg(not(unix))]
pub fn bind_reuse_port(_host: &str, _port: u16) -> std::io::Result<(TcpListener, SocketAddr)> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "SO_REUSEPORT is only available on Unix",
    ))
}

/// Logs the `Listening.` line for a bound listener: the one place its wording lives.
fn listening(listener: TcpListener) -> std::io::Result<(TcpListener, SocketAddr)> {
    let addr = listener.local_addr()?;
    tracing::info!(addr = %addr, "Listening.");
    Ok((listener, addr))
}

/// HTTP code for a health status: 503 unless the service can serve.
pub fn health_code(status: HealthStatus) -> actix_web::http::StatusCode {
    match status {
        HealthStatus::Healthy => actix_web::http::StatusCode::OK,
        HealthStatus::Degraded | HealthStatus::Unhealthy => {
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// Prometheus exposition response.
pub fn metrics_response(registry: &Registry) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::encode(registry))
}

/// Serves `/health` and `/metrics` on `listener` with one worker; the caller awaits or spawns it.
pub fn serve(
    listener: TcpListener,
    registry: Registry,
    health: HealthFn,
) -> std::io::Result<actix_web::dev::Server> {
    let registry = web::Data::new(registry);
    let health = web::Data::new(health);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(registry.clone())
            .app_data(health.clone())
            .route(
                "/metrics",
                web::get().to(|r: web::Data<Registry>| async move { metrics_response(&r) }),
            )
            .route(
                "/health",
                web::get().to(|h: web::Data<HealthFn>| async move {
                    let (status, body) = (h.get_ref())();
                    HttpResponse::build(health_code(status)).json(body)
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(2)
    .listen(listener)?
    .run();
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn reuse_port_listeners_share_a_port_and_a_plain_one_is_refused() {
        let (a, addr) = bind_reuse_port("127.0.0.1", 0).unwrap();
        let (b, addr_b) = bind_reuse_port("127.0.0.1", addr.port()).unwrap();
        assert_eq!(addr, addr_b);
        let err = bind("127.0.0.1", addr.port()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        drop((a, b));
    }

    #[tokio::test]
    async fn serves_health_and_metrics() {
        let registry = crate::metrics::registry();
        let counter = crate::metrics::register(
            &registry,
            prometheus::IntCounter::new("tickstream_test_things_total", "Things.").unwrap(),
        );
        counter.inc();
        let health: HealthFn = Arc::new(|| {
            (
                HealthStatus::Unhealthy,
                serde_json::json!({"status": "unhealthy", "message": "FINNHUB_API_KEY is not set"}),
            )
        });
        let (listener, addr) = bind("127.0.0.1", 0).unwrap();
        let server = serve(listener, registry, health).unwrap();
        let handle = server.handle();
        tokio::spawn(server);
        let body = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.contains("tickstream_test_things_total 1"), "{body}");
        let r = reqwest::get(format!("http://{addr}/health")).await.unwrap();
        assert_eq!(r.status().as_u16(), 503);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["status"], "unhealthy");
        handle.stop(true).await;
    }
}
