//! Feeds: `GET /feeds` (every producer's latest status) and, for admins,
//! `POST /feeds/{name}/stop` and `POST /feeds/{name}/start`.
//!
//! A control request stores the feed's desired state in Redis
//! (`tickstream:feed:{name}:desired`, which outlives restarts) and announces
//! it on `tickstream:feed:{name}:control`; the feed acts on it and reports in
//! its status (`tickstream:feed:{name}:status`, also published on `feeds`),
//! which this handler waits for, up to `gateway.feed_control_timeout_ms`.
//!
//! [`interest_loop`] keeps the interest leases of the symbols this gateway's
//! clients hold (`tickstream:interest`), which on-demand ingestors follow.
//!
//! Admin is either the configured `gateway.admin_token` as a bearer token or a
//! valid JWT (when `gateway.auth` is on) with `"admin": true`, `"role":
//! "admin"` or `"roles": [..."admin"...]`. Tokens are never logged.

use std::time::{Duration, Instant};

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use tickstream_bus::feeds::valid_feed_name;
use tickstream_bus::{Desired, FeedMode, FeedStatus};

use crate::client::auth::token_of;
use crate::state::AppState;

/// How often a control request re-reads the feed's status while it waits.
const POLL: Duration = Duration::from_millis(50);
/// How often the gateway renews the interest leases of the symbols its clients hold.
pub const INTEREST_RENEW: Duration = Duration::from_secs(1);
/// How often it looks for a change of those symbols, renewed at once when they change.
pub const INTEREST_SAMPLE: Duration = Duration::from_millis(100);
/// How long one renewal keeps a symbol wanted: interest ends within this of the
/// last client leaving, or of the gateway dying.
pub const INTEREST_LEASE: Duration = Duration::from_secs(3);

/// Renews a lease of [`INTEREST_LEASE`] on every symbol some local client
/// holds (`tickstream:interest`) every [`INTEREST_RENEW`], and at once (within
/// [`INTEREST_SAMPLE`]) when a symbol is added, so on-demand ingestors stream
/// what is wanted. Runs until aborted; failures are logged at debug and retried.
pub async fn interest_loop(state: web::Data<AppState>) {
    let mut ticker = tokio::time::interval(INTEREST_SAMPLE);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renewed: Option<(Vec<String>, Instant)> = None;
    loop {
        ticker.tick().await;
        let mut symbols: Vec<String> = state
            .hub
            .subscriptions_by_channel()
            .into_iter()
            .filter(|(c, _)| c.is_ticks())
            .filter_map(|(c, _)| c.symbol().map(str::to_owned))
            .collect();
        symbols.sort_unstable();
        let due = match &renewed {
            None => true,
            Some((last, at)) => {
                at.elapsed() >= INTEREST_RENEW
                    || symbols.iter().any(|s| last.binary_search(s).is_err())
            }
        };
        if !due {
            continue;
        }
        match state.redis.renew_interest(&symbols, INTEREST_LEASE).await {
            Ok(()) => renewed = Some((symbols, Instant::now())),
            Err(e) => tracing::debug!(error = %e, "Interest lease renewal failed."),
        }
    }
}

/// Now, as the REST answers write times.
fn now() -> String {
    tickstream_model::time::format(&tickstream_model::time::now_millis())
}

/// An error answer in the REST shape, with a machine-readable `code`.
fn refuse(status: StatusCode, code: &str, error: String) -> HttpResponse {
    let mut resp = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        resp.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
    }
    resp.json(json!({"success": false, "code": code, "error": error}))
}

/// `GET /feeds`: every feed that has reported within its status TTL, sorted by name.
pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    match state.redis.feed_statuses().await {
        Ok(feeds) => HttpResponse::Ok().json(json!({
            "success": true,
            "count": feeds.len(),
            "feeds": feeds,
            "timestamp": now(),
        })),
        Err(e) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "redis_unavailable",
            format!("cannot read feed statuses: {e}"),
        ),
    }
}

/// `POST /feeds/{name}/stop`: admin only; answers once the feed reports `stopped`.
pub async fn stop(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    control(&req, &state, Desired::Stopped).await
}

/// `POST /feeds/{name}/start`: admin only; answers once the feed reports it runs again.
pub async fn start(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    control(&req, &state, Desired::Running).await
}

