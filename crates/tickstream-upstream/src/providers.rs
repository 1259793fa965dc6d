//! Secondary REST fallbacks: price providers polled beside a venue's own REST
//! fallback, for the rounds in which the venue's own REST gave nothing (down,
//! erroring or rate limited). Their ticks carry `source: "<provider>-rest"`.
//!
//! - `coingecko`: CoinGecko `GET /api/v3/simple/price` (keyless public API),
//!   for crypto symbols whose base coin and quote it knows (`BTCUSDT`,
//!   `ETH-USD`, `BNBBTC`). Payload as documented on
//!   `https://docs.coingecko.com/v3.0.1/reference/simple-price`.
//!
//! - `exchangerate`: ExchangeRate-API `GET /v6/{key}/latest/{BASE}` (key in
//!   `upstream.exchangerate_api_key`), for FX symbols `BASE/QUOTE` (`USD/CAD`).
//!   Payload as documented on `https://www.exchangerate-api.com/docs/standard-requests`;
//!   its rates update daily, so its ticks carry that update's time.
//!
//! - `alphavantage`: Alpha Vantage `GET /query?function=GLOBAL_QUOTE&symbol=X`
//!   (key `upstream.alpha_vantage_api_key`, ingest-twelvedata also reads
//!   `ALPHA_VANTAGE_API_KEY`), for stock symbols (letters, digits and dots, no
//!   pair). Payload as documented on
//!   `https://www.alphavantage.co/documentation/#latestprice`; it gives a
//!   trading day, no time, so its ticks carry the receive time.
//!
//! Each provider honours 429/418 `Retry-After` on its own: a rate-limited
//! provider is skipped until the wait is over, the venue's own fallback is not.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tickstream_model::Symbol;

use crate::venue::Quote;

/// The provider names `upstream.rest_providers` accepts.
pub const PROVIDERS: &[&str] = &["coingecko", "exchangerate", "alphavantage"];
/// The `source` of Alpha Vantage's ticks.
pub const ALPHAVANTAGE_SOURCE: &str = "alphavantage-rest";
/// Default `upstream.alpha_vantage_url`.
pub const DEFAULT_ALPHAVANTAGE_URL: &str = "https://www.alphavantage.co";
/// Most stock symbols asked of Alpha Vantage in one round (its free tier allows 25 calls a day).
pub const ALPHAVANTAGE_MAX_PER_ROUND: usize = 5;
/// The `source` of ExchangeRate-API's ticks.
pub const EXCHANGERATE_SOURCE: &str = "exchangerate-rest";
/// Default `upstream.exchangerate_url`.
pub const DEFAULT_EXCHANGERATE_URL: &str = "https://v6.exchangerate-api.com";
/// The `source` of CoinGecko's ticks.
pub const COINGECKO_SOURCE: &str = "coingecko-rest";
/// Default `upstream.coingecko_url`.
pub const DEFAULT_COINGECKO_URL: &str = "https://api.coingecko.com";

/// CoinGecko coin ids of the base assets it is asked for (CoinGecko ids are not tickers).
const COIN_IDS: &[(&str, &str)] = &[
    ("BTC", "bitcoin"),
    ("ETH", "ethereum"),
    ("SOL", "solana"),
    ("BNB", "binancecoin"),
    ("ADA", "cardano"),
    ("XRP", "ripple"),
    ("DOGE", "dogecoin"),
    ("DOT", "polkadot"),
    ("LTC", "litecoin"),
    ("AVAX", "avalanche-2"),
    ("LINK", "chainlink"),
    ("TRX", "tron"),
];

/// Quote assets and the CoinGecko `vs_currency` that prices them; stablecoin
/// quotes are priced in USD (they track it; the difference is below a cent).
const QUOTES: &[(&str, &str)] = &[
    ("USDT", "usd"),
    ("USDC", "usd"),
    ("USD", "usd"),
    ("EUR", "eur"),
    ("BTC", "btc"),
    ("ETH", "eth"),
];

