//! Admission of new connections, before any upgrade or handshake: origin, auth, connection limits.
//!
//! One function, [`Gate::admit`], serves `/ws` and the Engine.IO handshake, so
//! both protocols refuse the same way: 403 for a browser origin not in
//! `gateway.allowed_origins`, 401 for a bad token (when auth is on and the
//! token came with the request), 429 past `gateway.max_connections` or
//! `gateway.max_connections_per_ip`. Every refusal is JSON
//! `{"success":false,"error":...,"code":...}` and counted in
//! `tickstream_gateway_connections_rejected_total{reason}`.
//!
//! An admitted connection holds a [`ConnPermit`] for its whole life; the slot
//! is released when the permit drops, whichever way the connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::auth::{Grant, Verifier};
use crate::metrics::GatewayMetrics;

/// Open connections, in total and per peer IP.
#[derive(Debug)]
pub struct ConnLimiter {
    /// `gateway.max_connections` (0 = unlimited).
    max_total: usize,
    /// `gateway.max_connections_per_ip` (0 = unlimited, and then no map is kept).
    max_per_ip: usize,
    /// Connections holding a permit.
    total: AtomicUsize,
    /// Permits per IP; locked only when a connection opens or closes, never per tick.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a connection was refused by the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitError {
    /// `max_connections` reached.
    Total,
    /// `max_connections_per_ip` reached for this IP.
    PerIp,
}

impl ConnLimiter {
    /// A limiter with the configured maxima (0 = unlimited).
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_ip,
            total: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for a connection from `ip`, or says which limit is reached.
    pub fn acquire(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<ConnPermit, LimitError> {
        let total = self.total.fetch_add(1, Ordering::AcqRel) + 1;
        if self.max_total > 0 && total > self.max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(LimitError::Total);
        }
        let ip = if self.max_per_ip > 0 { ip } else { None };
        if let Some(addr) = ip {
            let Ok(mut map) = self.per_ip.lock() else {
                self.total.fetch_sub(1, Ordering::AcqRel);
                return Err(LimitError::PerIp);
            };
            let n = map.entry(addr).or_insert(0);
            if *n >= self.max_per_ip {
                drop(map);
                self.total.fetch_sub(1, Ordering::AcqRel);
                return Err(LimitError::PerIp);
            }
            *n += 1;
        }
        Ok(ConnPermit {
            limiter: self.clone(),
            ip,
        })
    }

    /// Connections currently holding a permit.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

/// One connection's slot; released on drop.
#[derive(Debug)]
pub struct ConnPermit {
    /// Where the slot is returned.
    limiter: Arc<ConnLimiter>,
    /// The IP counted per-IP (None when per-IP limits are off).
    ip: Option<IpAddr>,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.limiter.total.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.ip {
            if let Ok(mut map) = self.limiter.per_ip.lock() {
                if let Some(n) = map.get_mut(&ip) {
                    *n -= 1;
                    if *n == 0 {
                        map.remove(&ip);
                    }
                }
            }
        }
    }
}

/// What an admitted connection carries into its session.
#[derive(Debug)]
pub struct Admission {
    /// The connection-limit slot.
    pub permit: ConnPermit,
    /// What the request's token grants: `Some` when auth is on and a token came with the request.
    pub grant: Option<Grant>,
    /// The request's own token (`?token=` or `Authorization`), kept for Socket.IO to verify at CONNECT.
    pub request_token: Option<String>,
}

/// How [`admit`] treats a request without a valid token when auth is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPolicy {
    /// Native `/ws`: the token must come with the request (401 otherwise).
    Required,
    /// Engine.IO: verified at the Socket.IO CONNECT (its `auth` payload, else the request's token), refused with CONNECT_ERROR.
    AtConnect,
}

