//! The REST fallback: `GET /price?symbol=A,B&apikey=...`, all symbols in one
//! batch request (1 API credit per symbol; the free tier has 8 credits/minute,
//! so set `TICKSTREAM_UPSTREAM__REST_INTERVAL_MS` to at least
//! 7,500 ms × symbols there).

use tickstream_model::Symbol;
use tickstream_upstream::RestRequest;

/// Symbols per batch request (Twelve Data accepts up to 120).
pub const SYMBOLS_PER_REQUEST: usize = 120;

/// The requests of one fallback round.
pub fn requests(rest_url: &str, api_key: &str, symbols: &[Symbol]) -> Vec<RestRequest> {
    let base = rest_url.trim_end_matches('/');
    symbols
        .chunks(SYMBOLS_PER_REQUEST)
        .map(|chunk| {
            let list: Vec<&str> = chunk.iter().map(Symbol::as_str).collect();
            RestRequest {
                url: format!(
                    "{base}/price?symbol={}&apikey={}",
                    urlencoding::encode(&list.join(",")),
                    urlencoding::encode(api_key)
                ),
                symbols: chunk.to_vec(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_batch_request() {
        let syms = tickstream_model::Symbol::parse_list("AAPL,EUR/USD").unwrap();
        let r = super::requests("https://api.twelvedata.com", "k", &syms);
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].url,
            "https://api.twelvedata.com/price?symbol=AAPL%2CEUR%2FUSD&apikey=k"
        );
    }
}
