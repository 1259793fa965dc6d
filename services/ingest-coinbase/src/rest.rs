//! The REST fallback: `GET /products/{product_id}/ticker` per product
//! (public endpoints allow 10 requests/s per IP; one round every
//! `rest_interval` for a handful of products stays far below).

use tickstream_model::Symbol;
use tickstream_upstream::RestRequest;

/// The requests of one fallback round, one per product.
pub fn requests(rest_url: &str, symbols: &[Symbol]) -> Vec<RestRequest> {
    let base = rest_url.trim_end_matches('/');
    symbols
        .iter()
        .map(|s| RestRequest {
            url: format!("{base}/products/{s}/ticker"),
            symbols: vec![s.clone()],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_request_per_product() {
        let syms = tickstream_model::Symbol::parse_list("BTC-USD,ETH-USD").unwrap();
        let r = super::requests("https://api.exchange.coinbase.com/", &syms);
        assert_eq!(
            r[1].url,
            "https://api.exchange.coinbase.com/products/ETH-USD/ticker"
        );
    }
}
