//! Every symbol's bars, indicators and signal, and the market mood: the pure
//! core the service's tasks drive. No I/O and no clock of its own: callers
//! pass `now_ms`, and collect what to store and publish as [`Output`]s.

use std::collections::HashMap;

use serde_json::json;
use tickstream_model::{Channel, Symbol, Tick, Trade};

use crate::candle::{Bar, BarEvent, Input, Interval, Rules, Series, Source};
use crate::indicators::{Indicators, Periods, Snapshot};
use crate::sentiment::{self, SymbolMood};
use crate::signal::{self, Kind};

/// Trades and ticks ahead of our clock by more than this are garbage (a broken clock), not data.
pub const MAX_FUTURE_MS: i64 = 60_000;

/// The engine's knobs, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Grace for late trades and the flat-fill bound.
    pub rules: Rules,
    /// Least time between two publications of one bar in progress (ms).
    pub update_ms: i64,
    /// Indicator periods.
    pub periods: Periods,
    /// The bars indicators and signals are computed on.
    pub indicator_interval: Interval,
    /// A symbol is fresh for the mood if an input arrived within this (ms).
    pub fresh_ms: i64,
}

/// Something to store and/or publish.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A bar: stored under its start in the channel's set, then published on the channel.
    Candle {
        /// `candles:{INTERVAL}:{SYMBOL}`.
        channel: Channel,
        /// Bar start, epoch ms.
        start_ms: i64,
        /// The payload.
        json: String,
    },
    /// A signal or the mood: published with its cache only.
    Event {
        /// `signals:{SYMBOL}` or `sentiment`.
        channel: Channel,
        /// The payload.
        json: String,
    },
}

/// Inputs the engine counted and skipped, by reason; exported as metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Not a valid tick or trade, or for a channel we do not read.
    pub invalid: u64,
    /// For a symbol not in the universe.
    pub unknown_symbol: u64,
    /// For a bar closed longer than the grace ago.
    pub late: u64,
    /// Stamped more than [`MAX_FUTURE_MS`] ahead of our clock.
    pub future: u64,
}

/// One symbol's state.
#[derive(Debug)]
struct SymbolState {
    /// Normalized name.
    name: String,
    /// `candles:{INTERVAL}:{SYMBOL}` per interval, in [`Interval::ALL`] order.
    channels: Vec<Channel>,
    /// `signals:{SYMBOL}`.
    signal_channel: Channel,
    /// Bars per interval, in [`Interval::ALL`] order.
    series: Vec<Series>,
    /// When each interval's bar in progress was last published (epoch ms).
    last_pub_ms: [i64; 5],
    /// Trades while the symbol has them; ticks otherwise.
    mode: Source,
    /// Arrival time of the last trade (or of the restore of trade-built bars).
    last_trade_ms: Option<i64>,
    /// Indicators on the indicator interval.
    indicators: Indicators,
    /// The signal last decided, and its payload.
    signal: Option<(Kind, String)>,
    /// Arrival time of the last applied input.
    last_input_ms: Option<i64>,
}

/// Everything the service computes, for every symbol of the universe.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    symbols: HashMap<String, SymbolState>,
    skipped: Skipped,
    corrections: u64,
    events: Vec<BarEvent>,
    /// `sentiment` (a kind without a key, so it always parses).
    sentiment_channel: Option<Channel>,
}

fn interval_index(i: Interval) -> usize {
    Interval::ALL.iter().position(|x| *x == i).unwrap_or(0)
}

fn rfc3339(ms: i64) -> String {
    tickstream_model::time::from_millis(ms)
        .map(|t| tickstream_model::time::format(&t))
        .unwrap_or_default()
}

impl Engine {
    /// An engine with no symbols.
    pub fn new(cfg: EngineConfig) -> Self {
        Self {
            cfg,
            symbols: HashMap::new(),
            skipped: Skipped::default(),
            corrections: 0,
            events: Vec::new(),
            sentiment_channel: Channel::parse("sentiment").ok(),
        }
    }

    /// Symbols in the universe, sorted.
    pub fn symbols(&self) -> Vec<String> {
        let mut v: Vec<String> = self.symbols.keys().cloned().collect();
        v.sort();
        v
    }

