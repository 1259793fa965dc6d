//! The Finnhub connection: one per key (Finnhub allows one), the key as
//! `?token=`, one `{"type":"subscribe","symbol":...}` frame per symbol after
//! every connect; in on-demand mode symbols are added and dropped on the open
//! connection with the same frames and `{"type":"unsubscribe","symbol":...}`
//! (Finnhub answers neither).

use tickstream_upstream::{SubscriptionChange, WsConnection};

/// Symbols on the one connection: Finnhub allows one connection per key, so it
/// never opens a second; the key's plan caps the symbols (free tier: 50), which
/// `finnhub.symbols` and the on-demand list are kept within by the operator.
pub const MAX_SYMBOLS_PER_CONNECTION: usize = usize::MAX;

/// Symbols named in one message: Finnhub's frames name exactly one.
pub const MAX_SYMBOLS_PER_MESSAGE: usize = 1;

/// The subscribe frame of one symbol, in Finnhub notation.
pub fn subscribe_frame(upstream_symbol: &str) -> String {
    control_frame(SubscriptionChange::Subscribe, upstream_symbol)
}

/// The live control message that applies `change` to one symbol (Finnhub notation):
/// `{"type":"subscribe"|"unsubscribe","symbol":...}`.
pub fn control_frame(change: SubscriptionChange, upstream_symbol: &str) -> String {
    serde_json::json!({"type": change.as_str(), "symbol": upstream_symbol}).to_string()
}

/// The connection carrying `upstream_symbols` from its first frames.
pub fn connection_for(ws_url: &str, api_key: &str, upstream_symbols: &[String]) -> WsConnection {
    let token = format!("token={}", urlencoding::encode(api_key));
    WsConnection {
        url: tickstream_upstream::venue::append_query(ws_url, &token),
        subscribe: upstream_symbols
            .iter()
            .map(|s| subscribe_frame(s))
            .collect(),
    }
}

/// The one connection.
pub fn connections(ws_url: &str, api_key: &str, upstream_symbols: &[String]) -> Vec<WsConnection> {
    vec![connection_for(ws_url, api_key, upstream_symbols)]
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_and_frames() {
        let c = super::connections(
            "wss://ws.finnhub.io",
            "k&y",
            &["AAPL".into(), "BINANCE:BTCUSDT".into()],
        );
        assert_eq!(c[0].url, "wss://ws.finnhub.io/?token=k%26y");
        assert_eq!(
            c[0].subscribe[1],
            r#"{"symbol":"BINANCE:BTCUSDT","type":"subscribe"}"#
        );
        // The documented unsubscribe: {"type":"unsubscribe","symbol":"AAPL"}.
        let raw = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/test_data/ws_unsubscribe_request.json"
        ))
        .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let un: serde_json::Value = serde_json::from_str(&super::control_frame(
            tickstream_upstream::SubscriptionChange::Unsubscribe,
            "AAPL",
        ))
        .unwrap();
        assert_eq!(un, doc);
    }
}
