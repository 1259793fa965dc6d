//! The Binance combined-stream connections: `/stream?streams=a@ticker/b@ticker`.
//!
//! Streams are named in the URL, so every (re)connect subscribes again by
//! construction and no control messages are needed (Binance allows at most 5
//! per second). Past 1024 streams, more connections are opened.

use tickstream_model::Symbol;
use tickstream_upstream::WsConnection;

/// Binance's limit of streams on one connection.
pub const MAX_STREAMS_PER_CONNECTION: usize = 1024;

/// The stream name of a symbol's 24hr ticker; Binance stream names are lowercase.
pub fn ticker_stream(symbol: &Symbol) -> String {
    format!("{}@ticker", symbol.as_str().to_ascii_lowercase())
}

/// One connection per 1024 symbols.
pub fn connections(ws_url: &str, symbols: &[Symbol]) -> Vec<WsConnection> {
    let base = ws_url.trim_end_matches('/');
    symbols
        .chunks(MAX_STREAMS_PER_CONNECTION)
        .map(|chunk| {
            let streams: Vec<String> = chunk.iter().map(ticker_stream).collect();
            WsConnection {
                url: format!("{base}/stream?streams={}", streams.join("/")),
                subscribe: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_stream_urls() {
        let syms = Symbol::parse_list("BTCUSDT,ethusdt").unwrap();
        let c = connections("wss://stream.binance.com:9443", &syms);
        assert_eq!(
            c,
            vec![WsConnection {
                url: "wss://stream.binance.com:9443/stream?streams=btcusdt@ticker/ethusdt@ticker"
                    .into(),
                subscribe: vec![],
            }]
        );
        let many: Vec<Symbol> = (0..2000)
            .map(|i| Symbol::parse(&format!("S{i}USDT")).unwrap())
            .collect();
        let c = connections("ws://x/", &many);
        assert_eq!(c.len(), 2);
        assert!(c[1]
            .url
            .starts_with("ws://x/stream?streams=s1024usdt@ticker/"));
    }
}
