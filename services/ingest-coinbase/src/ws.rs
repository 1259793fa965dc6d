//! The Coinbase feed connection: one socket, one subscribe frame sent right
//! after connecting (Coinbase closes connections that do not subscribe within 5 s).

use tickstream_model::Symbol;
use tickstream_upstream::WsConnection;

/// Channels subscribed: `ticker` for prices, `matches` for trades, `heartbeat` so quiet
/// products keep the connection provably alive.
pub const CHANNELS: [&str; 3] = ["ticker", "matches", "heartbeat"];

/// The subscribe frame for `symbols`.
pub fn subscribe_frame(symbols: &[Symbol]) -> String {
    serde_json::json!({
        "type": "subscribe",
        "product_ids": symbols.iter().map(Symbol::as_str).collect::<Vec<_>>(),
        "channels": CHANNELS,
    })
    .to_string()
}

/// The one connection, resubscribing on every connect.
pub fn connections(ws_url: &str, symbols: &[Symbol]) -> Vec<WsConnection> {
    vec![WsConnection {
        url: ws_url.to_owned(),
        subscribe: vec![subscribe_frame(symbols)],
    }]
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
}
