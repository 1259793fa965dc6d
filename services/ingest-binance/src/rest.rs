//! The REST fallback: `GET /api/v3/ticker/24hr?symbols=[...]`.
//!
//! Request weight is 2 per symbol up to 20 symbols, 40 for 21–100, 80 beyond
//! (Binance's 6,000 weight/min IP limit), so one request per 100 symbols every
//! `rest_interval` stays far inside the limit.

use tickstream_model::Symbol;
use tickstream_upstream::RestRequest;

/// Path of the 24hr ticker statistics endpoint.
pub const TICKER_24HR_PATH: &str = "/api/v3/ticker/24hr";
/// Symbols per request: the weight step up to which one call costs 40.
pub const SYMBOLS_PER_REQUEST: usize = 100;

/// The requests of one fallback round.
pub fn requests(rest_url: &str, symbols: &[Symbol]) -> Vec<RestRequest> {
    let base = rest_url.trim_end_matches('/');
    symbols
        .chunks(SYMBOLS_PER_REQUEST)
        .map(|chunk| {
            let list: Vec<String> = chunk.iter().map(|s| format!("%22{s}%22")).collect();
            RestRequest {
                url: format!(
                    "{base}{TICKER_24HR_PATH}?symbols=%5B{}%5D",
                    list.join("%2C")
                ),
                symbols: chunk.to_vec(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_symbols_array() {
        let syms = Symbol::parse_list("BTCUSDT,ETHUSDT").unwrap();
        let r = requests("https://api.binance.com/", &syms);
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].url,
            "https://api.binance.com/api/v3/ticker/24hr?symbols=%5B%22BTCUSDT%22%2C%22ETHUSDT%22%5D"
        );
        let many: Vec<Symbol> = (0..250)
            .map(|i| Symbol::parse(&format!("S{i}USDT")).unwrap())
            .collect();
        assert_eq!(requests("http://x", &many).len(), 3);
    }
}
