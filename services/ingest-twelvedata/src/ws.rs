//! The Twelve Data connection: the key as `?apikey=`, one subscribe frame
//! with every symbol after each connect, and `{"action":"heartbeat"}` every
//! 10 s as Twelve Data asks (it closes connections that stay silent). In
//! on-demand mode the open connection's symbols change by subscribing again
//! with the added symbols (`subscribe` adds to what a connection streams) and
//! `{"action":"unsubscribe",...}` for the dropped ones; the answers
//! (`subscribe-status`, `unsubscribe-status`) carry no id.

use std::time::Duration;

use tickstream_model::Symbol;
use tickstream_upstream::{SubscriptionChange, WsConnection};

/// The application heartbeat frame.
pub const HEARTBEAT_FRAME: &str = r#"{"action":"heartbeat"}"#;

/// Symbols on the one connection: the key's plan caps the symbols streamed
/// (WebSocket credits), not the connection, so it never opens a second one.
pub const MAX_SYMBOLS_PER_CONNECTION: usize = usize::MAX;

/// Symbols named in one control message (the service's own bound on a frame's size).
pub const MAX_SYMBOLS_PER_MESSAGE: usize = 100;

/// Least time between two control messages on one connection: a conservative
/// 5 per second, so a burst of wants never floods the upstream.
pub const CONTROL_MESSAGE_INTERVAL: Duration = Duration::from_millis(200);

/// `{"action":"subscribe"|"unsubscribe","params":{"symbols":"A,B"}}`.
fn frame(action: &str, symbols: &[Symbol]) -> String {
    let list: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
    serde_json::json!({"action": action, "params": {"symbols": list.join(",")}}).to_string()
}

/// The subscribe frame: symbols as one comma separated string.
pub fn subscribe_frame(symbols: &[Symbol]) -> String {
    frame("subscribe", symbols)
}

/// The live control message that applies `change` to `symbols` on an open connection.
pub fn control_frame(change: SubscriptionChange, symbols: &[Symbol]) -> String {
    frame(change.as_str(), symbols)
}

/// The connection carrying exactly `symbols` from its first frame.
pub fn connection_for(ws_url: &str, api_key: &str, symbols: &[Symbol]) -> WsConnection {
    let key = format!("apikey={}", urlencoding::encode(api_key));
    WsConnection {
        url: tickstream_upstream::venue::append_query(ws_url, &key),
        subscribe: vec![subscribe_frame(symbols)],
    }
}

/// The one connection.
pub fn connections(ws_url: &str, api_key: &str, symbols: &[Symbol]) -> Vec<WsConnection> {
    vec![connection_for(ws_url, api_key, symbols)]
}

#[cfg(test)]
mod tests {
    #[test]
    fn documented_subscribe() {
        let syms = tickstream_model::Symbol::parse_list("AAPL,EUR/USD,BTC/USD").unwrap();
        let c = super::connections("wss://ws.twelvedata.com/v1/quotes/price", "k", &syms);
        assert_eq!(c[0].url, "wss://ws.twelvedata.com/v1/quotes/price?apikey=k");
        assert_eq!(
            c[0].subscribe[0],
            r#"{"action":"subscribe","params":{"symbols":"AAPL,EUR/USD,BTC/USD"}}"#
        );
        let raw = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/test_data/ws_unsubscribe_request.json"
        ))
        .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let un: serde_json::Value = serde_json::from_str(&super::control_frame(
            tickstream_upstream::SubscriptionChange::Unsubscribe,
            &syms[..1],
        ))
        .unwrap();
        assert_eq!(un["action"], doc["action"]);
        assert_eq!(un["params"]["symbols"], "AAPL");
    }
}
