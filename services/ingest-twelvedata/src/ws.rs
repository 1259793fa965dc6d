//! The Twelve Data connection: the key as `?apikey=`, one subscribe frame
//! with every symbol after each connect, and `{"action":"heartbeat"}` every
//! 10 s as Twelve Data asks (it closes connections that stay silent).

use tickstream_model::Symbol;
use tickstream_upstream::WsConnection;

/// The application heartbeat frame.
pub const HEARTBEAT_FRAME: &str = r#"{"action":"heartbeat"}"#;

/// The subscribe frame: symbols as one comma separated string.
pub fn subscribe_frame(symbols: &[Symbol]) -> String {
    let list: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
    serde_json::json!({"action": "subscribe", "params": {"symbols": list.join(",")}}).to_string()
}

/// The one connection.
pub fn connections(ws_url: &str, api_key: &str, symbols: &[Symbol]) -> Vec<WsConnection> {
    let key = format!("apikey={}", urlencoding::encode(api_key));
    vec![WsConnection {
        url: tickstream_upstream::venue::append_query(ws_url, &key),
        subscribe: vec![subscribe_frame(symbols)],
    }]
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
    }
}
