//! Instrument names as clients, Redis keys and upstreams see them once normalized.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest symbol accepted; bounds Redis key sizes and client-supplied input.
pub const MAX_SYMBOL_LEN: usize = 32;

/// Why a string is not a usable symbol, so callers can tell the client exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    /// Empty strings would produce the channel `ticks:` that matches nothing.
    #[error("symbol is empty")]
    Empty,
    /// Long names are refused to bound memory and key sizes.
    #[error("symbol is longer than {MAX_SYMBOL_LEN} characters")]
    TooLong,
    /// Only `[A-Z0-9._/-]` keeps symbols safe in keys, URLs and logs.
    #[error("symbol contains {0:?}; allowed are A-Z, 0-9 and . _ / -")]
    BadChar(char),
}

/// A validated, uppercase instrument name (`BTCUSDT`, `BTC-USD`, `EUR/USD`).
///
/// Construction goes through [`Symbol::parse`], so holding a `Symbol` proves
/// it is safe to embed in a Redis key or a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(Box<str>);

impl Symbol {
    /// Normalizes case (lookups are case-insensitive) and validates the charset.
    pub fn parse(raw: &str) -> Result<Self, SymbolError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(SymbolError::Empty);
        }
        if trimmed.len() > MAX_SYMBOL_LEN {
            return Err(SymbolError::TooLong);
        }
        let mut out = String::with_capacity(trimmed.len());
        for c in trimmed.chars() {
            let up = c.to_ascii_uppercase();
            match up {
                'A'..='Z' | '0'..='9' | '.' | '_' | '/' | '-' => out.push(up),
                other => return Err(SymbolError::BadChar(other)),
            }
        }
        Ok(Self(out.into_boxed_str()))
    }

    /// Borrows the normalized name for keys and JSON.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses a comma separated list, as in `SYMBOLS=A,B` or `?symbols=A,B`, skipping blanks.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, (String, SymbolError)> {
        let mut out: Vec<Self> = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let sym = Self::parse(part).map_err(|e| (part.to_owned(), e))?;
            if !out.contains(&sym) {
                out.push(sym);
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Symbol {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Symbol {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Symbol {
    type Err = SymbolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Symbol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalizes_table() {
        for (input, want) in [
            ("BTCUSDT", "BTCUSDT"),
            ("btcusdt", "BTCUSDT"),
            (" eth-usd ", "ETH-USD"),
            ("EUR/USD", "EUR/USD"),
            ("BRK.B", "BRK.B"),
            ("A_1", "A_1"),
        ] {
            assert_eq!(Symbol::parse(input).unwrap().as_str(), want, "{input}");
        }
    }

    #[test]
    fn rejects_table() {
        assert_eq!(Symbol::parse(""), Err(SymbolError::Empty));
        assert_eq!(Symbol::parse("   "), Err(SymbolError::Empty));
        assert_eq!(Symbol::parse(&"A".repeat(33)), Err(SymbolError::TooLong));
        assert!(Symbol::parse(&"A".repeat(32)).is_ok());
        assert_eq!(Symbol::parse("BTC USDT"), Err(SymbolError::BadChar(' ')));
        assert_eq!(Symbol::parse("BTC:*"), Err(SymbolError::BadChar(':')));
        assert_eq!(Symbol::parse("ÄPFEL"), Err(SymbolError::BadChar('Ä')));
    }

    #[test]
    fn list_dedups_and_reports_offender() {
        let l = Symbol::parse_list("btcusdt, ETHUSDT,,BTCUSDT").unwrap();
        assert_eq!(l.len(), 2);
        let err = Symbol::parse_list("BTCUSDT,bad*").unwrap_err();
        assert_eq!(err.0, "bad*");
    }

    proptest::proptest! {
        /// `parse_list` accepts exactly the lists whose every non-blank part is a
        /// symbol, dedups case-insensitively, keeps first-seen order, and its
        /// output parses back from its own `,`-join.
        #[test]
        fn parse_list_matches_parse_of_each_part(
            parts in proptest::collection::vec("[ a-zA-Z0-9._/:*-]{0,6}", 0..8),
            sep in "[ ]{0,2},[ ]{0,2}",
        ) {
            let raw = parts.join(&sep);
            let mut want: Vec<Symbol> = Vec::new();
            let mut first_bad: Option<String> = None;
            for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match Symbol::parse(part) {
                    Ok(s) if first_bad.is_none() => {
                        if !want.contains(&s) {
                            want.push(s);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        first_bad.get_or_insert_with(|| part.to_owned());
                    }
                }
            }
            match Symbol::parse_list(&raw) {
                Ok(list) => {
                    proptest::prop_assert!(first_bad.is_none(), "accepted {:?}", raw);
                    let joined: Vec<&str> = list.iter().map(Symbol::as_str).collect();
                    proptest::prop_assert_eq!(Symbol::parse_list(&joined.join(",")).unwrap(), list.clone());
                    proptest::prop_assert_eq!(list, want);
                }
                Err((part, _)) => proptest::prop_assert_eq!(Some(part), first_bad),
            }
        }
    }

    #[test]
    fn serde_validates() {
        let s: Symbol = serde_json::from_str("\"eur/usd\"").unwrap();
        assert_eq!(s.as_str(), "EUR/USD");
        assert!(serde_json::from_str::<Symbol>("\"a b\"").is_err());
        assert!(serde_json::from_str::<Symbol>("42").is_err());
    }
}
