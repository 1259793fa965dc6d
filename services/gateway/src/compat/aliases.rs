//! The symbol alias table: the names existing clients use (`BTC`, `BTC/USD`) → the feeds' symbols (`BTCUSDT`).
//!
//! Resolution, first match wins: an explicit `gateway.compat.aliases` entry;
//! a crypto base of `gateway.compat.crypto_bases`, bare (`BTC`) or against the
//! dollar (`BTC/USD`), becomes the base followed by
//! `gateway.compat.usd_suffix` (`BTCUSDT`); anything else is itself. Replies and
//! payloads keep the name the client used; only the lookup goes through here.

use tickstream_model::{Symbol, SymbolError};

use super::CompatSection;

/// Resolves one client-supplied name to the symbol a feed publishes.
pub fn resolve(cfg: &CompatSection, raw: &str) -> Result<Symbol, SymbolError> {
    let sym = Symbol::parse(raw)?;
    Ok(resolve_symbol(cfg, &sym).unwrap_or(sym))
}

/// The alias target of an already normalized symbol, if it is an alias.
pub fn resolve_symbol(cfg: &CompatSection, sym: &Symbol) -> Option<Symbol> {
    let name = sym.as_str();
    if let Some(to) = cfg.aliases.get(name) {
        return Symbol::parse(to).ok();
    }
    let base = name.strip_suffix("/USD").unwrap_or(name);
    if cfg
        .crypto_bases
        .iter()
        .any(|b| b.eq_ignore_ascii_case(base))
    {
        let target = format!("{}{}", base, cfg.usd_suffix);
        if target != name {
            return Symbol::parse(&target).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(cfg: &CompatSection, s: &str) -> String {
        resolve(cfg, s).unwrap().as_str().to_owned()
    }

    #[test]
    fn defaults_map_bare_and_dollar_bases() {
        let cfg = CompatSection::default();
        assert_eq!(r(&cfg, "BTC"), "BTCUSDT");
        assert_eq!(r(&cfg, "eth"), "ETHUSDT");
        assert_eq!(r(&cfg, "ADA"), "ADAUSDT");
        assert_eq!(r(&cfg, "BTC/USD"), "BTCUSDT");
        assert_eq!(r(&cfg, "BTCUSD"), "BTCUSD");
        assert_eq!(r(&cfg, "BTCUSDT"), "BTCUSDT");
        assert_eq!(r(&cfg, "AAPL"), "AAPL");
        assert_eq!(r(&cfg, "EUR/USD"), "EUR/USD");
        assert!(resolve(&cfg, "BAD SYM").is_err());
    }

    #[test]
    fn explicit_entries_and_suffix_win() {
        let mut cfg = CompatSection {
            usd_suffix: "-USD".to_owned(),
            ..CompatSection::default()
        };
        assert_eq!(r(&cfg, "BTC/USD"), "BTC-USD");
        cfg.aliases.insert("GOLD".into(), "XAU/USD".into());
        cfg.aliases.insert("BTC".into(), "BTCUSDC".into());
        assert_eq!(r(&cfg, "gold"), "XAU/USD");
        assert_eq!(r(&cfg, "BTC"), "BTCUSDC");
    }

    #[test]
    fn bad_alias_keys_fail_naming_the_key() {
        let mut cfg = CompatSection::default();
        cfg.aliases.insert("btc".into(), "BTCUSDT".into());
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("gateway.compat.aliases.btc"), "{e}");
        let mut cfg = CompatSection::default();
        cfg.aliases.insert("X".into(), "NOT VALID".into());
        assert!(cfg.validate().is_err());
        let cfg = CompatSection {
            dashboard_market_interval_ms: 0,
            ..CompatSection::default()
        };
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("dashboard_market_interval_ms"), "{e}");
    }
}
