//! The Socket.IO trading-dashboard profile: that client's events, payloads and cadence over the gateway's channels.
//!
//! Per connection: `connection_status` after CONNECT (`auth_error` then a
//! server DISCONNECT for a refused token); `subscribe {"symbols":[...]}`
//! (names resolved through the [alias table](super::aliases::Resolver)) subscribes the
//! `ticks:` and `signals:` channels and answers `subscription_confirmed` with
//! the names as given; ticks are not forwarded one by one but kept, newest per
//! symbol, and sent every `dashboard_market_interval_ms` as one
//! `market_update` map keyed by the client's names; the analytics service's
//! `signals:` and `sentiment` payloads are re-shaped to that client's field
//! names and value sets. Mappings are in `docs/compatibility.md`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tickstream_model::{Channel, Symbol};

use super::aliases::Resolver;
use super::CompatSection;
use crate::client::auth::AuthFailure;
use crate::client::request::{ClientError, ErrorCode};
use crate::fanout::Publication;

/// What the profile makes of one publication queued for its connection.
#[derive(Debug)]
pub enum Absorbed {
    /// Not the profile's business: send it as the gateway's own event.
    Pass,
    /// Kept for the next `market_update`; nothing to send now.
    Held,
    /// Send these Socket.IO packets (`42[...]`) instead.
    Emit(Vec<String>),
}

/// One dashboard connection's state: the names it used and the newest tick per symbol.
#[derive(Debug)]
pub struct Dashboard {
    /// Feed symbol → the names the client used for it (payloads carry these).
    names: BTreeMap<Symbol, Vec<String>>,
    /// Newest tick JSON per feed symbol since the connection started (conflated: older ones are replaced).
    latest: HashMap<Symbol, String>,
    /// `market_update` period.
    interval: Duration,
    /// When the next `market_update` is due.
    next_market: Instant,
}

/// A subscribe translated to the gateway's vocabulary, and the names to confirm.
#[derive(Debug)]
pub struct Translated {
    /// The `subscribe` payload for [`crate::client::request::parse_action`].
    pub request: Value,
    /// Each name as the client wrote it, with its feed symbol.
    pub names: Vec<(String, Symbol)>,
}

impl Dashboard {
    /// A fresh connection's state; its first `market_update` is due one period from now.
    pub fn new(cfg: &CompatSection) -> Box<Self> {
        let interval = Duration::from_millis(cfg.dashboard_market_interval_ms);
        Box::new(Self {
            names: BTreeMap::new(),
            latest: HashMap::new(),
            interval,
            next_market: Instant::now() + interval,
        })
    }

    /// The subscribe every connection starts with: `sentiment` and the configured default symbols.
    pub fn initial(&self, cfg: &CompatSection, aliases: &Resolver) -> Translated {
        let mut t = translate_names(aliases, cfg.dashboard_symbols.iter().map(String::as_str))
            .unwrap_or_else(|_| Translated {
                request: json!({}),
                names: Vec::new(),
            });
        if let Value::Object(obj) = &mut t.request {
            if let Some(Value::Array(channels)) = obj.get_mut("channels") {
                channels.push(Value::from("sentiment"));
            } else {
                obj.insert("channels".to_owned(), json!(["sentiment"]));
            }
        }
        t
    }

