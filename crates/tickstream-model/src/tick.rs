//! The normalized tick and the rules that make one valid.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::{Symbol, SymbolError};

/// Why bytes are not a valid tick; the gateway counts these and skips the message.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// Not JSON, wrong types or missing required fields.
    #[error("invalid tick JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A field parsed but breaks a rule of the contract.
    #[error("invalid tick field `{field}`: {reason}")]
    Field {
        /// The JSON name of the offending field.
        field: &'static str,
        /// What rule it broke.
        reason: String,
    },
}

/// One price observation for one symbol from one source — the contract's JSON.
///
/// ```json
/// {"symbol":"BTCUSDT","price":43250.5,"volume":1234567.89,"high":43500.0,"low":42800.0,
///  "change":450.5,"changePercent":1.05,"bid":43250.4,"ask":43250.6,
///  "timestamp":"2025-11-01T10:30:00.123Z","source":"binance","seq":1842}
/// ```
///
/// Optional fields are `None` when the upstream does not give them; they are
/// omitted from the JSON rather than invented.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    /// Normalized instrument name; also the Redis channel suffix.
    pub symbol: Symbol,
    /// Last traded (or quoted) price; always present and positive.
    pub price: f64,
    /// Rolling 24 h (or day) volume, when the upstream reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<f64>,
    /// Rolling 24 h (or day) high, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    /// Rolling 24 h (or day) low, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    /// Absolute change over the window, when reported or derivable from an open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<f64>,
    /// Percent change over the window (1.05 means +1.05 %).
    #[serde(
        default,
        rename = "changePercent",
        skip_serializing_if = "Option::is_none"
    )]
    pub change_percent: Option<f64>,
    /// Best bid, when the upstream streams a quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid: Option<f64>,
    /// Best ask, when the upstream streams a quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<f64>,
    /// The upstream's event time (not our receive time), so latency is measurable.
    #[serde(with = "crate::time::serde_rfc3339")]
    pub timestamp: DateTime<Utc>,
    /// Which ingestor produced it (`binance`, `sim`, `binance-rest`, ...).
    pub source: String,
    /// Per-symbol, strictly increasing across restarts; lets clients drop stale ticks.
    pub seq: u64,
}

/// Longest accepted `source`; it becomes a metric label, so it must stay small.
pub const MAX_SOURCE_LEN: usize = 32;