/// A symbol with the CoinGecko coin id and `vs_currency` that price it.
pub type CoinGeckoPair = (Symbol, &'static str, &'static str);

/// The CoinGecko coin id and `vs_currency` of a symbol, if it knows both.
pub fn coingecko_pair(symbol: &Symbol) -> Option<(&'static str, &'static str)> {
    let s = symbol.as_str();
    let (base, quote) = match s.split_once(['-', '/']) {
        Some((b, q)) => (b, q),
        None => QUOTES
            .iter()
            .find_map(|(q, _)| s.strip_suffix(q).map(|b| (b, *q)))?,
    };
    let vs = QUOTES.iter().find(|(q, _)| *q == quote)?.1;
    let id = COIN_IDS.iter().find(|(b, _)| *b == base)?.1;
    Some((id, vs))
}

/// One CoinGecko request for `symbols`: its path and query, and which symbols it prices; `None` if it knows none.
pub fn coingecko_request(symbols: &[Symbol]) -> Option<(String, Vec<CoinGeckoPair>)> {
    let pairs: Vec<CoinGeckoPair> = symbols
        .iter()
        .filter_map(|s| coingecko_pair(s).map(|(id, vs)| (s.clone(), id, vs)))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let mut ids: Vec<&str> = pairs.iter().map(|(_, id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut vs: Vec<&str> = pairs.iter().map(|(_, _, vs)| *vs).collect();
    vs.sort_unstable();
    vs.dedup();
    let path = format!(
        "/api/v3/simple/price?ids={}&vs_currencies={}&include_24hr_change=true&include_last_updated_at=true",
        ids.join(","),
        vs.join(",")
    );
    Some((path, pairs))
}

/// A symbol and the quote currency it is priced in, from one base's rates.
pub type FxWant = (Symbol, String);

/// The base and quote currency of an FX symbol `BASE/QUOTE` (three letters each).
pub fn fx_pair(symbol: &Symbol) -> Option<(String, String)> {
    let (base, quote) = symbol.as_str().split_once('/')?;
    let three = |c: &str| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase());
    (three(base) && three(quote)).then(|| (base.to_owned(), quote.to_owned()))
}

/// ExchangeRate-API requests for `symbols`: one per base currency (sorted), the
/// path carrying `key`, with the symbols each prices.
pub fn exchangerate_requests(symbols: &[Symbol], key: &str) -> Vec<(String, Vec<FxWant>)> {
    let mut by_base: std::collections::BTreeMap<String, Vec<FxWant>> = Default::default();
    for s in symbols {
        if let Some((base, quote)) = fx_pair(s) {
            by_base.entry(base).or_default().push((s.clone(), quote));
        }
    }
    by_base
        .into_iter()
        .map(|(base, wants)| (format!("/v6/{key}/latest/{base}"), wants))
        .collect()
}

/// Quotes from an ExchangeRate-API `latest` answer for `wants` (price = the
/// rate; time = `time_last_update_unix`, else `now`; nothing else is given).
/// An answer with `"result": "error"` is an error naming its `error-type`.
pub fn parse_exchangerate(
    body: &str,
    wants: &[FxWant],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Quote>, ProviderError> {
    #[derive(Deserialize)]
    struct Latest {
        result: String,
        #[serde(rename = "error-type")]
        error_type: Option<String>,
        time_last_update_unix: Option<i64>,
        #[serde(default)]
        conversion_rates: HashMap<String, f64>,
    }
    let latest: Latest = serde_json::from_str(body)
        .map_err(|e| ProviderError(format!("not a latest-rates answer: {e}")))?;
    if latest.result != "success" {
        return Err(ProviderError(format!(
            "ExchangeRate-API answered {}: {}",
            latest.result,
            latest.error_type.as_deref().unwrap_or("no error-type")
        )));
    }
    let at = latest
        .time_last_update_unix
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .unwrap_or(now);
    Ok(wants
        .iter()
        .filter_map(|(symbol, quote)| {
            let rate = latest.conversion_rates.get(quote)?;
            Some(Quote::new(symbol.clone(), *rate, at))
        })
        .collect())
}

/// Whether a symbol looks like a stock ticker Alpha Vantage quotes (`AAPL`, `BRK.B`):
/// not an FX or crypto pair this module knows.
pub fn is_stock(symbol: &Symbol) -> bool {
    let s = symbol.as_str();
    !s.contains(['/', '-'])
        && coingecko_pair(symbol).is_none()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'.')
}

/// Alpha Vantage `GLOBAL_QUOTE` requests (path with `key`) for the stock symbols
/// of `symbols`, at most [`ALPHAVANTAGE_MAX_PER_ROUND`].
pub fn alphavantage_requests(symbols: &[Symbol], key: &str) -> Vec<(String, Symbol)> {
    symbols
        .iter()
        .filter(|s| is_stock(s))
        .take(ALPHAVANTAGE_MAX_PER_ROUND)
        .map(|s| {
            (
                format!(
                    "/query?function=GLOBAL_QUOTE&symbol={}&apikey={key}",
                    s.as_str()
                ),
                s.clone(),
            )
        })
        .collect()
}

/// Whether an Alpha Vantage answer is its rate-limit notice (HTTP 200 with `Note`/`Information`).
pub fn alphavantage_rate_limited(body: &str) -> bool {
    serde_json::from_str::<HashMap<String, serde_json::Value>>(body)
        .map(|m| {
            !m.contains_key("Global Quote")
                && (m.contains_key("Note") || m.contains_key("Information"))
        })
        .unwrap_or(false)
}

/// The quote in an Alpha Vantage `GLOBAL_QUOTE` answer for `symbol` (decimal
/// strings; price, high, low, volume, change, change percent), stamped `now`;
/// `Ok(None)` for the empty quote it gives an unknown symbol.
pub fn parse_alphavantage(
    body: &str,
    symbol: &Symbol,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Quote>, ProviderError> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Global Quote")]
        quote: HashMap<String, String>,
    }
    let a: Answer = serde_json::from_str(body)
        .map_err(|e| ProviderError(format!("not a GLOBAL_QUOTE answer: {e}")))?;
    if a.quote.is_empty() {
        return Ok(None);
    }
    let num = |field: &str| -> Result<Option<f64>, ProviderError> {
        match a.quote.get(field) {
            None => Ok(None),
            Some(raw) => raw
                .trim()
                .trim_end_matches('%')
                .parse::<f64>()
                .map(Some)
                .map_err(|e| ProviderError(format!("{field}: {raw:?}: {e}"))),
        }
    };
    let price = num("05. price")?
        .filter(|p| p.is_finite() && *p > 0.0)
        .ok_or_else(|| ProviderError("05. price: missing or not positive".to_owned()))?;
    let mut q = Quote::new(symbol.clone(), price, now);
    q.high = num("03. high")?;
    q.low = num("04. low")?;
    q.volume = num("06. volume")?;
    q.change = num("09. change")?;
    q.change_percent = num("10. change percent")?;
    Ok(Some(q))
}

