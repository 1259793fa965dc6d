//! The Binance combined-stream connections and their live subscription changes.
//!
//! Each symbol has two streams on the same connection: `<symbol>@ticker` (the
//! tick) and `<symbol>@trade` (every trade). Every (re)connect names the
//! connection's current streams in its URL
//! (`/stream?streams=a@ticker/a@trade/b@ticker/b@trade`), so nothing is lost across
//! reconnects. While a connection is open, a SIGHUP reload changes its streams
//! with `SUBSCRIBE`/`UNSUBSCRIBE` control messages (unique integer ids;
//! replies `{"result":null,"id":N}`). Binance allows 5 incoming messages per
//! second per connection, counting PING, PONG and control messages, and 1024
//! streams per connection; past that more connections are opened.

use tickstream_model::Symbol;
use tickstream_upstream::{SubscriptionChange, WsConnection};

use crate::messages::BinanceWsRequest;

/// Binance's limit of streams on one connection (Spot "WebSocket Limits").
pub const MAX_STREAMS_PER_CONNECTION: usize = 1024;

/// Least time between two counted messages on one connection. Binance cuts a
/// connection past 5 incoming messages per second, counting PING, PONG and
/// JSON control messages; one every 300 ms (3.3/s) leaves room for the pong
/// we owe each 20 s server ping and for network bunching.
pub const CONTROL_MESSAGE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(300);

/// Streams named in one control message. Binance documents no cap, but very
/// long SUBSCRIBE frames (a few hundred streams) have been seen to fail
/// silently; 200 keeps every frame near 4 KB, so 1024 streams take 6 messages.
pub const MAX_STREAMS_PER_MESSAGE: usize = 200;

/// Streams per symbol: its 24hr ticker and its trades.
pub const STREAMS_PER_SYMBOL: usize = 2;

/// Symbols on one connection, so its streams stay within [`MAX_STREAMS_PER_CONNECTION`].
pub const MAX_SYMBOLS_PER_CONNECTION: usize = MAX_STREAMS_PER_CONNECTION / STREAMS_PER_SYMBOL;

/// Symbols named in one control message, so it names at most [`MAX_STREAMS_PER_MESSAGE`] streams.
pub const MAX_SYMBOLS_PER_MESSAGE: usize = MAX_STREAMS_PER_MESSAGE / STREAMS_PER_SYMBOL;

/// The stream name of a symbol's 24hr ticker; Binance stream names are lowercase.
pub fn ticker_stream(symbol: &Symbol) -> String {
    format!("{}@ticker", symbol.as_str().to_ascii_lowercase())
}

/// The stream name of a symbol's trades (`<symbol>@trade`, one event per trade).
pub fn trade_stream(symbol: &Symbol) -> String {
    format!("{}@trade", symbol.as_str().to_ascii_lowercase())
}

/// Every stream of `symbols`, each symbol's ticker then its trades.
pub fn streams(symbols: &[Symbol]) -> Vec<String> {
    symbols
        .iter()
        .flat_map(|s| [ticker_stream(s), trade_stream(s)])
        .collect()
}

/// The connection that carries exactly `symbols` from its handshake.
pub fn connection_for(ws_url: &str, symbols: &[Symbol]) -> WsConnection {
    let base = ws_url.trim_end_matches('/');
    let streams = streams(symbols);
    WsConnection {
        url: format!("{base}/stream?streams={}", streams.join("/")),
        subscribe: Vec::new(),
    }
}

/// One connection per 512 symbols, 1024 streams (the start-up split).
pub fn connections(ws_url: &str, symbols: &[Symbol]) -> Vec<WsConnection> {
    symbols
        .chunks(MAX_SYMBOLS_PER_CONNECTION)
        .map(|chunk| connection_for(ws_url, chunk))
        .collect()
}

/// `{"method":"SUBSCRIBE"|"UNSUBSCRIBE","params":["xyzusdt@ticker","xyzusdt@trade",...],"id":N}`.
pub fn control_frame(change: SubscriptionChange, symbols: &[Symbol], id: u64) -> String {
    let params = streams(symbols);
    let request = BinanceWsRequest {
        method: match change {
            SubscriptionChange::Subscribe => "SUBSCRIBE",
            SubscriptionChange::Unsubscribe => "UNSUBSCRIBE",
        },
        params: &params,
        id,
    };
    // Serializing a struct of strings and an integer cannot fail; the fallback is never used.
    serde_json::to_string(&request).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> serde_json::Value {
        let raw =
            std::fs::read_to_string(format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        serde_json::from_str(&raw).unwrap()
    }

    #[test]
    fn combined_stream_urls() {
        let syms = Symbol::parse_list("BTCUSDT,ethusdt").unwrap();
        let c = connections("wss://stream.binance.com:9443", &syms);
        assert_eq!(
            c,
            vec![WsConnection {
                url: "wss://stream.binance.com:9443/stream?streams=btcusdt@ticker/btcusdt@trade/ethusdt@ticker/ethusdt@trade"
                    .into(),
                subscribe: vec![],
            }]
        );
        let many: Vec<Symbol> = (0..1000)
            .map(|i| Symbol::parse(&format!("S{i}USDT")).unwrap())
            .collect();
        let c = connections("ws://x/", &many);
        assert_eq!(c.len(), 2);
        assert!(c[1]
            .url
            .starts_with("ws://x/stream?streams=s512usdt@ticker/s512usdt@trade/"));
        let first = c[0].url.split('=').nth(1).unwrap().split('/').count();
        assert_eq!(
            first, MAX_STREAMS_PER_CONNECTION,
            "two streams per symbol, 1024 in all"
        );
    }

    #[test]
    fn control_frames_are_shaped_like_the_documented_requests() {
        let syms = Symbol::parse_list("BTCUSDT,XYZUSDT").unwrap();
        let sub: serde_json::Value =
            serde_json::from_str(&control_frame(SubscriptionChange::Subscribe, &syms, 1)).unwrap();
        let doc = fixture("ws_subscribe_request.json");
        assert_eq!(sub["method"], doc["method"]);
        assert_eq!(sub["id"], doc["id"]);
        assert_eq!(
            sub["params"],
            serde_json::json!([
                "btcusdt@ticker",
                "btcusdt@trade",
                "xyzusdt@ticker",
                "xyzusdt@trade"
            ])
        );
        let unsub: serde_json::Value = serde_json::from_str(&control_frame(
            SubscriptionChange::Unsubscribe,
            &syms[..1],
            312,
        ))
        .unwrap();
        let doc = fixture("ws_unsubscribe_request.json");
        assert_eq!(unsub["method"], doc["method"]);
        assert_eq!(unsub["id"], doc["id"]);
        assert_eq!(
            unsub["params"],
            serde_json::json!(["btcusdt@ticker", "btcusdt@trade"])
        );
        // Same keys as the docs' example, nothing more.
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&sub), keys(&doc));
    }

    #[test]
    fn pacing_stays_under_five_messages_per_second() {
        // With a pong possibly among them, 1 s holds at most ceil(1000/300)+1 = 5 messages.
        let per_second = 1000 / CONTROL_MESSAGE_INTERVAL.as_millis() + 1;
        assert!(per_second < 5, "{per_second} control messages per second");
        // 1024 streams go out in a handful of frames.
        assert!(MAX_STREAMS_PER_CONNECTION.div_ceil(MAX_STREAMS_PER_MESSAGE) <= 6);
        assert_eq!(
            MAX_SYMBOLS_PER_MESSAGE * STREAMS_PER_SYMBOL,
            MAX_STREAMS_PER_MESSAGE
        );
    }
}