impl Tick {
    /// Parses and validates bytes from Redis or a third-party publisher.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TickError> {
        let tick: Tick = serde_json::from_slice(bytes)?;
        tick.validate()?;
        Ok(tick)
    }

    /// Serializes to the contract's JSON; infallible because every field is plain data.
    pub fn to_json(&self) -> String {
        // Serializing this struct cannot fail: no maps with non-string keys, no
        // non-finite floats once validated (serde_json writes them as null).
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks the contract's rules that types alone cannot express.
    pub fn validate(&self) -> Result<(), TickError> {
        fn bad(field: &'static str, reason: impl Into<String>) -> TickError {
            TickError::Field {
                field,
                reason: reason.into(),
            }
        }
        if !self.price.is_finite() || self.price <= 0.0 {
            return Err(bad(
                "price",
                format!("must be a positive number, got {}", self.price),
            ));
        }
        let non_negative = [
            ("volume", self.volume),
            ("high", self.high),
            ("low", self.low),
            ("bid", self.bid),
            ("ask", self.ask),
        ];
        for (field, value) in non_negative {
            if let Some(v) = value {
                if !v.is_finite() || v < 0.0 {
                    return Err(bad(
                        field,
                        format!("must be a non-negative number, got {v}"),
                    ));
                }
            }
        }
        for (field, value) in [
            ("change", self.change),
            ("changePercent", self.change_percent),
        ] {
            if let Some(v) = value {
                if !v.is_finite() {
                    return Err(bad(field, "must be a finite number"));
                }
            }
        }
        // RFC 3339 has four-digit years; an offset can push a parsed time outside
        // them, and its JSON would then not parse back (found by fuzzing).
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

/// Checks a source name; it is used as a Prometheus label value.
pub fn validate_source(source: &str) -> Result<(), String> {
    if source.is_empty() || source.len() > MAX_SOURCE_LEN {
        return Err(format!("must be 1..={MAX_SOURCE_LEN} characters"));
    }
    if !source
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err("allowed are a-z, 0-9, - and _".to_owned());
    }
    Ok(())
}

impl From<SymbolError> for TickError {
    fn from(e: SymbolError) -> Self {
        TickError::Field {
            field: "symbol",
            reason: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DESIGN_EXAMPLE: &str = r#"{"symbol":"BTCUSDT","price":43250.5,"volume":1234567.89,"high":43500.0,"low":42800.0,
 "change":450.5,"changePercent":1.05,"bid":43250.4,"ask":43250.6,
 "timestamp":"2025-11-01T10:30:00.123Z","source":"binance","seq":1842}"#;

    #[test]
    fn design_example_round_trips() {
        let t = Tick::from_json(DESIGN_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(t.symbol.as_str(), "BTCUSDT");
        assert_eq!(t.change_percent, Some(1.05));
        assert_eq!(t.seq, 1842);
        let json = t.to_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let want: serde_json::Value = serde_json::from_str(DESIGN_EXAMPLE).unwrap();
        assert_eq!(v, want);
    }

    #[test]
    fn absent_fields_stay_absent() {
        let raw = r#"{"symbol":"AAPL","price":190.1,"timestamp":"2025-11-01T10:30:00.000Z","source":"finnhub","seq":1}"#;
        let t = Tick::from_json(raw.as_bytes()).unwrap();
        assert_eq!(t.volume, None);
        assert_eq!(t.bid, None);
        let v: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
        let obj = v.as_object().unwrap();
        for absent in [
            "volume",
            "high",
            "low",
            "change",
            "changePercent",
            "bid",
            "ask",
        ] {
            assert!(!obj.contains_key(absent), "{absent} was invented");
        }
    }

    #[test]
    fn null_optional_fields_are_absent() {
        let raw = r#"{"symbol":"AAPL","price":1,"volume":null,"timestamp":"2025-11-01T10:30:00Z","source":"sim","seq":1}"#;
        assert_eq!(Tick::from_json(raw.as_bytes()).unwrap().volume, None);
    }

    #[test]
    fn rejects_table() {
        let base = serde_json::json!({"symbol":"AAPL","price":1.0,"timestamp":"2025-11-01T10:30:00Z","source":"sim","seq":1});
        let cases: Vec<(&str, serde_json::Value)> = vec![
            ("price", serde_json::json!(0.0)),
            ("price", serde_json::json!(-1.0)),
            ("price", serde_json::json!("1.0")),
            ("volume", serde_json::json!(-5.0)),
            ("symbol", serde_json::json!("BAD SYMBOL")),
            ("symbol", serde_json::json!("")),
            ("timestamp", serde_json::json!("2025-11-01 10:30")),
            ("timestamp", serde_json::json!(1_700_000_000)),
            ("source", serde_json::json!("Binance!")),
            ("source", serde_json::json!("")),
            ("seq", serde_json::json!(-1)),
            ("seq", serde_json::json!("7")),
            // UTC leaves RFC 3339's years: the JSON would not parse back.
            ("timestamp", serde_json::json!("9999-12-31T23:59:59-23:59")),
            ("timestamp", serde_json::json!("0000-01-01T00:00:00+01:00")),
        ];
        for (field, value) in cases {
            let mut v = base.clone();
            v[field] = value.clone();
            let r = Tick::from_json(v.to_string().as_bytes());
            assert!(r.is_err(), "{field}={value} accepted");
        }
        for missing in ["symbol", "price", "timestamp", "source", "seq"] {
            let mut v = base.clone();
            v.as_object_mut().unwrap().remove(missing);
            assert!(
                Tick::from_json(v.to_string().as_bytes()).is_err(),
                "{missing}"
            );
        }
        assert!(Tick::from_json(b"not json").is_err());
        assert!(Tick::from_json(b"{\"symbol\":").is_err());
    }

    fn arb_opt() -> impl Strategy<Value = Option<f64>> {
        prop::option::of(0.0f64..1e12)
    }

    prop_compose! {
        fn arb_tick()(
            symbol in "[A-Z0-9._/-]{1,32}",
            price in 1e-9f64..1e12,
            volume in arb_opt(), high in arb_opt(), low in arb_opt(),
            bid in arb_opt(), ask in arb_opt(),
            change in prop::option::of(-1e9f64..1e9),
            change_percent in prop::option::of(-1e3f64..1e3),
            millis in 0i64..4_102_444_800_000,
            source in "[a-z0-9_-]{1,32}",
            seq in any::<u64>(),
        ) -> Tick {
            Tick {
                symbol: Symbol::parse(&symbol).unwrap(),
                price, volume, high, low, change, change_percent, bid, ask,
                timestamp: crate::time::from_millis(millis).unwrap(),
                source, seq,
            }
        }
    }

    proptest! {
        #[test]
        fn round_trip_is_identity(t in arb_tick()) {
            let back = Tick::from_json(t.to_json().as_bytes()).unwrap();
            prop_assert_eq!(back, t);
        }

        #[test]
        fn symbol_parse_is_idempotent_and_safe(s in "\\PC{0,40}") {
            if let Ok(sym) = Symbol::parse(&s) {
                prop_assert!(sym.as_str().len() <= 32);
                prop_assert!(sym.as_str().bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"._/-".contains(&b)));
                prop_assert_eq!(Symbol::parse(sym.as_str()).unwrap(), sym);
            }
        }
    }
}
