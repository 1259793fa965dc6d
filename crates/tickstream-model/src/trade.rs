//! The normalized trade: one execution on a venue, published on `trades:{SYMBOL}`.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::tick::{validate_source, TickError};
use crate::Symbol;

/// The aggressor side of a trade, when the venue says it (never guessed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The taker bought (lifted the ask).
    Buy,
    /// The taker sold (hit the bid).
    Sell,
}

/// One trade, as every producer publishes it and every client receives it.
///
/// ```json
/// {"symbol":"BTCUSDT","price":43250.5,"size":0.012,"side":"buy","trade_id":"12345",
///  "timestamp":"2025-11-01T10:30:00.123Z","source":"binance","seq":77}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    /// Normalized instrument name; also the channel suffix.
    pub symbol: Symbol,
    /// Execution price; positive.
    pub price: f64,
    /// Executed quantity in the base asset (shares, coins); non-negative.
    pub size: f64,
    /// Aggressor side, when the venue reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    /// The venue's trade id, as a string (venues use numbers and strings alike).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_id: Option<String>,
    /// The venue's execution time (not our receive time).
    #[serde(with = "crate::time::serde_rfc3339")]
    pub timestamp: DateTime<Utc>,
    /// Which ingestor produced it.
    pub source: String,
    /// Per-symbol trade sequence, strictly increasing across restarts (separate from the ticks' seq).
    pub seq: u64,
}

/// Longest accepted `trade_id`; bounds what a producer can make clients store.
pub const MAX_TRADE_ID_LEN: usize = 64;

impl Trade {
    /// Parses and validates bytes from Redis or a third-party publisher.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TickError> {
        let trade: Trade = serde_json::from_slice(bytes)?;
        trade.validate()?;
        Ok(trade)
    }

    /// Serializes to the contract's JSON; infallible because every field is plain data.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks the rules types alone cannot express.
    pub fn validate(&self) -> Result<(), TickError> {
        let bad = |field: &'static str, reason: String| TickError::Field { field, reason };
        if !self.price.is_finite() || self.price <= 0.0 {
            return Err(bad(
                "price",
                format!("must be a positive number, got {}", self.price),
            ));
        }
        if !self.size.is_finite() || self.size < 0.0 {
            return Err(bad(
                "size",
                format!("must be a non-negative number, got {}", self.size),
            ));
        }
        if self
            .trade_id
            .as_ref()
            .is_some_and(|id| id.is_empty() || id.len() > MAX_TRADE_ID_LEN)
        {
            return Err(bad(
                "trade_id",
                format!("must be 1..={MAX_TRADE_ID_LEN} characters"),
            ));
        }
        let year = self.timestamp.year();
        if !(0..=9999).contains(&year) {
            return Err(bad(
                "timestamp",
                format!("year {year} is outside RFC 3339's 0000..=9999"),
            ));
        }
        validate_source(&self.source).map_err(|r| bad("source", r))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"symbol":"BTCUSDT","price":43250.5,"size":0.012,"side":"buy","trade_id":"12345","timestamp":"2025-11-01T10:30:00.123Z","source":"binance","seq":77}"#;

    #[test]
    fn the_documented_example_round_trips() {
        let t = Trade::from_json(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(t.side, Some(Side::Buy));
        assert_eq!(t.trade_id.as_deref(), Some("12345"));
        let back: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
        let want: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        assert_eq!(back, want);
    }

    #[test]
    fn absent_side_and_id_stay_absent() {
        let raw = r#"{"symbol":"AAPL","price":190.1,"size":100,"timestamp":"2025-11-01T10:30:00.123Z","source":"finnhub","seq":1}"#;
        let t = Trade::from_json(raw.as_bytes()).unwrap();
        assert_eq!((t.side, t.trade_id.clone()), (None, None));
        let json = t.to_json();
        assert!(
            !json.contains("side") && !json.contains("trade_id"),
            "{json}"
        );
    }

    #[test]
    fn rule_breakers_are_refused() {
        let cases = [
            (r#""price":0"#, "price"),
            (r#""price":-1"#, "price"),
            (r#""size":-0.5"#, "size"),
            (r#""side":"hold""#, "variant"),
            (r#""trade_id":"""#, "trade_id"),
            (r#""source":"Bad Source""#, "source"),
        ];
        for (field, needle) in cases {
            let key = field.split(':').next().unwrap_or_default();
            let mut v: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
            let patch: serde_json::Value = serde_json::from_str(&format!("{{{field}}}")).unwrap();
            v[key.trim_matches('"')] = patch[key.trim_matches('"')].clone();
            let e = Trade::from_json(v.to_string().as_bytes())
                .expect_err(field)
                .to_string();
            assert!(e.contains(needle), "{field}: {e}");
        }
    }
}
