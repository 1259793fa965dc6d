//! The Finnhub connection: one per key (Finnhub allows one), the key as
//! `?token=`, one `{"type":"subscribe","symbol":...}` frame per symbol after
//! every connect.

use tickstream_upstream::WsConnection;

/// The subscribe frame of one symbol, in Finnhub notation.
pub fn subscribe_frame(upstream_symbol: &str) -> String {
    serde_json::json!({"type": "subscribe", "symbol": upstream_symbol}).to_string()
}

/// The one connection.
pub fn connections(ws_url: &str, api_key: &str, upstream_symbols: &[String]) -> Vec<WsConnection> {
    let token = format!("token={}", urlencoding::encode(api_key));
    vec![WsConnection {
        url: tickstream_upstream::venue::append_query(ws_url, &token),
        subscribe: upstream_symbols
            .iter()
            .map(|s| subscribe_frame(s))
            .collect(),
    }]
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
    }
}