    /// Whether `symbol` is in the universe.
    pub fn has(&self, symbol: &str) -> bool {
        self.symbols.contains_key(symbol)
    }

    /// Inputs skipped so far, by reason.
    pub fn skipped(&self) -> Skipped {
        self.skipped
    }

    /// Closed bars corrected by a late trade so far.
    pub fn corrections(&self) -> u64 {
        self.corrections
    }

    /// Adds a symbol, continuing from its stored bars: `last` is the newest
    /// stored bar of each interval, `history` the stored closed bars of the
    /// indicator interval (any order), replayed into the indicators.
    ///
    /// `now_ms` starts the wait for trades of a symbol whose stored bars came from trades.
    pub fn add_symbol(&mut self, symbol: &Symbol, last: &[Bar], history: &[Bar], now_ms: i64) {
        if self.has(symbol.as_str()) {
            return;
        }
        let channels = Interval::ALL
            .iter()
            .filter_map(|i| Channel::parse(&format!("candles:{}:{symbol}", i.name())).ok())
            .collect::<Vec<_>>();
        let Some(signal_channel) = Channel::for_symbol("signals", symbol) else {
            return;
        };
        if channels.len() != Interval::ALL.len() {
            return;
        }
        let mut series: Vec<Series> = Interval::ALL.iter().map(|i| Series::new(*i)).collect();
        let mut mode = Source::Ticks;
        for bar in last {
            series[interval_index(bar.interval)].restore(*bar);
            if bar.source == Source::Trades {
                mode = Source::Trades;
            }
        }
        let mut indicators = Indicators::new(self.cfg.periods);
        let mut replay: Vec<&Bar> = history
            .iter()
            .filter(|b| b.closed && b.interval == self.cfg.indicator_interval)
            .collect();
        replay.sort_by_key(|b| b.start_ms);
        for bar in replay {
            indicators.update(bar);
        }
        self.symbols.insert(
            symbol.to_string(),
            SymbolState {
                name: symbol.to_string(),
                channels,
                signal_channel,
                series,
                last_pub_ms: [i64::MIN; 5],
                mode,
                last_trade_ms: (mode == Source::Trades).then_some(now_ms),
                indicators,
                signal: None,
                last_input_ms: None,
            },
        );
    }

    /// Takes one pub/sub message (`ticks:{SYMBOL}` or `trades:{SYMBOL}`); garbage
    /// (including a payload whose symbol is not its channel's) is counted and skipped.
    pub fn on_message(
        &mut self,
        channel: &str,
        payload: &[u8],
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        if let Some(symbol) = channel.strip_prefix("trades:") {
            match Trade::from_json(payload) {
                Ok(t) if t.symbol.as_str() == symbol => self.on_trade(&t, now_ms, out),
                _ => self.skipped.invalid += 1,
            }
        } else if let Some(symbol) = channel.strip_prefix("ticks:") {
            match Tick::from_json(payload) {
                Ok(t) if t.symbol.as_str() == symbol => self.on_tick(&t, now_ms, out),
                _ => self.skipped.invalid += 1,
            }
        } else {
            self.skipped.invalid += 1;
        }
    }

    /// Applies a trade to every interval of its symbol.
    pub fn on_trade(&mut self, trade: &Trade, now_ms: i64, out: &mut Vec<Output>) {
        let input = Input {
            ts_ms: trade.timestamp.timestamp_millis(),
            price: trade.price,
            volume: trade.size,
            source: Source::Trades,
        };
        self.apply(trade.symbol.as_str(), input, now_ms, out);
    }

    /// Applies a tick (counted as volume 1) unless the symbol's bars come from trades.
    pub fn on_tick(&mut self, tick: &Tick, now_ms: i64, out: &mut Vec<Output>) {
        let input = Input {
            ts_ms: tick.timestamp.timestamp_millis(),
            price: tick.price,
            volume: 1.0,
            source: Source::Ticks,
        };
        self.apply(tick.symbol.as_str(), input, now_ms, out);
    }

