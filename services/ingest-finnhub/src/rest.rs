//! The REST fallback: `GET /api/v1/quote?symbol=...&token=...` per symbol.
//! The free tier allows 60 calls/minute; with the default 15 s interval that
//! is room for 15 symbols (raise `rest_interval_ms` for more). Without a
//! Finnhub key but with an Alpha Vantage key, `GLOBAL_QUOTE` is polled
//! instead (its free tier allows 25 requests a day: set `rest_interval_ms`
//! to hours).

use tickstream_model::Symbol;
use tickstream_upstream::RestRequest;

/// The requests of one fallback round, one per symbol.
pub fn requests(rest_url: &str, api_key: &str, symbols: &[(String, Symbol)]) -> Vec<RestRequest> {
    let base = rest_url.trim_end_matches('/');
    symbols
        .iter()
        .map(|(upstream, sym)| RestRequest {
            url: format!(
                "{base}/api/v1/quote?symbol={}&token={}",
                urlencoding::encode(upstream),
                urlencoding::encode(api_key)
            ),
            symbols: vec![sym.clone()],
        })
        .collect()
}

/// The Alpha Vantage requests of one fallback round, one per symbol.
pub fn alpha_vantage_requests(
    base_url: &str,
    api_key: &str,
    symbols: &[(String, Symbol)],
) -> Vec<RestRequest> {
    let base = base_url.trim_end_matches('/');
    symbols
        .iter()
        .map(|(upstream, sym)| RestRequest {
            url: format!(
                "{base}/query?function=GLOBAL_QUOTE&symbol={}&apikey={}",
                urlencoding::encode(upstream),
                urlencoding::encode(api_key)
            ),
            symbols: vec![sym.clone()],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_request_per_symbol() {
        let s = vec![(
            "BINANCE:BTCUSDT".to_owned(),
            tickstream_model::Symbol::parse("BTCUSDT").unwrap(),
        )];
        let r = super::requests("https://finnhub.io/", "key", &s);
        assert_eq!(
            r[0].url,
            "https://finnhub.io/api/v1/quote?symbol=BINANCE%3ABTCUSDT&token=key"
        );
    }
}
