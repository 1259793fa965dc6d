//! Timestamps in the contract's form: RFC 3339, UTC, `Z`, at least milliseconds.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// Formats with milliseconds, or finer when the upstream gave finer (Coinbase gives µs).
pub fn format(t: &DateTime<Utc>) -> String {
    let nanos = t.timestamp_subsec_nanos() % 1_000_000_000;
    let precision = if nanos % 1_000_000 == 0 {
        SecondsFormat::Millis
    } else if nanos % 1_000 == 0 {
        SecondsFormat::Micros
    } else {
        SecondsFormat::Nanos
    };
    t.to_rfc3339_opts(precision, true)
}

/// Parses any RFC 3339 offset and converts to UTC, so third-party publishers need not send `Z`.
pub fn parse(raw: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(raw).map(|t| t.with_timezone(&Utc))
}

/// The current time cut to milliseconds, for our own timestamps (health, heartbeats).
pub fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    from_millis(now.timestamp_millis()).unwrap_or(now)
}

/// Converts upstream epoch milliseconds (Binance `E`, Finnhub `t`) into a UTC time.
pub fn from_millis(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// serde adapter so `Tick::timestamp` reads and writes the contract's string form.
pub mod serde_rfc3339 {
    use super::*;

    /// Writes the contract's string form.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    /// Reads any RFC 3339 string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse(&raw).map_err(|e| serde::de::Error::custom(format_args!("timestamp {raw:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_least_millis() {
        let t = parse("2025-11-01T10:30:00Z").unwrap();
        assert_eq!(format(&t), "2025-11-01T10:30:00.000Z");
        let t = parse("2025-11-01T10:30:00.123Z").unwrap();
        assert_eq!(format(&t), "2025-11-01T10:30:00.123Z");
        let t = parse("2022-10-19T23:28:22.061769Z").unwrap();
        assert_eq!(format(&t), "2022-10-19T23:28:22.061769Z");
        let t = parse("2025-11-01T12:30:00.5+02:00").unwrap();
        assert_eq!(format(&t), "2025-11-01T10:30:00.500Z");
    }

    #[test]
    fn rejects_naive_and_garbage() {
        assert!(parse("2025-11-01T10:30:00").is_err());
        assert!(parse("yesterday").is_err());
    }

    #[test]
    fn millis() {
        assert_eq!(
            format(&from_millis(1_672_515_782_136).unwrap()),
            "2022-12-31T19:43:02.136Z"
        );
    }
}
