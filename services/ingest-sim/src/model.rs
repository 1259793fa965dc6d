//! The price model: zero-drift geometric Brownian motion per symbol, with
//! running session statistics and a quote around each price.
//!
//! Pure and synchronous: no clock, no I/O, no Redis. The caller passes the
//! generation time and gets [`Tick`]s back (and, on request, the [`Trade`]
//! behind each tick), so the model is unit-tested here and a seeded run is
//! reproducible. Per tick the work is one normal draw,
//! one uniform draw, one `exp` and a few multiplications, so one core makes
//! millions of ticks per second and the publish round trip stays the limit.
//!
//! Each step is `S ← S·exp(−σ²·dt/2 + σ·√dt·Z)` with `Z ~ N(0, 1)`, `σ` the
//! symbol's annualized volatility and `dt` the nominal time between two ticks
//! of that symbol (symbols ÷ total rate), so the realized volatility per
//! wall-clock hour is the same at 4 ticks/s and at 50,000 ticks/s.
//!
//! Each tick is caused by one trade: at the tick's price, of the size the
//! tick's volume grew by (uniform around the class's mean trade notional), on
//! the side that moved the price (a positive draw `Z` is a buyer lifting it,
//! otherwise a seller hitting it). Trades take no extra random draws, so the
//! price paths are the same with or without them, and a seed fixes both.

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use tickstream_model::{Side, Symbol, Tick, Trade};

/// The `source` of every tick this service makes.
pub const SOURCE: &str = "sim";

/// Seconds in a (Julian) year: the unit of annualized volatility.
const SECONDS_PER_YEAR: f64 = 365.25 * 86_400.0;

/// Length of the statistics window: open/high/low/volume restart after it,
/// like an exchange's 24 h ticker.
pub const SESSION_HOURS: i64 = 24;

/// Broad kind of instrument; decides volatility, spread and trade sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetClass {
    /// Crypto pairs (`BTCUSDT`, `ETH-USD`).
    Crypto,
    /// Equities and ETFs (`AAPL`).
    Stock,
    /// Currency pairs (`EUR/USD`).
    Fx,
}

impl AssetClass {
    /// Annualized volatility: majors' typical realized vol (crypto ~60 %,
    /// large-cap stocks ~25 %, G10 FX ~7 %).
    pub fn annual_vol(self) -> f64 {
        match self {
            AssetClass::Crypto => 0.60,
            AssetClass::Stock => 0.25,
            AssetClass::Fx => 0.07,
        }
    }

    /// Half the bid/ask spread as a fraction of price (0.5 bp, 1 bp, 0.3 bp).
    fn half_spread(self) -> f64 {
        match self {
            AssetClass::Crypto => 0.5e-4,
            AssetClass::Stock => 1.0e-4,
            AssetClass::Fx => 0.3e-4,
        }
    }

    /// Mean notional of one simulated trade, in quote currency.
    fn mean_trade_notional(self) -> f64 {
        match self {
            AssetClass::Crypto => 5_000.0,
            AssetClass::Stock => 20_000.0,
            AssetClass::Fx => 1_000_000.0,
        }
    }

    /// Extra price decimals over the generic rule (FX quotes in pips/10).
    fn extra_decimals(self) -> i32 {
        match self {
            AssetClass::Fx => 1,
            AssetClass::Crypto | AssetClass::Stock => 0,
        }
    }
}

/// What a symbol looks like at the start of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// Asset class, from the symbol's shape and the tables below.
    pub class: AssetClass,
    /// A realistic starting price (late-2024 levels) or a deterministic one from a hash.
    pub start_price: f64,
}

/// Crypto assets and their USD prices; also usable as quote currencies (`ETHBTC`).
const CRYPTO_USD: &[(&str, f64)] = &[
    ("BTC", 95_000.0),
    ("ETH", 3_500.0),
    ("SOL", 180.0),
    ("BNB", 650.0),
    ("ADA", 0.75),
    ("XRP", 2.2),
    ("DOGE", 0.35),
    ("AVAX", 35.0),
    ("DOT", 6.5),
    ("LINK", 20.0),
    ("LTC", 100.0),
    ("TRX", 0.25),
    ("TON", 5.5),
    ("MATIC", 0.5),
    ("POL", 0.5),
    ("SHIB", 0.000_02),
];