    fn apply(&mut self, symbol: &str, input: Input, now_ms: i64, out: &mut Vec<Output>) {
        let Some(state) = self.symbols.get_mut(symbol) else {
            self.skipped.unknown_symbol += 1;
            return;
        };
        if input.ts_ms > now_ms + MAX_FUTURE_MS {
            self.skipped.future += 1;
            return;
        }
        if input.source == Source::Trades {
            state.last_trade_ms = Some(now_ms);
        }
        if input.source != state.mode {
            let trades_stale = state
                .last_trade_ms
                .is_none_or(|t| now_ms - t > self.cfg.fresh_ms);
            if input.source == Source::Ticks && !trades_stale {
                // Trades carry the real prints and sizes; ticks would double count.
                state.last_input_ms = Some(now_ms);
                return;
            }
            // A first trade, or ticks after the trades stopped for the freshness window.
            state.mode = input.source;
            for s in &mut state.series {
                s.switch_to(input.source);
            }
        }
        // All intervals or none: a trade too late for its 1m bar is skipped everywhere,
        // so larger bars never hold volume the smaller ones lack.
        if !state
            .series
            .iter()
            .all(|s| s.accepts(input.ts_ms, now_ms, self.cfg.rules))
        {
            self.skipped.late += 1;
            return;
        }
        for s in &mut state.series {
            // Cannot be late: checked above.
            let _ = s.apply(input, now_ms, self.cfg.rules, &mut self.events);
        }
        state.last_input_ms = Some(now_ms);
        Self::handle_events(
            &self.cfg,
            state,
            &mut self.events,
            &mut self.corrections,
            now_ms,
            out,
        );
        Self::flush(&self.cfg, state, now_ms, out);
    }