/// Equal-length byte comparison whose time does not depend on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who is asking, as far as feed control cares.
#[derive(Debug, PartialEq, Eq)]
enum Caller {
    /// The admin token or an admin JWT.
    Admin,
    /// A valid JWT without an admin claim: 403.
    NotAdmin,
    /// No credentials, or credentials that do not verify: 401.
    Unauthenticated(&'static str),
}

/// Classifies the request's bearer token (header, or `?token=`).
fn caller(req: &HttpRequest, state: &AppState) -> Caller {
    let Some(token) = token_of(req).filter(|t| !t.is_empty()) else {
        return Caller::Unauthenticated("admin credentials required");
    };
    let admin = state.cfg.gateway.admin_token.expose();
    if !admin.is_empty() && same_secret(token.as_bytes(), admin.as_bytes()) {
        return Caller::Admin;
    }
    match &state.gate.auth {
        Some(verifier) => match verifier.verify(Some(&token)) {
            Ok(grant) if grant.admin => Caller::Admin,
            Ok(_) => Caller::NotAdmin,
            Err(failure) => {
                state
                    .metrics
                    .auth_failures
                    .with_label_values(&[failure.label()])
                    .inc();
                Caller::Unauthenticated("invalid credentials")
            }
        },
        None => Caller::Unauthenticated("invalid credentials"),
    }
}

/// Whether `status` shows the state `desired` asks for.
fn reached(status: &FeedStatus, desired: Desired) -> bool {
    match desired {
        Desired::Stopped => status.mode == FeedMode::Stopped,
        Desired::Running => status.mode != FeedMode::Stopped,
    }
}

/// Stores the desired state after the checks, then waits (bounded) for the feed to report it.
async fn control(req: &HttpRequest, state: &AppState, desired: Desired) -> HttpResponse {
    let action = match desired {
        Desired::Stopped => "stop",
        Desired::Running => "start",
    };
    let count = |outcome: &str| {
        state
            .metrics
            .feed_control
            .with_label_values(&[action, outcome])
            .inc();
    };
    match caller(req, state) {
        Caller::Admin => {}
        Caller::NotAdmin => {
            count("forbidden");
            return refuse(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this token has no admin claim".to_owned(),
            );
        }
        Caller::Unauthenticated(why) => {
            count("unauthorized");
            return refuse(StatusCode::UNAUTHORIZED, "unauthorized", why.to_owned());
        }
    }
    let name = req.match_info().get("name").unwrap_or_default().to_owned();
    if !valid_feed_name(&name) {
        count("bad_request");
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{name:?} is not a feed name ([a-z0-9_-]{{1,32}})"),
        );
    }
    match state.redis.feed_status(&name).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            count("unknown_feed");
            return refuse(
                StatusCode::NOT_FOUND,
                "unknown_feed",
                format!("no feed named {name} has reported its status (see GET /feeds)"),
            );
        }
        Err(e) => {
            count("unavailable");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "redis_unavailable",
                format!("cannot read the status of feed {name}: {e}"),
            );
        }
    }
    if let Err(e) = state.redis.set_desired_state(&name, desired).await {
        count("unavailable");
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "redis_unavailable",
            format!("cannot store the desired state of feed {name}: {e}"),
        );
    }
    tracing::info!(feed = %name, desired = desired.as_str(), "Feed control request stored.");
    let started = Instant::now();
    let timeout = Duration::from_millis(state.cfg.gateway.feed_control_timeout_ms);
    loop {
        if let Ok(Some(status)) = state.redis.feed_status(&name).await {
            if reached(&status, desired) {
                count("ok");
                let took_ms = started.elapsed().as_millis() as u64;
                tracing::info!(feed = %name, desired = desired.as_str(), took_ms, "Feed reached the desired state.");
                return HttpResponse::Ok().json(json!({
                    "success": true,
                    "desired": desired.as_str(),
                    "took_ms": took_ms,
                    "feed": status,
                }));
            }
        }
        if started.elapsed() >= timeout {
            count("timeout");
            tracing::warn!(feed = %name, desired = desired.as_str(), "Feed did not report the desired state in time.");
            return HttpResponse::build(StatusCode::GATEWAY_TIMEOUT).json(json!({
                "success": false,
                "code": "feed_timeout",
                "error": format!(
                    "feed {name} did not report {} within {} ms; the request is stored and the feed applies it when it can",
                    desired.as_str(),
                    timeout.as_millis()
                ),
                "feed": name,
                "desired": desired.as_str(),
            }));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_comparison() {
        assert!(same_secret(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!same_secret(b"0123456789abcdef", b"0123456789abcdeX"));
        assert!(!same_secret(b"0123456789abcdef", b"0123456789abcde"));
    }

    #[test]
    fn reached_follows_the_mode() {
        let mut s = FeedStatus {
            name: "sim".into(),
            status: "healthy".into(),
            mode: FeedMode::Stream,
            connected: true,
            symbols: vec![],
            can_serve: vec![],
            on_demand: false,
            last_message_age_ms: None,
            reconnects: 0,
            timestamp: now(),
        };
        assert!(reached(&s, Desired::Running));
        assert!(!reached(&s, Desired::Stopped));
        s.mode = FeedMode::Rest;
        assert!(reached(&s, Desired::Running));
        s.mode = FeedMode::Stopped;
        assert!(reached(&s, Desired::Stopped));
        assert!(!reached(&s, Desired::Running));
    }
}