/// Everything admission needs, and nothing else (so this module depends on no handler state).
pub struct Gate {
    /// `gateway.allowed_origins` (empty: any origin).
    pub allowed_origins: Vec<String>,
    /// JWT verifier when `gateway.auth` is on.
    pub auth: Option<Verifier>,
    /// Connection limits (total and per IP).
    pub limiter: Arc<ConnLimiter>,
    /// Where refusals and auth failures are counted.
    pub metrics: GatewayMetrics,
}

impl Gate {
    /// Checks origin, token and limits for a new connection; `Err` is the HTTP refusal to send.
    pub fn admit(&self, req: &HttpRequest, policy: TokenPolicy) -> Result<Admission, Refusal> {
        admit(req, self, policy)
    }
}

fn admit(req: &HttpRequest, state: &Gate, policy: TokenPolicy) -> Result<Admission, Refusal> {
    if !origin_allowed(req, &state.allowed_origins) {
        return Err(refuse(
            state,
            StatusCode::FORBIDDEN,
            "origin_forbidden",
            "origin not allowed",
        ));
    }
    let (mut grant, mut request_token) = (None, None);
    if let Some(verifier) = &state.auth {
        let token = crate::client::auth::token_of(req);
        match policy {
            TokenPolicy::AtConnect => request_token = token,
            TokenPolicy::Required => match verifier.verify(token.as_deref()) {
                Ok(g) => grant = Some(g),
                Err(e) => {
                    state
                        .metrics
                        .auth_failures
                        .with_label_values(&[e.label()])
                        .inc();
                    return Err(refuse(
                        state,
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        &format!("unauthorized: {e}"),
                    ));
                }
            },
        }
    }
    let ip = req.peer_addr().map(|a| a.ip());
    let permit = state.limiter.acquire(ip).map_err(|e| match e {
        LimitError::Total => refuse(
            state,
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            "the gateway is at its connection limit; retry later",
        ),
        LimitError::PerIp => refuse(
            state,
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections_per_ip",
            "too many connections from your address",
        ),
    })?;
    Ok(Admission {
        permit,
        grant,
        request_token,
    })
}

/// Whether the request's `Origin` (if any) is allowed; no `Origin` (not a browser) is always allowed.
pub fn origin_allowed(req: &HttpRequest, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    allowed
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// A refused connection: status, bounded reason code and message (already counted).
#[derive(Debug, Clone)]
pub struct Refusal {
    /// 401, 403 or 429.
    pub status: StatusCode,
    /// The `code` of the JSON body, also the metric label.
    pub reason: &'static str,
    /// A sentence for humans.
    pub message: String,
}

impl Refusal {
    /// The HTTP answer: `{"success":false,"error":...,"code":...}` (429 adds `Retry-After`).
    pub fn response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            res.insert_header((header::RETRY_AFTER, "5"));
        }
        res.json(json!({"success": false, "error": self.message, "code": self.reason}))
    }
}

/// A refusal, counted by reason.
fn refuse(state: &Gate, status: StatusCode, reason: &'static str, message: &str) -> Refusal {
    state
        .metrics
        .connections_rejected
        .with_label_values(&[reason])
        .inc();
    Refusal {
        status,
        reason,
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_total_and_per_ip_and_release_on_drop() {
        let l = ConnLimiter::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let p1 = l.acquire(Some(a)).unwrap();
        let _p2 = l.acquire(Some(a)).unwrap();
        assert_eq!(l.acquire(Some(a)).unwrap_err(), LimitError::PerIp);
        let _p3 = l.acquire(Some(b)).unwrap();
        assert_eq!(l.acquire(Some(b)).unwrap_err(), LimitError::Total);
        assert_eq!(l.open(), 3);
        drop(p1);
        assert_eq!(l.open(), 2);
        let _p4 = l.acquire(Some(a)).unwrap();
        let unlimited = ConnLimiter::new(0, 0);
        let held: Vec<_> = (0..100)
            .map(|_| unlimited.acquire(Some(a)).unwrap())
            .collect();
        assert_eq!(unlimited.open(), held.len());
    }
}