    /// Turns bar events into outputs and feeds final bars to the indicators.
    fn handle_events(
        cfg: &EngineConfig,
        state: &mut SymbolState,
        events: &mut Vec<BarEvent>,
        corrections: &mut u64,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        for event in events.drain(..) {
            match event {
                BarEvent::Closed(bar) | BarEvent::Corrected(bar) => {
                    if matches!(event, BarEvent::Corrected(_)) {
                        *corrections += 1;
                    }
                    let i = interval_index(bar.interval);
                    out.push(Output::Candle {
                        channel: state.channels[i].clone(),
                        start_ms: bar.start_ms,
                        json: bar.to_json(&state.name),
                    });
                }
                BarEvent::Final(bar) => {
                    if bar.interval == cfg.indicator_interval {
                        if let Some(snapshot) = state.indicators.update(&bar) {
                            let changed = Self::decide(cfg, state, Some(&snapshot), now_ms);
                            if changed {
                                if let Some((_, json)) = &state.signal {
                                    out.push(Output::Event {
                                        channel: state.signal_channel.clone(),
                                        json: json.clone(),
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Recomputes the symbol's signal payload; true if the signal word changed.
    fn decide(
        cfg: &EngineConfig,
        state: &mut SymbolState,
        s: Option<&Snapshot>,
        now_ms: i64,
    ) -> bool {
        let d = signal::decide(s, cfg.periods.ema_slow, cfg.periods.rsi);
        let ind = s.copied().unwrap_or_default();
        // An indicator still warming up (or undefined) is absent, never null or invented.
        let indicators: serde_json::Map<String, serde_json::Value> = [
            ("ema_fast", ind.ema_fast),
            ("ema_slow", ind.ema_slow),
            ("rsi", ind.rsi),
            ("vwap", ind.vwap),
            ("volume_ratio", ind.volume_ratio),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), json!(v?))))
        .collect();
        let json = json!({
            "symbol": state.name,
            "signal": d.kind,
            "strength": d.strength,
            "reason": d.reason,
            "timestamp": rfc3339(now_ms),
            "interval": cfg.indicator_interval.name(),
            "indicators": indicators,
        })
        .to_string();
        let changed = state.signal.as_ref().is_none_or(|(k, _)| *k != d.kind);
        state.signal = Some((d.kind, json));
        changed
    }

    /// Publishes bars in progress that changed, at most once per `update_ms` each.
    fn flush(cfg: &EngineConfig, state: &mut SymbolState, now_ms: i64, out: &mut Vec<Output>) {
        for (i, s) in state.series.iter_mut().enumerate() {
            if now_ms.saturating_sub(state.last_pub_ms[i]) < cfg.update_ms {
                continue;
            }
            if let Some(bar) = s.take_dirty() {
                state.last_pub_ms[i] = now_ms;
                out.push(Output::Candle {
                    channel: state.channels[i].clone(),
                    start_ms: bar.start_ms,
                    json: bar.to_json(&state.name),
                });
            }
        }
    }

    /// The clock reached `now_ms`: closes and finalizes bars, updates signals, publishes conflated bars.
    pub fn on_clock(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        for state in self.symbols.values_mut() {
            for s in &mut state.series {
                s.advance(now_ms, self.cfg.rules, &mut self.events);
            }
            Self::handle_events(
                &self.cfg,
                state,
                &mut self.events,
                &mut self.corrections,
                now_ms,
                out,
            );
            Self::flush(&self.cfg, state, now_ms, out);
        }
    }

    /// Every symbol's current signal (HOLD while warming up), republished as the periodic refresh.
    pub fn refresh_signals(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        for state in self.symbols.values_mut() {
            let last = state.indicators.last();
            Self::decide(&self.cfg, state, last.as_ref(), now_ms);
            if let Some((_, json)) = &state.signal {
                out.push(Output::Event {
                    channel: state.signal_channel.clone(),
                    json: json.clone(),
                });
            }
        }
    }

    /// The market mood over the universe.
    pub fn sentiment(&self, now_ms: i64, out: &mut Vec<Output>) {
        let day = interval_index(Interval::D1);
        let universe: Vec<SymbolMood> = self
            .symbols
            .values()
            .map(|s| {
                let bar = s.series[day].open_bar();
                let last = s.indicators.last();
                SymbolMood {
                    symbol: s.name.clone(),
                    fresh: s
                        .last_input_ms
                        .is_some_and(|t| now_ms - t <= self.cfg.fresh_ms),
                    day_open: bar.map_or(0.0, |b| b.open),
                    last: bar.map_or(0.0, |b| b.close),
                    volatility_ratio: s.indicators.volatility_ratio(),
                    volume_ratio: last.and_then(|l| l.volume_ratio),
                }
            })
            .collect();
        let mood = sentiment::compute(&universe, rfc3339(now_ms));
        if let (Some(channel), Ok(json)) = (&self.sentiment_channel, serde_json::to_string(&mood)) {
            out.push(Output::Event {
                channel: channel.clone(),
                json,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_764_892_800_000;

    fn engine() -> Engine {
        Engine::new(EngineConfig {
            rules: Rules {
                grace_ms: 2_000,
                max_fill: 100,
            },
            update_ms: 250,
            periods: Periods::default(),
            indicator_interval: Interval::M1,
            fresh_ms: 60_000,
        })
    }

    fn trade(sym: &str, ms: i64, price: f64, size: f64) -> Vec<u8> {
        json!({"symbol": sym, "price": price, "size": size, "side": "buy", "trade_id": "7",
               "timestamp": rfc3339(ms), "source": "binance", "seq": 1})
        .to_string()
        .into_bytes()
    }

    fn candles(out: &[Output], channel: &str) -> Vec<serde_json::Value> {
        out.iter()
            .filter_map(|o| match o {
                Output::Candle {
                    channel: c, json, ..
                } if c.as_str() == channel => serde_json::from_str(json).ok(),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn garbage_and_strangers_are_counted_and_skipped() {
        let mut e = engine();
        e.add_symbol(&Symbol::parse("BTCUSDT").unwrap(), &[], &[], T0);
        let mut out = Vec::new();
        e.on_message("trades:BTCUSDT", b"{", T0, &mut out);
        e.on_message(
            "trades:BTCUSDT",
            &trade("BTCUSDT", T0, -1.0, 1.0),
            T0,
            &mut out,
        );
        e.on_message("ticks:BTCUSDT", b"null", T0, &mut out);
        e.on_message("news:BTCUSDT", b"{}", T0, &mut out);
        e.on_message(
            "ticks:ETHUSDT",
            &trade("BTCUSDT", T0, 1.0, 1.0),
            T0,
            &mut out,
        );
        e.on_message(
            "trades:ETHUSDT",
            &trade("BTCUSDT", T0, 1.0, 1.0),
            T0,
            &mut out,
        );
        e.on_message(
            "trades:ETHUSDT",
            &trade("ETHUSDT", T0, 1.0, 1.0),
            T0,
            &mut out,
        );
        e.on_message(
            "trades:BTCUSDT",
            &trade("BTCUSDT", T0 + 3_600_000, 1.0, 1.0),
            T0,
            &mut out,
        );
        assert_eq!(
            e.skipped(),
            Skipped {
                invalid: 6,
                unknown_symbol: 1,
                late: 0,
                future: 1
            }
        );
        assert!(out.is_empty());
    }

    #[test]
    fn updates_are_conflated_and_a_boundary_publishes_the_closed_bar() {
        let mut e = engine();
        e.add_symbol(&Symbol::parse("BTCUSDT").unwrap(), &[], &[], T0);
        let mut out = Vec::new();
        for i in 0..10 {
            let at = T0 + i * 20;
            e.on_message(
                "trades:BTCUSDT",
                &trade("BTCUSDT", at, 100.0 + i as f64, 1.0),
                at,
                &mut out,
            );
        }
        // The first trade is published at once; the rest of the 200 ms wait for the next slot.
        assert_eq!(candles(&out, "candles:1m:BTCUSDT").len(), 1);
        e.on_clock(T0 + 250, &mut out);
        let m1 = candles(&out, "candles:1m:BTCUSDT");
        assert_eq!(m1.len(), 2);
        assert_eq!(m1[1]["trades"], 10);
        assert_eq!(m1[1]["high"], 109.0);
        assert_eq!(m1[1]["source"], "trades");
        out.clear();
        e.on_clock(T0 + 60_000, &mut out);
        let m1 = candles(&out, "candles:1m:BTCUSDT");
        assert_eq!(m1[0]["closed"], true);
        assert_eq!(m1[0]["close"], 109.0);
        assert_eq!(m1[1]["closed"], false);
        assert_eq!(m1[1]["open"], 109.0);
        assert_eq!(m1[1]["volume"], 0.0);
        // Only the 1m bar closed at this boundary.
        assert!(candles(&out, "candles:5m:BTCUSDT")
            .iter()
            .all(|c| c["closed"] == false));
    }

    #[test]
    fn ticks_build_bars_until_the_first_trade() {
        let mut e = engine();
        e.add_symbol(&Symbol::parse("AAPL").unwrap(), &[], &[], T0);
        let mut out = Vec::new();
        let tick = |ms: i64, price: f64| {
            json!({"symbol":"AAPL","price":price,"volume":123456.0,"timestamp":rfc3339(ms),"source":"sim","seq":1})
                .to_string()
                .into_bytes()
        };
        e.on_message("ticks:AAPL", &tick(T0, 10.0), T0, &mut out);
        e.on_message("ticks:AAPL", &tick(T0 + 1, 11.0), T0 + 300, &mut out);
        let m1 = candles(&out, "candles:1m:AAPL");
        let last = m1.last().unwrap();
        assert_eq!(
            (last["volume"].as_f64(), last["trades"].as_u64()),
            (Some(2.0), Some(2))
        );
        assert_eq!(last["source"], "ticks");
        out.clear();
        e.on_message(
            "trades:AAPL",
            &trade("AAPL", T0 + 2, 12.0, 5.0),
            T0 + 600,
            &mut out,
        );
        e.on_message("ticks:AAPL", &tick(T0 + 3, 99.0), T0 + 900, &mut out);
        e.on_clock(T0 + 1_200, &mut out);
        let last = candles(&out, "candles:1m:AAPL").pop().unwrap();
        assert_eq!(last["source"], "trades");
        assert_eq!(
            (
                last["open"].as_f64(),
                last["high"].as_f64(),
                last["volume"].as_f64()
            ),
            (Some(12.0), Some(12.0), Some(5.0))
        );
    }

    #[test]
    fn a_trade_late_for_its_1m_bar_is_skipped_in_every_interval() {
        let mut e = engine();
        e.add_symbol(&Symbol::parse("BTCUSDT").unwrap(), &[], &[], T0);
        let mut out = Vec::new();
        e.on_message(
            "trades:BTCUSDT",
            &trade("BTCUSDT", T0 + 1_000, 100.0, 1.0),
            T0 + 1_000,
            &mut out,
        );
        e.on_clock(T0 + 70_000, &mut out);
        out.clear();
        // For the 1m bar closed 10 s ago (beyond the 2 s grace), inside the open 5m bar.
        e.on_message(
            "trades:BTCUSDT",
            &trade("BTCUSDT", T0 + 59_000, 500.0, 9.0),
            T0 + 70_000,
            &mut out,
        );
        e.on_clock(T0 + 80_000, &mut out);
        assert_eq!(e.skipped().late, 1);
        for c in candles(&out, "candles:5m:BTCUSDT") {
            assert_eq!(c["high"], 100.0, "{c}");
        }
    }

    #[test]
    fn ticks_take_over_when_trades_stop_for_the_freshness_window() {
        let mut e = engine();
        e.add_symbol(&Symbol::parse("BTCUSDT").unwrap(), &[], &[], T0);
        let mut out = Vec::new();
        let tick = |ms: i64, price: f64| {
            json!({"symbol":"BTCUSDT","price":price,"timestamp":rfc3339(ms),"source":"sim","seq":1})
                .to_string()
                .into_bytes()
        };
        e.on_message(
            "trades:BTCUSDT",
            &trade("BTCUSDT", T0, 100.0, 2.0),
            T0,
            &mut out,
        );
        e.on_message(
            "ticks:BTCUSDT",
            &tick(T0 + 10, 150.0),
            T0 + 30_000,
            &mut out,
        );
        e.on_clock(T0 + 30_500, &mut out);
        let c = candles(&out, "candles:1h:BTCUSDT").pop().unwrap();
        assert_eq!(
            (c["high"].as_f64(), c["source"].as_str()),
            (Some(100.0), Some("trades"))
        );
        out.clear();
        e.on_message(
            "ticks:BTCUSDT",
            &tick(T0 + 20, 151.0),
            T0 + 61_000,
            &mut out,
        );
        e.on_clock(T0 + 61_500, &mut out);
        let c = candles(&out, "candles:1h:BTCUSDT").pop().unwrap();
        assert_eq!(c["source"], "ticks", "{c}");
        assert_eq!(
            (c["open"].as_f64(), c["volume"].as_f64()),
            (Some(151.0), Some(1.0)),
            "{c}"
        );
    }

    #[test]
    fn signals_warm_up_then_follow_the_rule_and_mood_is_published() {
        let mut e = engine();
        let sym = Symbol::parse("BTCUSDT").unwrap();
        // 40 closed 1m bars of a steady climb with rising volume, replayed as history.
        let history: Vec<Bar> = (0..40)
            .map(|i| {
                let mut b = Bar::flat(Interval::M1, T0 + i * 60_000, 100.0, Source::Trades);
                let wiggle = if i % 3 == 0 { -0.3 } else { 0.6 };
                b.apply(100.0 + i as f64 * 0.5 + wiggle, 1.0 + i as f64 / 10.0);
                b.closed = true;
                b
            })
            .collect();
        e.add_symbol(&sym, &[history[39]], &history, T0);
        let mut out = Vec::new();
        e.refresh_signals(T0, &mut out);
        let Output::Event { channel, json } = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(channel.as_str(), "signals:BTCUSDT");
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["interval"], "1m");
        assert!(v["indicators"]["ema_slow"].is_f64(), "{v}");
        // A steep climb: the trend is up but RSI says overbought.
        assert_eq!(v["signal"], "HOLD", "{v}");
        assert!(v["reason"].as_str().unwrap().ends_with("overbought"), "{v}");
        assert!(v["indicators"]["rsi"].as_f64().unwrap() >= 70.0, "{v}");

        let mut fresh = engine();
        fresh.add_symbol(&sym, &[], &[], T0);
        out.clear();
        fresh.refresh_signals(T0, &mut out);
        let Output::Event { json, .. } = &out[0] else {
            panic!()
        };
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["signal"], "HOLD");
        assert_eq!(
            v["indicators"],
            json!({}),
            "warming up: no value is invented"
        );

        out.clear();
        fresh.on_message(
            "trades:BTCUSDT",
            &trade("BTCUSDT", T0, 100.0, 1.0),
            T0,
            &mut out,
        );
        out.clear();
        fresh.sentiment(T0 + 1_000, &mut out);
        let Output::Event { channel, json } = &out[0] else {
            panic!()
        };
        assert_eq!(channel.as_str(), "sentiment");
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["confidence"], 1.0);
        assert_eq!(v["breadth"]["unchanged"], 1);
    }
}
