//! Mock upstream servers for the ingestors' integration tests.
//!
//! Each binds 127.0.0.1 port 0 and reports its URL, so every test has its own
//! upstream. The WebSocket mock records what the client sends (subscribe
//! frames, pongs), answers scripted replies the way the provider does
//! (Coinbase `subscriptions`, Twelve Data `subscribe-status`), and lets the
//! test push documented frames, server pings, garbage, a close or an abrupt
//! drop, or simply stay silent (a stall). In Binance mode it also keeps each
//! connection's subscriptions, answers live `SUBSCRIBE`/`UNSUBSCRIBE`/
//! `LIST_SUBSCRIPTIONS`, streams tickers only for subscribed streams and
//! enforces Binance's limits. The REST mock serves scripted
//! responses per path, including 429/418 with `Retry-After`, and records
//! every request.
//!
//! # Layout
//! - [`ws`]: [`MockWs`], the WebSocket upstream.
//! - [`rest`]: [`MockRest`], the HTTP upstream.
//! - [`harness`]: an ingestor started on a private Redis and these mocks
//!   ([`harness::Ingestor`], [`harness::Setup`]), and awaited assertions on
//!   `/metrics` and `/health`, plus `tickstream-testkit`'s on Redis and the
//!   tick channel, re-exported.
//! - `examples/`: `mock_binance` (the Binance-mode mock as a program, printing
//!   the control messages it receives) and `ws_client` (a minimal gateway
//!   client), to try on-demand mode by hand; the README's sample output comes
//!   from them.

// Test support: a panic with a message is an acceptable failure mode here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod harness;
pub mod rest;
pub mod ws;

pub use rest::{MockResponse, MockRest};
pub use ws::{BinanceOptions, ConnEvent, ControlRecord, MockWs};

/// Reads a fixture file relative to the calling crate's manifest dir, so tests use the documented payloads.
pub fn fixture(manifest_dir: &str, name: &str) -> String {
    let path = std::path::Path::new(manifest_dir)
        .join("test_data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A fixture's JSON re-serialized on one line, as providers send frames.
pub fn fixture_frame(manifest_dir: &str, name: &str) -> String {
    let raw = fixture(manifest_dir, name);
    compact_json(&raw)
}

/// Removes insignificant whitespace from pretty JSON (outside strings).
pub fn compact_json(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in raw.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn compacts_outside_strings_only() {
        assert_eq!(
            super::compact_json("{ \"a b\" : [1, 2],\n \"c\":\"x\\\" y\" }"),
            "{\"a b\":[1,2],\"c\":\"x\\\" y\"}"
        );
    }
}
