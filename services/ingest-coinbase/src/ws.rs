//! The Coinbase feed connection: one socket, one subscribe frame sent right
//! after connecting (Coinbase closes connections that do not subscribe within
//! 5 s), and, in on-demand mode, live `subscribe`/`unsubscribe` messages on
//! the open socket (Coinbase answers each with a `subscriptions` message that
//! carries no id).

use std::time::Duration;

use tickstream_model::Symbol;
use tickstream_upstream::{SubscriptionChange, WsConnection};

/// Channels subscribed: `ticker` for prices, `matches` for trades, `heartbeat` so quiet
/// products keep the connection provably alive.
pub const CHANNELS: [&str; 3] = ["ticker", "matches", "heartbeat"];

/// Products on one connection. Coinbase documents no cap per connection; this
/// is the service's own bound (`MAX_SYMBOLS`), so a subscribe frame stays a few KB.
pub const MAX_PRODUCTS_PER_CONNECTION: usize = crate::config::MAX_SYMBOLS;

/// Products named in one live control message (about 1.5 KB of product ids).
pub const MAX_PRODUCTS_PER_MESSAGE: usize = 100;

/// Least time between two control messages on one connection. Coinbase counts
/// client messages against its WebSocket request rate limit (per IP); one every
/// 200 ms (5/s) stays well inside it.
pub const CONTROL_MESSAGE_INTERVAL: Duration = Duration::from_millis(200);

/// `{"type":"subscribe"|"unsubscribe","product_ids":[..],"channels":[..]}` for `symbols`.
fn frame(kind: &str, symbols: &[Symbol]) -> String {
    serde_json::json!({
        "type": kind,
        "product_ids": symbols.iter().map(Symbol::as_str).collect::<Vec<_>>(),
        "channels": CHANNELS,
    })
    .to_string()
}

/// The subscribe frame for `symbols`.
pub fn subscribe_frame(symbols: &[Symbol]) -> String {
    frame("subscribe", symbols)
}

/// The live control message that applies `change` to `symbols` on an open connection.
pub fn control_frame(change: SubscriptionChange, symbols: &[Symbol]) -> String {
    frame(change.as_str(), symbols)
}

/// The connection that carries exactly `symbols`, subscribing on every connect.
pub fn connection_for(ws_url: &str, symbols: &[Symbol]) -> WsConnection {
    WsConnection {
        url: ws_url.to_owned(),
        subscribe: vec![subscribe_frame(symbols)],
    }
}

/// The one connection, resubscribing on every connect.
pub fn connections(ws_url: &str, symbols: &[Symbol]) -> Vec<WsConnection> {
    vec![connection_for(ws_url, symbols)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_frame_is_the_documented_shape() {
        let syms = Symbol::parse_list("BTC-USD,ETH-USD").unwrap();
        let v: serde_json::Value = serde_json::from_str(&subscribe_frame(&syms)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"subscribe","product_ids":["BTC-USD","ETH-USD"],"channels":["ticker","matches","heartbeat"]})
        );
    }

    #[test]
    fn unsubscribe_frame_is_the_documented_shape() {
        let raw = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/test_data/ws_unsubscribe_request.json"
        ))
        .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let syms = Symbol::parse_list("ETH-USD").unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&control_frame(SubscriptionChange::Unsubscribe, &syms)).unwrap();
        assert_eq!(v["type"], doc["type"]);
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&v), keys(&doc));
        assert_eq!(v["product_ids"], serde_json::json!(["ETH-USD"]));
        assert_eq!(v["channels"], serde_json::json!(CHANNELS));
    }
}
