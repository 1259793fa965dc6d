//! The symbol alias table: the names existing clients use (`BTC`, `BTC/USD`) → the feeds' symbols (`BTCUSDT`).
//!
//! Resolution, first match wins: an explicit `gateway.compat.aliases` entry;
//! a crypto base of `gateway.compat.crypto_bases`, bare (`BTC`) or against the
//! dollar (`BTC/USD`), becomes the base followed by
//! `gateway.compat.usd_suffix` (`BTCUSDT`); anything else is itself. Replies and
//! payloads keep the name the client used; only the lookup goes through here.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tickstream_bus::Redis;
use tickstream_model::{Symbol, SymbolError};

use super::CompatSection;

/// How long the served-symbol set read from the heartbeats is reused before it is read again.
const SERVED_REFRESH: Duration = Duration::from_secs(2);

/// The symbols the feeds serve under their own names (their heartbeats' lists), so an alias
/// never hides a symbol a feed really publishes (Twelve Data's `BTC/USD` stays Twelve Data's).
#[derive(Default)]
pub struct ServedSymbols {
    /// The last read and when it was made.
    cache: Mutex<Option<(Instant, Arc<HashSet<String>>)>>,
}

impl ServedSymbols {
    /// The served symbols, from a read at most [`SERVED_REFRESH`] old; the last known set while Redis fails.
    pub async fn get(&self, redis: &Redis) -> Arc<HashSet<String>> {
        let cached = self.cache.lock().ok().and_then(|c| c.clone());
        if let Some((at, set)) = &cached {
            if at.elapsed() < SERVED_REFRESH {
                return set.clone();
            }
        }
        match tokio::time::timeout(Duration::from_secs(1), redis.heartbeats()).await {
            Ok(Ok(heartbeats)) => {
                let set: Arc<HashSet<String>> =
                    Arc::new(heartbeats.into_iter().flat_map(|hb| hb.symbols).collect());
                if let Ok(mut c) = self.cache.lock() {
                    *c = Some((Instant::now(), set.clone()));
                }
                set
            }
            _ => cached.map(|(_, set)| set).unwrap_or_default(),
        }
    }
}

/// The alias table as the gateway applies it everywhere (`/ws`, Socket.IO profiles, the
/// plain streams, REST): never over a symbol a feed serves under its own name.
pub struct Resolver<'a> {
    /// The table.
    cfg: &'a CompatSection,
    /// What the feeds announce ([`ServedSymbols::get`]).
    served: &'a HashSet<String>,
}

impl<'a> Resolver<'a> {
    /// The table of `cfg`, deferring to the `served` symbols.
    pub fn new(cfg: &'a CompatSection, served: &'a HashSet<String>) -> Self {
        Self { cfg, served }
    }

    /// Resolves one client-supplied name to the symbol a feed publishes.
    pub fn resolve(&self, raw: &str) -> Result<Symbol, SymbolError> {
        let sym = Symbol::parse(raw)?;
        Ok(self.target(&sym).unwrap_or(sym))
    }

    /// The feed symbol behind `sym` when it is an alias here (`None`: served as itself).
    pub fn target(&self, sym: &Symbol) -> Option<Symbol> {
        if self.served.contains(sym.as_str()) {
            return None;
        }
        resolve_symbol(self.cfg, sym)
    }

    /// Whether `sym` could be an alias at all (before asking which symbols are served).
    pub fn may_alias(cfg: &CompatSection, sym: &Symbol) -> bool {
        resolve_symbol(cfg, sym).is_some()
    }
}

/// Resolves one name by the table alone (the served symbols not considered; see [`Resolver`]).
pub fn resolve(cfg: &CompatSection, raw: &str) -> Result<Symbol, SymbolError> {
    let sym = Symbol::parse(raw)?;
    Ok(resolve_symbol(cfg, &sym).unwrap_or(sym))
}

/// The alias target of an already normalized symbol by the table alone, if it is an alias.
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
    fn a_served_symbol_is_never_an_alias() {
        let cfg = CompatSection::default();
        let served: HashSet<String> = ["BTC/USD".to_owned()].into();
        let r = Resolver::new(&cfg, &served);
        assert_eq!(r.resolve("btc/usd").unwrap().as_str(), "BTC/USD");
        assert_eq!(r.resolve("BTC").unwrap().as_str(), "BTCUSDT");
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
