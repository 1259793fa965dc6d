//! The browser side served by the gateway itself: the live dashboard at `/`
//! and the JavaScript client library at `/client/tickstream.js`, compiled into
//! the binary so a deployment is still one file and pages need no build step.
//!
//! Every asset is sent with its content type, `Cache-Control: no-cache` and a
//! content hash `ETag` (a revalidation costs a 304, and a new gateway is never
//! hidden behind a stale copy), `nosniff`, and for the HTML page a
//! Content-Security-Policy that allows only the page's own origin (scripts,
//! styles, REST and the `/ws` WebSocket). The WebSocket Origin rules of
//! `gateway.allowed_origins` are untouched: with an allow-list set, the
//! gateway's own origin must be on it for the dashboard to connect.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

/// One compiled-in file and how to serve it.
struct Asset {
    /// The path it is served at.
    path: &'static str,
    /// Its `Content-Type`.
    content_type: &'static str,
    /// Its bytes.
    body: &'static str,
}

/// The dashboard page's policy: only its own origin, no inline code, no framing.
pub const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Everything served, by path.
const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../assets/index.html"),
    },
    Asset {
        path: "/ui/dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/dashboard.js"),
    },
    Asset {
        path: "/ui/dashboard.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../assets/dashboard.css"),
    },
    Asset {
        path: "/favicon.ico",
        content_type: "image/svg+xml",
        body: include_str!("../assets/favicon.svg"),
    },
    Asset {
        path: "/client/tickstream.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../clients/js/tickstream.js"),
    },
    Asset {
        path: "/client/react.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../clients/js/react.js"),
    },
];

/// Registers the dashboard and client-library routes (called from [`crate::server::routes`]).
pub fn configure(cfg: &mut web::ServiceConfig) {
    for (i, asset) in ASSETS.iter().enumerate() {
        cfg.route(
            asset.path,
            web::get().to(move |req: HttpRequest| async move { serve(&ASSETS[i], &req) }),
        );
    }
}

/// A 64-bit FNV-1a hash of the asset, as its strong `ETag`.
fn etag(body: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

/// The asset, or 304 when the client's copy (`If-None-Match`) is current.
fn serve(asset: &Asset, req: &HttpRequest) -> HttpResponse {
    let tag = etag(asset.body);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if asset.content_type.starts_with("text/html") {
        res.insert_header((header::CONTENT_SECURITY_POLICY, DASHBOARD_CSP))
            .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    }
    if fresh {
        res.finish()
    } else {
        res.content_type(asset.content_type).body(asset.body)
    }
}