/// Quote currencies of crypto pairs and their USD value, tried in this order
/// (`USDT` before `USD`, so `BTCUSDT` is `BTC` quoted in `USDT`).
const CRYPTO_QUOTES: &[(&str, f64)] = &[
    ("FDUSD", 1.0),
    ("USDT", 1.0),
    ("USDC", 1.0),
    ("BUSD", 1.0),
    ("USD", 1.0),
    ("EUR", 1.08),
    ("BTC", 95_000.0),
    ("ETH", 3_500.0),
];

/// Fiat currencies and their USD value; any pair of two is an FX rate.
const FIAT_USD: &[(&str, f64)] = &[
    ("USD", 1.0),
    ("EUR", 1.08),
    ("GBP", 1.27),
    ("JPY", 1.0 / 150.0),
    ("CHF", 1.0 / 0.88),
    ("AUD", 0.66),
    ("CAD", 1.0 / 1.36),
    ("NZD", 0.60),
    ("SEK", 0.095),
    ("NOK", 0.092),
    ("CNH", 0.138),
    ("HKD", 0.128),
    ("SGD", 0.74),
    ("MXN", 0.05),
];

/// Well-known equities and ETFs with their USD prices.
const STOCKS: &[(&str, f64)] = &[
    ("AAPL", 230.0),
    ("MSFT", 430.0),
    ("NVDA", 140.0),
    ("GOOGL", 175.0),
    ("GOOG", 176.0),
    ("AMZN", 200.0),
    ("META", 580.0),
    ("TSLA", 250.0),
    ("NFLX", 700.0),
    ("AMD", 140.0),
    ("JPM", 230.0),
    ("V", 300.0),
    ("BRK.B", 460.0),
    ("SPY", 590.0),
    ("QQQ", 510.0),
];

