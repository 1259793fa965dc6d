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
    let listener = TcpListener::bind((host, port))?;
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