    /// Translates the client's `subscribe` / `unsubscribe` payload: `{"symbols":[...]}` or `{"symbols":"A,B"}`.
    pub fn translate(&self, aliases: &Resolver, data: &Value) -> Result<Translated, ClientError> {
        let names: Vec<String> = match data.get("symbols") {
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_owned).ok_or_else(|| {
                        ClientError::new(ErrorCode::BadJson, "symbols must be strings")
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(Value::String(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            _ => {
                return Err(ClientError::new(
                    ErrorCode::BadJson,
                    "expected {\"symbols\": [\"BTC\", ...]}",
                ))
            }
        };
        translate_names(aliases, names.iter().map(String::as_str))
    }

    /// Records the names of a subscribe that succeeded, so payloads carry them.
    pub fn record(&mut self, names: &[(String, Symbol)]) {
        for (name, sym) in names {
            let list = self.names.entry(sym.clone()).or_default();
            if !list.contains(name) {
                list.push(name.clone());
            }
        }
    }

    /// Forgets the names of an unsubscribe (and the kept ticks of symbols no name refers to any more).
    pub fn forget(&mut self, names: &[(String, Symbol)]) {
        for (_, sym) in names {
            self.names.remove(sym);
            self.latest.remove(sym);
        }
    }

    /// `subscription_confirmed` from the gateway's `subscribed` reply: the names as given, and those no feed serves yet.
    pub fn confirmed(names: &[(String, Symbol)], reply: &Value) -> Value {
        let pending_channels: Vec<&str> = reply
            .get("pending")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let pending: Vec<&str> = names
            .iter()
            .filter(|(_, sym)| pending_channels.contains(&Channel::ticks(sym).as_str()))
            .map(|(n, _)| n.as_str())
            .collect();
        let symbols: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        json!({
            "symbols": symbols,
            "pending": pending,
            "timestamp": now(),
        })
    }

    /// Takes one publication queued for the connection (see [`Absorbed`]).
    pub fn absorb(&mut self, frame: &Publication) -> Absorbed {
        let channel = &frame.channel;
        match channel.spec().name {
            "ticks" => match channel.symbol().and_then(|s| Symbol::parse(s).ok()) {
                Some(sym) if self.names.contains_key(&sym) => {
                    let data = self.latest.entry(sym).or_default();
                    data.clear();
                    data.push_str(frame.data());
                    Absorbed::Held
                }
                _ => Absorbed::Pass,
            },
            "signals" => {
                let Some(sym) = channel.symbol().and_then(|s| Symbol::parse(s).ok()) else {
                    return Absorbed::Pass;
                };
                let Ok(v) = serde_json::from_str::<Value>(frame.data()) else {
                    return Absorbed::Held;
                };
                let packets = self
                    .names_of(&sym)
                    .into_iter()
                    .map(|name| {
                        crate::socketio::packet::event("trading_signal", &signal(&v, &name))
                    })
                    .collect();
                Absorbed::Emit(packets)
            }
            "sentiment" => match serde_json::from_str::<Value>(frame.data()) {
                Ok(v) => Absorbed::Emit(vec![crate::socketio::packet::event(
                    "sentiment_update",
                    &self.sentiment(&v),
                )]),
                Err(_) => Absorbed::Held,
            },
            _ => Absorbed::Pass,
        }
    }

    /// When the next `market_update` is due.
    pub fn next_market(&self) -> Instant {
        self.next_market
    }

    /// The `market_update` packet now (none while no subscribed symbol has a tick); schedules the next one.
    pub fn market_packet(&mut self) -> Option<String> {
        let now = Instant::now();
        self.next_market = (self.next_market + self.interval).max(now);
        let mut map = Map::new();
        for (sym, names) in &self.names {
            let Some(data) = self.latest.get(sym) else {
                continue;
            };
            let Ok(tick) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            for name in names {
                map.insert(name.clone(), market_entry(&tick, name));
            }
        }
        (!map.is_empty())
            .then(|| crate::socketio::packet::event("market_update", &Value::Object(map)))
    }

    /// The names the client used for `sym` (the symbol itself when it used none).
    fn names_of(&self, sym: &Symbol) -> Vec<String> {
        match self.names.get(sym) {
            Some(n) if !n.is_empty() => n.clone(),
            _ => vec![sym.as_str().to_owned()],
        }
    }

    /// The analytics `sentiment` payload in the client's shape.
    fn sentiment(&self, v: &Value) -> Value {
        let upper = |key: &str| {
            v.get(key)
                .and_then(Value::as_str)
                .map(str::to_ascii_uppercase)
                .unwrap_or_else(|| "NEUTRAL".to_owned())
        };
        let topics: Vec<String> = v
            .get("trending_topics")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .map(|s| match Symbol::parse(s) {
                        Ok(sym) => self.names_of(&sym).swap_remove(0),
                        Err(_) => s.to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mood = v.get("market_mood").and_then(Value::as_str).unwrap_or("");
        json!({
            "overall_sentiment": upper("overall_sentiment"),
            "market_fear_greed": v.get("market_fear_greed").cloned().unwrap_or(Value::Null),
            "market_mood": mood_word(mood),
            "confidence": v.get("confidence").cloned().unwrap_or(Value::Null),
            "trending_topics": topics,
            "timestamp": v.get("timestamp").cloned().unwrap_or_else(|| Value::from(now())),
        })
    }
}

/// The analytics mood (five bands of the fear & greed index) as the client's three words.
pub fn mood_word(mood: &str) -> &'static str {
    match mood {
        "extreme_fear" | "fear" => "BEARISH",
        "greed" | "extreme_greed" => "BULLISH",
        _ => "NEUTRAL",
    }
}

/// The `connection_status` payload after an accepted CONNECT (`user_id`: the token's `sub`, when auth is on).
pub fn connection_status(subject: Option<&Value>) -> Value {
    let mut v = json!({
        "status": "connected",
        "message": "Connected to real-time data stream",
        "timestamp": now(),
    });
    if let (Value::Object(obj), Some(sub)) = (&mut v, subject) {
        obj.insert("user_id".to_owned(), sub.clone());
    }
    v
}

/// The `auth_error` payload for a refused token, in the client's words.
pub fn auth_error(failure: AuthFailure) -> Value {
    let error = match failure {
        AuthFailure::Expired => "Token expired",
        AuthFailure::Missing => "Token missing",
        AuthFailure::NotYetValid => "Token not yet valid",
        AuthFailure::BadSignature | AuthFailure::BadAlgorithm | AuthFailure::Malformed => {
            "Invalid token"
        }
    };
    json!({ "error": error, "timestamp": now() })
}

/// One analytics signal for the client, under the name it used.
fn signal(v: &Value, name: &str) -> Value {
    let field = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "symbol": name,
        "signal": field("signal"),
        "strength": field("strength"),
        "reason": field("reason"),
        "timestamp": field("timestamp"),
    })
}

/// One symbol's entry of `market_update`, from its newest tick.
fn market_entry(tick: &Value, name: &str) -> Value {
    let field = |k: &str| tick.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "symbol": name,
        "price": field("price"),
        "change_24h": field("changePercent"),
        // No upstream field carries the quote (USD) volume; the base-unit volume is `volume`.
        "volume_24h": Value::Null,
        "volume": field("volume"),
        "timestamp": field("timestamp"),
    })
}