fn lookup(table: &[(&str, f64)], key: &str) -> Option<f64> {
    table.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// FNV-1a of the name mapped to `[0, 1)`: stable across runs, platforms and
/// Rust versions (unlike `DefaultHasher`), so an unknown symbol always starts
/// at the same price.
fn hash_unit(symbol: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in symbol.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A deterministic, plausible price for a symbol no table knows.
fn hashed_price(class: AssetClass, symbol: &str) -> f64 {
    let u = hash_unit(symbol);
    match class {
        AssetClass::Stock => 10.0 * 50f64.powf(u), // $10 .. $500
        AssetClass::Crypto => 0.1 * 10f64.powf(4.0 * u), // 0.1 .. 1000
        AssetClass::Fx => 0.5 + 1.5 * u,           // 0.5 .. 2.0
    }
}

/// Classifies a normalized symbol and picks its starting price.
///
/// `EUR/USD`, `EURUSD`, `GBP-JPY`: FX when both sides are fiat. `BTCUSDT`,
/// `ETH-USD`, `SOL/USDT`, `ETHBTC`: crypto when the quote is a crypto quote
/// currency. Known tickers come from the tables; anything else is a stock (or
/// the class its shape suggests) with a price from a hash of its name.
pub fn profile(symbol: &str) -> Profile {
    let known = |class, start_price| Profile { class, start_price };
    // Explicit separator: BASE/QUOTE, BASE-QUOTE, BASE_QUOTE.
    if let Some(i) = symbol.find(['/', '-', '_']) {
        let (base, quote) = (&symbol[..i], &symbol[i + 1..]);
        if let (Some(b), Some(q)) = (lookup(FIAT_USD, base), lookup(FIAT_USD, quote)) {
            return known(AssetClass::Fx, b / q);
        }
        if let Some(q) = lookup(CRYPTO_QUOTES, quote) {
            return match lookup(CRYPTO_USD, base) {
                Some(b) => known(AssetClass::Crypto, b / q),
                None => known(AssetClass::Crypto, hashed_price(AssetClass::Crypto, symbol)),
            };
        }
        if lookup(CRYPTO_USD, base).is_some() {
            return known(AssetClass::Crypto, hashed_price(AssetClass::Crypto, symbol));
        }
        if symbol.as_bytes().get(i) == Some(&b'/') {
            return known(AssetClass::Fx, hashed_price(AssetClass::Fx, symbol));
        }
    }
    if let Some(p) = lookup(STOCKS, symbol) {
        return known(AssetClass::Stock, p);
    }
    // Six letters of two fiat codes: EURUSD.
    if symbol.len() == 6 {
        let (base, quote) = symbol.split_at(3);
        if let (Some(b), Some(q)) = (lookup(FIAT_USD, base), lookup(FIAT_USD, quote)) {
            return known(AssetClass::Fx, b / q);
        }
    }
    // Concatenated crypto pair: BTCUSDT, ETHBTC.
    for (quote, q) in CRYPTO_QUOTES {
        let Some(base) = symbol.strip_suffix(quote).filter(|b| !b.is_empty()) else {
            continue;
        };
        if let Some(b) = lookup(CRYPTO_USD, base) {
            return known(AssetClass::Crypto, b / q);
        }
        // Stablecoin quotes only exist on crypto venues: PEPEUSDT.
        if *q == 1.0 && *quote != "USD" {
            return known(AssetClass::Crypto, hashed_price(AssetClass::Crypto, symbol));
        }
    }
    known(AssetClass::Stock, hashed_price(AssetClass::Stock, symbol))
}

/// Price decimals for a price level: about five significant digits, 2..=8
/// decimals (BTC 95000.12, ADA 0.75123, EUR/USD 1.08123, USD/JPY 150.123).
pub fn decimals_for(class: AssetClass, price: f64) -> u32 {
    let magnitude = if price > 0.0 && price.is_finite() {
        price.log10().floor() as i32
    } else {
        0
    };
    (4 - magnitude + class.extra_decimals()).clamp(2, 8) as u32
}

/// Rounds to a fixed number of decimals given as `10^decimals`.
fn round_to(value: f64, scale: f64) -> f64 {
    (value * scale).round() / scale
}

/// One simulated instrument: its GBM state and its running session statistics.
#[derive(Debug, Clone)]
struct Instrument {
    /// Cloned into every tick.
    symbol: Symbol,
    /// Decides volatility, spread and trade size.
    class: AssetClass,
    /// Unrounded GBM state; published prices are this rounded, so rounding
    /// never biases the walk.
    exact: f64,
    /// Session open (rounded): the first price of the session or the restored one.
    open: f64,
    /// Session high of published prices.
    high: f64,
    /// Session low of published prices.
    low: f64,
    /// Session volume in base units.
    volume: f64,
    /// Per-step log drift `−σ²·dt/2`: zero expected return, no trend.
    drift: f64,
    /// Per-step log volatility `σ·√dt`.
    diffusion: f64,
    /// `10^decimals`, the price grid.
    scale: f64,
    /// Mean trade size in base units at the price level of the last (re)start.
    mean_size: f64,
    /// Last `seq` handed out; the next tick gets one more.
    last_seq: u64,
    /// Last trade `seq` handed out (trades count apart from ticks).
    last_trade_seq: u64,
    /// Size of the trade behind the last tick (base units, 6 decimals).
    last_size: f64,
    /// Side of the trade behind the last tick.
    last_side: Side,
}

impl Instrument {
    fn new(symbol: Symbol, step_secs: f64) -> Self {
        let Profile { class, start_price } = profile(symbol.as_str());
        let sigma = class.annual_vol();
        let dt = step_secs / SECONDS_PER_YEAR;
        let mut inst = Self {
            symbol,
            class,
            exact: start_price,
            open: start_price,
            high: start_price,
            low: start_price,
            volume: 0.0,
            drift: -0.5 * sigma * sigma * dt,
            diffusion: sigma * dt.sqrt(),
            scale: 1.0,
            mean_size: 0.0,
            last_seq: 0,
            last_trade_seq: 0,
            last_size: 0.0,
            last_side: Side::Buy,
        };
        inst.rebase(start_price);
        inst
    }

    /// Sets the price grid and trade size for a price level (at start or restore).
    fn rebase(&mut self, price: f64) {
        self.scale = 10f64.powi(decimals_for(self.class, price) as i32);
        self.mean_size = self.class.mean_trade_notional() / price;
        self.exact = price;
        self.open = self.round(price);
        self.high = self.open;
        self.low = self.open;
    }

    /// The published form of a price: on the grid, but never rounded to zero.
    fn round(&self, value: f64) -> f64 {
        let r = round_to(value, self.scale);
        if r > 0.0 {
            r
        } else {
            value
        }
    }

    /// Starts a new statistics session at the current price.
    fn new_session(&mut self) {
        self.open = self.round(self.exact);
        self.high = self.open;
        self.low = self.open;
        self.volume = 0.0;
    }

    fn step<R: Rng>(&mut self, rng: &mut R, now: DateTime<Utc>) -> Tick {
        let z: f64 = StandardNormal.sample(rng);
        let next = self.exact * (self.drift + self.diffusion * z).exp();
        // exp of a finite normal draw is finite and positive; guard anyway so
        // a pathological value can never reach the wire.
        if next.is_finite() && next > 0.0 {
            self.exact = next;
        }
        let price = self.round(self.exact);
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        // The trade behind this tick: never rounded to nothing, and the volume is their sum.
        self.last_size = round_to(self.mean_size * 2.0 * rng.random::<f64>(), 1e6).max(1e-6);
        self.last_side = if z > 0.0 { Side::Buy } else { Side::Sell };
        self.volume += self.last_size;
        self.last_seq = self.last_seq.saturating_add(1);

        let unit = 1.0 / self.scale;
        let half = (price * self.class.half_spread()).max(unit);
        let change = round_to(price - self.open, self.scale);
        Tick {
            symbol: self.symbol.clone(),
            price,
            volume: Some(round_to(self.volume, 1e4)),
            high: Some(self.high),
            low: Some(self.low),
            change: Some(change),
            change_percent: Some(round_to(100.0 * change / self.open, 1e3)),
            bid: Some(round_to(price - half, self.scale).max(0.0)),
            ask: Some(round_to(price + half, self.scale)),
            timestamp: now,
            source: SOURCE.to_owned(),
            seq: self.last_seq,
        }
    }

    /// The trade behind `tick`, the last tick [`Instrument::step`] made, with the next trade seq.
    fn trade(&mut self, tick: &Tick) -> Trade {
        self.last_trade_seq = self.last_trade_seq.saturating_add(1);
        Trade {
            symbol: tick.symbol.clone(),
            price: tick.price,
            size: self.last_size,
            side: Some(self.last_side),
            trade_id: None,
            timestamp: tick.timestamp,
            source: SOURCE.to_owned(),
            seq: self.last_trade_seq,
        }
    }

    /// Continues from a cached tick: its price, its session and (at least) its seq.
    fn restore(&mut self, cached: &Tick) {
        let price = cached.price;
        if !(price.is_finite() && price > 0.0) {
            return;
        }
        self.rebase(price);
        if let Some(open) = cached.change.map(|c| price - c).filter(|o| *o > 0.0) {
            self.open = self.round(open);
        }
        self.high = cached
            .high
            .filter(|h| *h > 0.0)
            .map_or(price, |h| h.max(price));
        self.low = cached
            .low
            .filter(|l| *l > 0.0)
            .map_or(price, |l| l.min(price));
        self.volume = cached
            .volume
            .filter(|v| v.is_finite())
            .unwrap_or(0.0)
            .max(0.0);
        self.last_seq = self.last_seq.max(cached.seq);
    }
}

/// Every simulated instrument plus the random source, ticked round-robin.
#[derive(Debug, Clone)]
pub struct Market {
    /// In configuration order; round-robin visits them in this order.
    instruments: Vec<Instrument>,
    /// One generator for all symbols, seeded for reproducible runs.
    rng: StdRng,
    /// Index of the instrument that ticks next.
    next: usize,
    /// Start of the current statistics session; set by the first tick.
    session_start: Option<DateTime<Utc>>,
}

impl Market {
    /// Builds instruments at their starting prices for a total `rate` (ticks/s over all symbols).
    ///
    /// `seed` makes the price paths reproducible; `None` seeds from the OS.
    pub fn new(symbols: &[Symbol], rate: f64, seed: Option<u64>) -> Self {
        let step_secs = if rate > 0.0 {
            symbols.len().max(1) as f64 / rate
        } else {
            1.0
        };
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Self {
            instruments: symbols
                .iter()
                .map(|s| Instrument::new(s.clone(), step_secs))
                .collect(),
            rng,
            next: 0,
            session_start: None,
        }
    }

    /// The simulated symbols, in round-robin order.
    pub fn symbols(&self) -> impl Iterator<Item = &Symbol> {
        self.instruments.iter().map(|i| &i.symbol)
    }

    /// Continues a symbol after a restart: seq after `last_seq`, price and
    /// session from the cached tick if there is one. Unknown symbols are ignored.
    pub fn resume(&mut self, symbol: &Symbol, last_seq: u64, cached: Option<&Tick>) {
        if let Some(inst) = self.instruments.iter_mut().find(|i| &i.symbol == symbol) {
            inst.last_seq = last_seq;
            if let Some(tick) = cached {
                inst.restore(tick);
            }
        }
    }

    /// Continues a symbol's trades after a restart: trade seq after `last_trade_seq`.
    pub fn resume_trades(&mut self, symbol: &Symbol, last_trade_seq: u64) {
        if let Some(inst) = self.instruments.iter_mut().find(|i| &i.symbol == symbol) {
            inst.last_trade_seq = inst.last_trade_seq.max(last_trade_seq);
        }
    }

    /// The last seq handed out for `symbol`.
    pub fn last_seq(&self, symbol: &Symbol) -> Option<u64> {
        self.instruments
            .iter()
            .find(|i| &i.symbol == symbol)
            .map(|i| i.last_seq)
    }

    /// Appends `n` ticks stamped `now`, visiting symbols round-robin.
    pub fn fill(&mut self, n: usize, now: DateTime<Utc>, out: &mut Vec<Tick>) {
        self.fill_inner(n, now, out, None);
    }

    /// [`Market::fill`], also appending the trade behind each tick to `trades`.
    pub fn fill_with_trades(
        &mut self,
        n: usize,
        now: DateTime<Utc>,
        out: &mut Vec<Tick>,
        trades: &mut Vec<Trade>,
    ) {
        self.fill_inner(n, now, out, Some(trades));
    }

    fn fill_inner(
        &mut self,
        n: usize,
        now: DateTime<Utc>,
        out: &mut Vec<Tick>,
        mut trades: Option<&mut Vec<Trade>>,
    ) {
        if self.instruments.is_empty() {
            return;
        }
        match self.session_start {
            None => self.session_start = Some(now),
            Some(start) if now - start >= TimeDelta::hours(SESSION_HOURS) => {
                self.instruments
                    .iter_mut()
                    .for_each(Instrument::new_session);
                self.session_start = Some(now);
            }
            Some(_) => {}
        }
        out.reserve(n);
        if let Some(trades) = trades.as_deref_mut() {
            trades.reserve(n);
        }
        for _ in 0..n {
            let i = self.next;
            self.next = (i + 1) % self.instruments.len();
            let tick = self.instruments[i].step(&mut self.rng, now);
            if let Some(trades) = trades.as_deref_mut() {
                trades.push(self.instruments[i].trade(&tick));
            }
            out.push(tick);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syms(list: &[&str]) -> Vec<Symbol> {
        list.iter().map(|s| Symbol::parse(s).unwrap()).collect()
    }

    fn t0() -> DateTime<Utc> {
        tickstream_model::time::parse("2025-11-01T10:30:00.123Z").unwrap()
    }

    #[test]
    fn profiles_table() {
        use AssetClass::*;
        for (symbol, class, price) in [
            ("BTCUSDT", Crypto, 95_000.0),
            ("ETHUSDT", Crypto, 3_500.0),
            ("SOLUSDT", Crypto, 180.0),
            ("BNBUSDT", Crypto, 650.0),
            ("ADAUSDT", Crypto, 0.75),
            ("BTC-USD", Crypto, 95_000.0),
            ("ETH/USDC", Crypto, 3_500.0),
            ("AAPL", Stock, 230.0),
            ("MSFT", Stock, 430.0),
            ("NVDA", Stock, 140.0),
            ("BRK.B", Stock, 460.0),
            ("EUR/USD", Fx, 1.08),
            ("EURUSD", Fx, 1.08),
            ("USD/JPY", Fx, 150.0),
        ] {
            let p = profile(symbol);
            assert_eq!(p.class, class, "{symbol}");
            assert!(
                (p.start_price - price).abs() < 1e-9 * price,
                "{symbol}: {p:?}"
            );
        }
        let ethbtc = profile("ETHBTC");
        assert_eq!(ethbtc.class, Crypto);
        assert!((ethbtc.start_price - 3_500.0 / 95_000.0).abs() < 1e-12);
    }

    #[test]
    fn unknown_symbols_get_stable_plausible_prices() {
        use AssetClass::*;
        for (symbol, class, lo, hi) in [
            ("ZZZZ", Stock, 10.0, 500.0),
            ("PEPEUSDT", Crypto, 0.1, 1000.0),
            ("FOO-USD", Crypto, 0.1, 1000.0),
            ("XAU/XAG", Fx, 0.5, 2.0),
        ] {
            let p = profile(symbol);
            assert_eq!(p.class, class, "{symbol}");
            assert!((lo..=hi).contains(&p.start_price), "{symbol}: {p:?}");
            assert_eq!(profile(symbol), p, "{symbol} not deterministic");
        }
        assert_ne!(profile("ZZZZ").start_price, profile("ZZZY").start_price);
    }

    #[test]
    fn decimals_follow_price_level() {
        assert_eq!(decimals_for(AssetClass::Crypto, 95_000.0), 2);
        assert_eq!(decimals_for(AssetClass::Crypto, 0.75), 5);
        assert_eq!(decimals_for(AssetClass::Crypto, 0.000_02), 8);
        assert_eq!(decimals_for(AssetClass::Fx, 1.08), 5);
        assert_eq!(decimals_for(AssetClass::Fx, 150.0), 3);
        assert_eq!(decimals_for(AssetClass::Stock, 230.0), 2);
    }

    /// Tiny rate = huge steps: the harshest setting for the invariants.
    #[test]
    fn invariants_hold_over_many_steps() {
        let symbols = syms(&[
            "BTCUSDT", "ADAUSDT", "AAPL", "EUR/USD", "USD/JPY", "SHIBUSDT",
        ]);
        for rate in [0.001, 6.0, 50_000.0] {
            let mut m = Market::new(&symbols, rate, Some(7));
            let mut out = Vec::new();
            m.fill(60_000, t0(), &mut out);
            let mut last_seq = std::collections::HashMap::new();
            for t in &out {
                t.validate().unwrap();
                assert!(t.price > 0.0 && t.price.is_finite(), "{t:?}");
                let (hi, lo) = (t.high.unwrap(), t.low.unwrap());
                assert!(hi >= t.price && t.price >= lo && lo > 0.0, "{t:?}");
                let (bid, ask) = (t.bid.unwrap(), t.ask.unwrap());
                assert!(bid < t.price && t.price < ask, "{t:?}");
                let change = t.change.unwrap();
                let open = t.price - change;
                assert!(open > 0.0, "{t:?}");
                let pct = 100.0 * change / open;
                assert!(
                    (t.change_percent.unwrap() - pct).abs() <= 1e-3 + 1e-9 * pct.abs(),
                    "{t:?}"
                );
                assert_eq!(t.source, "sim");
                let prev = last_seq.insert(t.symbol.clone(), t.seq).unwrap_or(0);
                assert_eq!(t.seq, prev + 1, "{t:?}");
                Tick::from_json(t.to_json().as_bytes()).unwrap();
            }
        }
    }

    #[test]
    fn volume_accumulates_and_open_is_fixed() {
        let mut m = Market::new(&syms(&["AAPL"]), 4.0, Some(1));
        let mut out = Vec::new();
        m.fill(100, t0(), &mut out);
        let opens: Vec<f64> = out.iter().map(|t| t.price - t.change.unwrap()).collect();
        assert!(opens.iter().all(|o| (o - 230.0).abs() < 1e-9), "{opens:?}");
        let vols: Vec<f64> = out.iter().map(|t| t.volume.unwrap()).collect();
        assert!(vols.windows(2).all(|w| w[1] >= w[0]), "{vols:?}");
        assert!(vols[99] > 0.0);
    }

    #[test]
    fn each_tick_has_its_trade_at_its_price() {
        let symbols = syms(&["BTCUSDT", "AAPL", "EUR/USD"]);
        let mut m = Market::new(&symbols, 12.0, Some(7));
        m.resume_trades(&symbols[1], 40);
        let (mut ticks, mut trades) = (Vec::new(), Vec::new());
        m.fill_with_trades(3000, t0(), &mut ticks, &mut trades);
        assert_eq!(trades.len(), ticks.len());
        let mut last_volume = std::collections::HashMap::new();
        let mut sides = [0usize; 2];
        for (tick, trade) in ticks.iter().zip(&trades) {
            assert_eq!(trade.symbol, tick.symbol);
            assert_eq!(trade.price, tick.price, "at the current simulated price");
            assert_eq!(trade.timestamp, tick.timestamp);
            assert!(trade.validate().is_ok(), "{trade:?}");
            assert!(trade.size > 0.0);
            // The tick's volume grew by the trade's size.
            let before = last_volume.insert(tick.symbol.clone(), tick.volume.unwrap_or(0.0));
            let grew = tick.volume.unwrap_or(0.0) - before.unwrap_or(0.0);
            assert!((grew - trade.size).abs() < 1e-3, "{grew} vs {}", trade.size);
            sides[usize::from(trade.side == Some(Side::Sell))] += 1;
        }
        assert!(sides[0] > 1000 && sides[1] > 1000, "{sides:?}");
        // Plausible sizes: a mean notional of the class's order, in base units.
        let btc: Vec<f64> = trades
            .iter()
            .filter(|t| t.symbol.as_str() == "BTCUSDT")
            .map(|t| t.size * t.price)
            .collect();
        let mean = btc.iter().sum::<f64>() / btc.len() as f64;
        let want = AssetClass::Crypto.mean_trade_notional();
        assert!((mean / want - 1.0).abs() < 0.1, "{mean} vs {want}");
        // Trade seqs count per symbol, apart from the ticks', from what was resumed.
        let aapl: Vec<u64> = trades
            .iter()
            .filter(|t| t.symbol.as_str() == "AAPL")
            .map(|t| t.seq)
            .collect();
        assert_eq!(aapl[..3], [41, 42, 43]);
        assert!(aapl.windows(2).all(|w| w[1] == w[0] + 1));
    }

    #[test]
    fn trades_are_deterministic_with_the_seed_and_leave_prices_alone() {
        let symbols = syms(&["BTCUSDT", "AAPL"]);
        let run = |seed| {
            let mut m = Market::new(&symbols, 8.0, Some(seed));
            let (mut ticks, mut trades) = (Vec::new(), Vec::new());
            m.fill_with_trades(500, t0(), &mut ticks, &mut trades);
            (ticks, trades)
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42).1, run(43).1);
        let mut plain = Market::new(&symbols, 8.0, Some(42));
        let mut ticks = Vec::new();
        plain.fill(500, t0(), &mut ticks);
        assert_eq!(ticks, run(42).0, "asking for trades changes no price");
    }

    #[test]
    fn round_robin_over_symbols() {
        let mut m = Market::new(&syms(&["AAPL", "MSFT", "NVDA"]), 12.0, Some(1));
        let mut out = Vec::new();
        m.fill(7, t0(), &mut out);
        let order: Vec<&str> = out.iter().map(|t| t.symbol.as_str()).collect();
        assert_eq!(
            order,
            ["AAPL", "MSFT", "NVDA", "AAPL", "MSFT", "NVDA", "AAPL"]
        );
        assert!(out.iter().all(|t| t.timestamp == t0()));
    }

    #[test]
    fn seeded_runs_are_reproducible() {
        let symbols = syms(&["BTCUSDT", "EUR/USD"]);
        let run = |seed| {
            let mut m = Market::new(&symbols, 8.0, Some(seed));
            let mut out = Vec::new();
            m.fill(1000, t0(), &mut out);
            out
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        let unseeded = |_| {
            let mut m = Market::new(&symbols, 8.0, None);
            let mut out = Vec::new();
            m.fill(1000, t0(), &mut out);
            out
        };
        assert_ne!(unseeded(0), unseeded(1));
    }

    /// The realized volatility of a long seeded path matches the class's.
    #[test]
    fn realized_volatility_matches_class() {
        let rate = 4.0;
        let mut m = Market::new(&syms(&["BTCUSDT"]), rate, Some(3));
        let mut out = Vec::new();
        m.fill(200_000, t0(), &mut out);
        // Returns over 10-step blocks, so the 0.01 price grid is noise far
        // below the ~$16 moves at BTC's level.
        let block = 10;
        let prices: Vec<f64> = out.iter().step_by(block).map(|t| t.price).collect();
        let returns: Vec<f64> = prices.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
        let n = returns.len() as f64;
        let mean = returns.iter().sum::<f64>() / n;
        let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let block_secs = block as f64 / rate;
        let annualized = (var / block_secs * SECONDS_PER_YEAR).sqrt();
        let want = AssetClass::Crypto.annual_vol();
        assert!(
            (annualized - want).abs() < 0.1 * want,
            "realized {annualized}, want {want}"
        );
    }

    #[test]
    fn resume_continues_seq_and_session() {
        let symbols = syms(&["BTCUSDT", "AAPL"]);
        let btc = symbols[0].clone();
        let cached = Tick {
            symbol: btc.clone(),
            price: 96_000.0,
            volume: Some(12.5),
            high: Some(97_000.0),
            low: Some(94_000.0),
            change: Some(1_000.0),
            change_percent: Some(1.05),
            bid: None,
            ask: None,
            timestamp: t0(),
            source: "sim".into(),
            seq: 1_234,
        };
        let mut m = Market::new(&symbols, 8.0, Some(5));
        m.resume(&btc, 1_000, Some(&cached));
        m.resume(&symbols[1], 77, None);
        m.resume(&Symbol::parse("NOTHERE").unwrap(), 5, None);
        let mut out = Vec::new();
        m.fill(2, t0(), &mut out);
        let (b, a) = (&out[0], &out[1]);
        assert_eq!(b.seq, 1_235, "max of the seq hash and the cached tick");
        assert_eq!(a.seq, 78);
        assert!((b.price - 96_000.0).abs() < 500.0, "{b:?}");
        assert!(
            (b.price - b.change.unwrap() - 95_000.0).abs() < 1e-6,
            "{b:?}"
        );
        assert_eq!(b.high, Some(97_000.0));
        assert_eq!(b.low, Some(94_000.0));
        assert!(b.volume.unwrap() > 12.5);
        assert_eq!(m.last_seq(&btc), Some(1_235));
    }

    #[test]
    fn session_restarts_after_a_day() {
        let mut m = Market::new(&syms(&["AAPL"]), 0.001, Some(9));
        let mut out = Vec::new();
        m.fill(50, t0(), &mut out);
        let before = out.last().unwrap().clone();
        assert!(before.volume.unwrap() > 0.0 && before.change.unwrap() != 0.0);
        out.clear();
        m.fill(1, t0() + TimeDelta::hours(23), &mut out);
        assert!(out[0].volume.unwrap() > before.volume.unwrap());
        out.clear();
        m.fill(1, t0() + TimeDelta::hours(24), &mut out);
        let after = &out[0];
        assert!(after.volume.unwrap() < before.volume.unwrap(), "{after:?}");
        assert!(after.seq > before.seq);
    }
}
