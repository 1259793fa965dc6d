//! The dashboard and client-library assets over plain HTTP: content types,
//! caching (ETag, 304), the page's Content-Security-Policy, and the WebSocket
//! Origin rules left as they were.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gateway::dashboard::DASHBOARD_CSP;

const ASSETS: [(&str, &str); 6] = [
    ("/", "text/html; charset=utf-8"),
    ("/ui/dashboard.js", "text/javascript; charset=utf-8"),
    ("/ui/dashboard.css", "text/css; charset=utf-8"),
    ("/client/tickstream.js", "text/javascript; charset=utf-8"),
    ("/client/react.js", "text/javascript; charset=utf-8"),
    ("/favicon.ico", "image/svg+xml"),
];

#[tokio::test]
async fn assets_have_types_cache_headers_and_the_page_its_policy() {
    let stack = Stack::start(&[]).await;
    let http = reqwest::Client::new();
    for (path, content_type) in ASSETS {
        let r = http.get(stack.gateway.http_url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        assert_eq!(h["content-type"], content_type, "{path}");
        assert_eq!(h["cache-control"], "no-cache", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        let etag = h["etag"].to_str().unwrap().to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "{path}: {etag}"
        );
        if path == "/" {
            assert_eq!(h["content-security-policy"], DASHBOARD_CSP);
            assert_eq!(h["x-frame-options"], "DENY");
        } else {
            assert!(!h.contains_key("content-security-policy"), "{path}");
        }
        let body = r.text().await.unwrap();
        assert!(!body.is_empty(), "{path}");

        // A current copy is answered 304 without a body.
        let r = http
            .get(stack.gateway.http_url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304, "{path}");
        assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
        assert!(r.text().await.unwrap().is_empty());
        // A stale one gets the asset.
        let r = http
            .get(stack.gateway.http_url(path))
            .header("if-none-match", "\"0000000000000000\"")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let page = http
        .get(stack.gateway.http_url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"src="/ui/dashboard.js""#));
    let app = http
        .get(stack.gateway.http_url("/ui/dashboard.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(app.contains("from '/client/tickstream.js'"));
}

/// A WebSocket upgrade request with `origin`, answered with its HTTP status.
async fn upgrade_status(stack: &Stack, origin: &str) -> u16 {
    reqwest::Client::new()
        .get(stack.gateway.http_url("/ws"))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("origin", origin)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn serving_the_dashboard_does_not_open_the_websocket_to_its_origin() {
    let stack = Stack::start(&[("ALLOWED_ORIGINS", "https://good.example")]).await;
    let own = format!("http://{}", stack.gateway.addr());
    // The page itself is served to anyone ...
    let r = reqwest::get(stack.gateway.http_url("/")).await.unwrap();
    assert_eq!(r.status(), 200);
    // ... but its origin may open /ws only when the allow-list names it.
    assert_eq!(upgrade_status(&stack, &own).await, 403);
    assert_eq!(upgrade_status(&stack, "https://good.example").await, 101);
}