/// Why a provider's answer was not used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProviderError(String);

/// Quotes from CoinGecko's `simple/price` answer for the symbols `pairs` names.
///
/// Fields it does not give stay absent: only price, `changePercent` (its
/// 24 h change) and the time (`last_updated_at`; the receive time `now` when
/// missing). A coin missing from the answer is skipped.
pub fn parse_coingecko(
    body: &str,
    pairs: &[CoinGeckoPair],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Quote>, ProviderError> {
    #[derive(Deserialize)]
    struct Coin(HashMap<String, Option<f64>>);
    let coins: HashMap<String, Coin> = serde_json::from_str(body)
        .map_err(|e| ProviderError(format!("not a simple/price answer: {e}")))?;
    let mut out = Vec::new();
    for (symbol, id, vs) in pairs {
        let Some(Coin(fields)) = coins.get(*id) else {
            continue;
        };
        let Some(Some(price)) = fields.get(*vs) else {
            continue;
        };
        let at = fields
            .get("last_updated_at")
            .copied()
            .flatten()
            .and_then(|secs| chrono::DateTime::from_timestamp(secs as i64, 0))
            .unwrap_or(now);
        let mut q = Quote::new(symbol.clone(), *price, at);
        q.change_percent = fields.get(&format!("{vs}_24h_change")).copied().flatten();
        out.push(q);
    }
    Ok(out)
}

/// The configured secondary providers and when each may be asked again.
#[derive(Debug, Default)]
pub(crate) struct Providers {
    /// CoinGecko's base URL when it is configured.
    pub(crate) coingecko: Option<String>,
    /// Not before this (a 429/418 asked us to wait).
    pub(crate) coingecko_after: Option<Instant>,
    /// ExchangeRate-API's base URL and key when it is configured.
    pub(crate) exchangerate: Option<(String, String)>,
    /// Not before this (a 429 asked us to wait).
    pub(crate) exchangerate_after: Option<Instant>,
    /// Alpha Vantage's base URL and key when it is configured.
    pub(crate) alphavantage: Option<(String, String)>,
    /// Not before this (a 429 or its rate-limit notice asked us to wait).
    pub(crate) alphavantage_after: Option<Instant>,
}

impl Providers {
    /// Whether CoinGecko may be asked now.
    pub(crate) fn coingecko_ready(&self, now: Instant) -> bool {
        self.coingecko.is_some() && self.coingecko_after.is_none_or(|t| now >= t)
    }

    /// Records a rate limit asking to wait `wait` from `now`.
    pub(crate) fn coingecko_wait(&mut self, now: Instant, wait: Duration) {
        self.coingecko_after = Some(now + wait);
    }

    /// Whether Alpha Vantage may be asked now.
    pub(crate) fn alphavantage_ready(&self, now: Instant) -> bool {
        self.alphavantage.is_some() && self.alphavantage_after.is_none_or(|t| now >= t)
    }

    /// Whether ExchangeRate-API may be asked now.
    pub(crate) fn exchangerate_ready(&self, now: Instant) -> bool {
        self.exchangerate.is_some() && self.exchangerate_after.is_none_or(|t| now >= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    #[test]
    fn pairs_and_request() {
        assert_eq!(coingecko_pair(&sym("BTCUSDT")), Some(("bitcoin", "usd")));
        assert_eq!(coingecko_pair(&sym("ETH-USD")), Some(("ethereum", "usd")));
        assert_eq!(coingecko_pair(&sym("BNBBTC")), Some(("binancecoin", "btc")));
        assert_eq!(coingecko_pair(&sym("AAPL")), None);
        assert_eq!(coingecko_pair(&sym("EUR/USD")), None);
        let (path, pairs) =
            coingecko_request(&[sym("BTCUSDT"), sym("AAPL"), sym("BTC-USD"), sym("ETHUSDT")])
                .unwrap();
        assert_eq!(
            path,
            "/api/v3/simple/price?ids=bitcoin,ethereum&vs_currencies=usd&include_24hr_change=true&include_last_updated_at=true"
        );
        assert_eq!(pairs.len(), 3);
        assert!(coingecko_request(&[sym("AAPL")]).is_none());
    }

    #[test]
    fn parses_the_documented_answer() {
        let body = r#"{"bitcoin":{"usd":67187.3358936566,"usd_market_cap":1317802988326.25,"usd_24h_vol":31260929299.5248,"usd_24h_change":3.63727894677354,"last_updated_at":1711356300}}"#;
        let now = chrono::Utc::now();
        let pairs = vec![
            (sym("BTCUSDT"), "bitcoin", "usd"),
            (sym("ETHUSDT"), "ethereum", "usd"),
        ];
        let quotes = parse_coingecko(body, &pairs, now).unwrap();
        assert_eq!(quotes.len(), 1);
        let q = &quotes[0];
        assert_eq!(q.symbol, sym("BTCUSDT"));
        assert_eq!(q.price, 67187.3358936566);
        assert_eq!(q.change_percent, Some(3.63727894677354));
        assert_eq!(q.volume, None);
        assert_eq!(q.timestamp.timestamp(), 1711356300);
        assert!(parse_coingecko("[]", &pairs, now).is_err());
    }

    #[test]
    fn stock_requests_and_the_documented_global_quote() {
        assert!(is_stock(&sym("AAPL")));
        assert!(is_stock(&sym("BRK.B")));
        assert!(!is_stock(&sym("BTCUSDT")));
        assert!(!is_stock(&sym("EUR/USD")));
        let reqs = alphavantage_requests(&[sym("EUR/USD"), sym("IBM")], "k");
        assert_eq!(
            reqs,
            vec![(
                "/query?function=GLOBAL_QUOTE&symbol=IBM&apikey=k".to_owned(),
                sym("IBM")
            )]
        );
        let body = r#"{"Global Quote":{"01. symbol":"IBM","02. open":"133.5900","03. high":"134.8900","04. low":"133.1400","05. price":"134.2400","06. volume":"3436541","07. latest trading day":"2023-02-22","08. previous close":"133.2000","09. change":"1.0400","10. change percent":"0.7808%"}}"#;
        let now = chrono::Utc::now();
        let q = parse_alphavantage(body, &sym("IBM"), now).unwrap().unwrap();
        assert_eq!(
            (q.price, q.high, q.low),
            (134.24, Some(134.89), Some(133.14))
        );
        assert_eq!(
            (q.volume, q.change, q.change_percent),
            (Some(3436541.0), Some(1.04), Some(0.7808))
        );
        assert_eq!(q.timestamp, now);
        assert!(
            parse_alphavantage(r#"{"Global Quote":{}}"#, &sym("IBM"), now)
                .unwrap()
                .is_none()
        );
        assert!(alphavantage_rate_limited(
            r#"{"Note":"Thank you for using Alpha Vantage!"}"#
        ));
        assert!(!alphavantage_rate_limited(body));
    }

    #[test]
    fn fx_requests_and_the_documented_answer() {
        assert_eq!(fx_pair(&sym("USD/CAD")), Some(("USD".into(), "CAD".into())));
        assert_eq!(fx_pair(&sym("BTC/USDT")), None);
        assert_eq!(fx_pair(&sym("AAPL")), None);
        let reqs = exchangerate_requests(
            &[sym("USD/CAD"), sym("AAPL"), sym("EUR/USD"), sym("USD/CHF")],
            "k",
        );
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].0, "/v6/k/latest/EUR");
        assert_eq!(reqs[1].0, "/v6/k/latest/USD");
        assert_eq!(reqs[1].1.len(), 2);
        let body = include_str!("../test_data/exchangerate_latest_usd.json");
        let wants = vec![
            (sym("USD/CAD"), "CAD".to_owned()),
            (sym("USD/XXX"), "XXX".to_owned()),
        ];
        let quotes = parse_exchangerate(body, &wants, chrono::Utc::now()).unwrap();
        assert_eq!(quotes.len(), 1);
        assert_eq!(quotes[0].price, 1.3168);
        assert_eq!(quotes[0].timestamp.timestamp(), 1585267200);
        let err = parse_exchangerate(
            r#"{"result":"error","error-type":"invalid-key"}"#,
            &wants,
            chrono::Utc::now(),
        );
        assert!(err.unwrap_err().to_string().contains("invalid-key"));
    }
}