/// Resolves names and builds the gateway subscribe: each symbol's `ticks:` and `signals:` channels.
fn translate_names<'a>(
    aliases: &Resolver,
    names: impl Iterator<Item = &'a str>,
) -> Result<Translated, ClientError> {
    let mut out = Vec::new();
    for raw in names {
        let name = raw.trim();
        let sym = aliases.resolve(name).map_err(|e| {
            ClientError::new(
                ErrorCode::InvalidSymbol,
                format!("invalid symbol {name:?}: {e}"),
            )
        })?;
        if !out.iter().any(|(n, _): &(String, Symbol)| n == name) {
            out.push((name.to_owned(), sym));
        }
    }
    let symbols: Vec<&str> = out.iter().map(|(_, s)| s.as_str()).collect();
    let channels: Vec<String> = out
        .iter()
        .map(|(_, s)| format!("signals:{}", s.as_str()))
        .collect();
    Ok(Translated {
        request: json!({ "symbols": symbols, "channels": channels }),
        names: out,
    })
}

/// Now as the ISO 8601 UTC timestamp the client's payloads use.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publication(channel: &str, data: Value) -> Publication {
        let ch = Channel::parse(channel).unwrap();
        Publication::decode(&ch, data.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn ticks_are_conflated_into_one_map_under_the_client_names() {
        let cfg = CompatSection::default();
        let mut d = Dashboard::new(&cfg);
        let t = d
            .translate(
                &Resolver::new(&cfg, &Default::default()),
                &json!({"symbols": ["BTC", "ETH"]}),
            )
            .unwrap();
        assert_eq!(
            t.request,
            json!({"symbols": ["BTCUSDT", "ETHUSDT"], "channels": ["signals:BTCUSDT", "signals:ETHUSDT"]})
        );
        d.record(&t.names);
        assert!(d.market_packet().is_none(), "nothing before a tick");
        for (seq, price) in [(1, 100.0), (2, 101.5)] {
            let tick = json!({"symbol":"BTCUSDT","price":price,"volume":12.5,"changePercent":1.25,
                "timestamp":"2026-12-05T10:00:00.000Z","source":"sim","seq":seq});
            assert!(matches!(
                d.absorb(&publication("ticks:BTCUSDT", tick)),
                Absorbed::Held
            ));
        }
        let packet = d.market_packet().unwrap();
        let v: Value = serde_json::from_str(&packet[2..]).unwrap();
        assert_eq!(v[0], "market_update");
        assert_eq!(
            v[1],
            json!({"BTC": {"symbol":"BTC","price":101.5,"change_24h":1.25,"volume_24h":null,
                "volume":12.5,"timestamp":"2026-12-05T10:00:00.000Z"}})
        );
    }

    #[test]
    fn signals_and_sentiment_are_reshaped() {
        let cfg = CompatSection::default();
        let mut d = Dashboard::new(&cfg);
        let t = d
            .translate(
                &Resolver::new(&cfg, &Default::default()),
                &json!({"symbols": "BTC"}),
            )
            .unwrap();
        d.record(&t.names);
        let s = json!({"symbol":"BTCUSDT","signal":"STRONG_BUY","strength":0.95,"reason":"r",
            "timestamp":"2026-12-05T10:00:00.000Z","interval":"1m","indicators":{}});
        let Absorbed::Emit(p) = d.absorb(&publication("signals:BTCUSDT", s)) else {
            panic!("signal not emitted")
        };
        let v: Value = serde_json::from_str(&p[0][2..]).unwrap();
        assert_eq!(
            v,
            json!(["trading_signal", {"symbol":"BTC","signal":"STRONG_BUY","strength":0.95,"reason":"r",
                "timestamp":"2026-12-05T10:00:00.000Z"}])
        );
        let m = json!({"overall_sentiment":"bullish","market_fear_greed":63,"market_mood":"greed",
            "confidence":0.75,"trending_topics":["BTCUSDT","AAPL"],"timestamp":"t"});
        let Absorbed::Emit(p) = d.absorb(&publication("sentiment", m)) else {
            panic!("sentiment not emitted")
        };
        let v: Value = serde_json::from_str(&p[0][2..]).unwrap();
        assert_eq!(
            v[1],
            json!({"overall_sentiment":"BULLISH","market_fear_greed":63,"market_mood":"BULLISH",
                "confidence":0.75,"trending_topics":["BTC","AAPL"],"timestamp":"t"})
        );
        assert_eq!(mood_word("extreme_fear"), "BEARISH");
        assert_eq!(mood_word("neutral"), "NEUTRAL");
    }

    #[test]
    fn confirmation_names_pending_symbols_as_given() {
        let cfg = CompatSection::default();
        let d = Dashboard::new(&cfg);
        let t = d
            .translate(
                &Resolver::new(&cfg, &Default::default()),
                &json!({"symbols": ["BTC", "NOPE"]}),
            )
            .unwrap();
        let reply = json!({"pending": ["ticks:NOPE", "signals:NOPE", "signals:BTCUSDT"]});
        let c = Dashboard::confirmed(&t.names, &reply);
        assert_eq!(c["symbols"], json!(["BTC", "NOPE"]));
        assert_eq!(c["pending"], json!(["NOPE"]));
        assert!(d
            .translate(
                &Resolver::new(&cfg, &Default::default()),
                &json!({"symbols": ["BAD SYM"]})
            )
            .is_err());
    }
}
