//! The properties the fuzz targets assert, written once for two callers.
//!
//! `fuzz/fuzz_targets/*.rs` (cargo fuzz, libFuzzer) hand every generated
//! input to one of these functions; `tests/corpus.rs` (plain `cargo test`,
//! stable, part of `make test`) feeds every file of `fuzz/corpus/<target>/`
//! through the same functions. A property violation is a panic, which
//! libFuzzer reports as a crash with the input saved as a reproducer.
//!
//! Each check goes beyond "does not panic" where that is cheap: accepted
//! values re-encode and re-parse to themselves, normalized symbols are
//! idempotent, error frames are well-formed JSON with the documented code.
//!
//! # Layout
//! - [`TARGETS`]: target name (= fuzz target = corpus folder) → check.
//! - [`native_protocol`], [`engineio_packet`], [`socketio_packet`]: the gateway's parsers.
//! - [`model_tick_symbol`]: `Tick::from_json`, `Symbol::parse`, `Symbol::parse_list`.
//! - [`upstream_binance`], [`upstream_coinbase`], [`upstream_finnhub`],
//!   [`upstream_twelvedata`]: each ingestor's WebSocket and REST parsers.

#![forbid(unsafe_code)]

use base64::Engine as _;
use gateway::client::request::{Action, ClientError, Targets};
use gateway::native::frame as protocol;
use gateway::socketio::packet::{self, EioPacket, SioKind, SioPacket};
use serde_json::Value;
use tickstream_model::{Symbol, Tick, Trade};
use tickstream_upstream::{Quote, TradePrint, WsEvent};

/// What a check saw, so the corpus test can insist a corpus exercises the accepting path too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The parser accepted the input (and the properties held).
    Accepted,
    /// The parser refused the input cleanly (and the refusal was well-formed).
    Rejected,
}

/// A property check: panics when a property fails.
pub type Check = fn(&[u8]) -> Outcome;

/// Every target, by the name its fuzz target and corpus folder carry.
pub const TARGETS: &[(&str, Check)] = &[
    ("native_protocol", native_protocol),
    ("engineio_packet", engineio_packet),
    ("socketio_packet", socketio_packet),
    ("model_tick_symbol", model_tick_symbol),
    ("upstream_binance", upstream_binance),
    ("upstream_coinbase", upstream_coinbase),
    ("upstream_finnhub", upstream_finnhub),
    ("upstream_twelvedata", upstream_twelvedata),
];

/// Longest error message we accept sending back; a longer one would echo attacker input.
/// (The parser quotes at most 64 characters of input, each at most 10 bytes once escaped.)
const MAX_ERROR_MESSAGE: usize = 1024;

/// The gateway's default `max_symbols_per_connection`, and two edges around it.
const SYMBOL_LIMITS: [usize; 3] = [0, 3, 200];

fn outcome(accepted: bool) -> Outcome {
    if accepted {
        Outcome::Accepted
    } else {
        Outcome::Rejected
    }
}

/// The gateway only ever sees valid UTF-8 text frames (anything else is closed with 1007).
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A normalized symbol: charset, length, and `parse` is idempotent on it.
fn assert_symbol(sym: &Symbol) {
    let s = sym.as_str();
    assert!(
        !s.is_empty() && s.len() <= tickstream_model::symbol::MAX_SYMBOL_LEN,
        "symbol {s:?} has a bad length"
    );
    assert!(
        s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"._/-".contains(&b)),
        "symbol {s:?} has a character outside [A-Z0-9._/-]"
    );
    assert_eq!(
        Symbol::parse(s).as_ref(),
        Ok(sym),
        "Symbol::parse is not idempotent on {s:?}"
    );
}

/// An `error` frame as the gateway would send it: JSON, event `error`, the code, a short message.
fn assert_error_frame(e: &ClientError) {
    assert!(
        !e.message.is_empty(),
        "empty error message for {:?}",
        e.code
    );
    assert!(
        e.message.len() <= MAX_ERROR_MESSAGE,
        "error message of {} bytes echoes too much input",
        e.message.len()
    );
    if let Some(id) = &e.id {
        assert!(
            id.is_string() || id.is_number(),
            "error id {id} is not a string or number"
        );
    }
    let frame = protocol::error(e);
    let v: Value = match serde_json::from_str(&frame) {
        Ok(v) => v,
        Err(err) => panic!("error frame {frame:?} is not JSON: {err}"),
    };
    assert_eq!(v["event"], "error", "{frame}");
    assert_eq!(v["data"]["code"], e.code.as_str(), "{frame}");
    assert_eq!(v.get("id"), e.id.as_ref(), "{frame}");
}

/// The targets of an accepted subscribe/unsubscribe: non-empty, within the limit, unique, normalized.
fn assert_targets(targets: &Targets, max: usize) {
    let (symbols, channels) = (&targets.symbols, &targets.channels);
    assert!(
        !symbols.is_empty() || !channels.is_empty(),
        "accepted an empty subscription"
    );
    assert!(
        symbols.len() + channels.len() <= max,
        "accepted {} symbols and {} channels with a limit of {max}",
        symbols.len(),
        channels.len()
    );
    for (i, s) in symbols.iter().enumerate() {
        assert_symbol(s);
        assert!(!symbols[..i].contains(s), "duplicate symbol {s}");
    }
    for (i, c) in channels.iter().enumerate() {
        let again = tickstream_model::Channel::parse(c.as_str())
            .unwrap_or_else(|e| panic!("canonical channel {c} does not re-parse: {e}"));
        assert_eq!(&again, c, "channel {c} is not canonical");
        assert!(!channels[..i].contains(c), "duplicate channel {c}");
        if let Some(sym) = c.symbol() {
            let sym = Symbol::parse(sym).unwrap_or_else(|e| panic!("channel {c}: {e}"));
            assert_symbol(&sym);
        }
    }
}

fn assert_action(action: &Action, max: usize) {
    match action {
        Action::Subscribe {
            targets, recovery, ..
        } => {
            assert_targets(targets, max);
            for (channel, _) in recovery.iter().flat_map(|r| &r.since) {
                assert!(
                    channel.spec().history,
                    "recovery of {channel}, which keeps no history"
                );
                assert!(
                    targets.all().contains(channel),
                    "{channel} recovered but not subscribed"
                );
            }
        }
        Action::Unsubscribe(targets) => assert_targets(targets, max),
        Action::History { channel, .. } => {
            assert!(
                channel.spec().history,
                "history of {channel}, which keeps none"
            );
        }
        Action::List | Action::Ping => {}
    }
}

/// The native client-message parser (`protocol::parse`) at several symbol limits.
///
/// Properties: an accepted request has a string/number id and a unique,
/// normalized, non-empty symbol list within the limit; raising the limit
/// never changes an accepted answer; re-serializing the request's JSON
/// gives the same request; a refusal renders as a well-formed `error` frame.
pub fn native_protocol(data: &[u8]) -> Outcome {
    let Some(text) = text(data) else {
        return Outcome::Rejected;
    };
    let mut accepted = false;
    let mut previous: Option<Result<protocol::Request, ClientError>> = None;
    for max in SYMBOL_LIMITS {
        let parsed = protocol::parse(text, max);
        match &parsed {
            Ok(req) => {
                accepted = true;
                assert_action(&req.action, max);
                if let Some(id) = &req.id {
                    assert!(id.is_string() || id.is_number(), "id {id}");
                }
                // The same JSON, re-serialized, is the same request.
                if let Ok(v) = serde_json::from_str::<Value>(text) {
                    let again = protocol::parse(&v.to_string(), max);
                    assert_eq!(again.as_ref().ok(), Some(req), "re-serialized {v}");
                }
                if let Some(Ok(before)) = &previous {
                    assert_eq!(before, req, "a higher symbol limit changed the answer");
                }
            }
            Err(e) => {
                assert_error_frame(e);
                if let Some(Ok(_)) = &previous {
                    panic!("a higher symbol limit ({max}) refused what a lower one accepted");
                }
            }
        }
        previous = Some(parsed);
    }
    outcome(accepted)
}

/// Re-encodes a decoded Engine.IO packet; `None` where the encoding is not unique.
fn encode_eio(p: &EioPacket<'_>) -> Option<String> {
    Some(match p {
        EioPacket::Ping(d) => format!("2{d}"),
        EioPacket::Pong(d) => format!("3{d}"),
        EioPacket::Message(d) => format!("4{d}"),
        EioPacket::Binary(b) => format!("b{}", base64::engine::general_purpose::STANDARD.encode(b)),
        // Open, close, upgrade and noop ignore what follows their digit.
        EioPacket::Open | EioPacket::Close | EioPacket::Upgrade | EioPacket::Noop => return None,
    })
}

/// The Engine.IO decoders (`parse_eio` for WebSocket and polling, `parse_payload`).
///
/// Properties: data-carrying packets re-encode to exactly their input
/// (base64 included); the `b` form is refused outside polling; a polling
/// body decodes to one packet per `\x1e`-separated part, each the same as
/// decoding that part alone; every accepted `4` message goes on to the
/// Socket.IO check.
pub fn engineio_packet(data: &[u8]) -> Outcome {
    let Some(text) = text(data) else {
        return Outcome::Rejected;
    };
    let mut accepted = false;
    for polling in [false, true] {
        if let Ok(p) = packet::parse_eio(text, polling) {
            accepted = true;
            if let Some(again) = encode_eio(&p) {
                assert_eq!(again, text, "{p:?} re-encoded differently");
            }
            if !polling {
                assert!(!matches!(p, EioPacket::Binary(_)), "base64 outside polling");
            }
            if let EioPacket::Message(m) = p {
                let _ = socketio_text(m);
            }
        }
    }
    match packet::parse_payload(text) {
        Ok(packets) => {
            accepted = true;
            let parts: Vec<&str> = text.split(packet::SEPARATOR).collect();
            assert_eq!(packets.len(), parts.len(), "packet count of {text:?}");
            for (p, part) in packets.iter().zip(parts) {
                assert_eq!(packet::parse_eio(part, true).as_ref(), Ok(p), "{part:?}");
            }
        }
        Err(_) => {
            assert!(
                text.split(packet::SEPARATOR)
                    .any(|part| packet::parse_eio(part, true).is_err()),
                "parse_payload refused {text:?} although every part parses"
            );
        }
    }
    outcome(accepted)
}

/// Re-encodes a Socket.IO packet; `None` for binary kinds, whose attachment count is not kept.
fn encode_sio(p: &SioPacket) -> Option<String> {
    let kind = match p.kind {
        SioKind::Connect => '0',
        SioKind::Disconnect => '1',
        SioKind::Event => '2',
        SioKind::Ack => '3',
        SioKind::ConnectError => '4',
        SioKind::BinaryEvent | SioKind::BinaryAck => return None,
    };
    let mut out = kind.to_string();
    if p.nsp != "/" {
        out.push_str(&p.nsp);
        out.push(',');
    }
    if let Some(id) = p.id {
        out.push_str(&id.to_string());
    }
    if let Some(d) = &p.data {
        out.push_str(&d.to_string());
    }
    Some(out)
}

/// The Socket.IO decoder on a `str`; shared with the Engine.IO check's `4` messages.
fn socketio_text(text: &str) -> Outcome {
    let Ok(p) = packet::parse_sio(text) else {
        return Outcome::Rejected;
    };
    assert!(p.nsp.starts_with('/'), "namespace {:?}", p.nsp);
    match (p.kind, &p.data) {
        (SioKind::Event | SioKind::BinaryEvent, Some(Value::Array(items))) => {
            let Some(Value::String(name)) = items.first() else {
                panic!("event without a name accepted: {text:?}");
            };
            // What the gateway does with an event: the native action parser on its first argument.
            let arg = items.get(1).unwrap_or(&Value::Null);
            for max in SYMBOL_LIMITS {
                match gateway::client::request::parse_action(name, arg, max) {
                    Ok(action) => assert_action(&action, max),
                    Err(e) => assert_error_frame(&e),
                }
            }
        }
        (SioKind::Event | SioKind::BinaryEvent, other) => panic!("event data {other:?}"),
        (SioKind::Ack | SioKind::BinaryAck, _) => assert!(p.id.is_some(), "ack without id"),
        (SioKind::Disconnect, d) => assert!(d.is_none(), "disconnect with data"),
        _ => {}
    }
    if let Some(again) = encode_sio(&p) {
        assert_eq!(
            packet::parse_sio(&again).as_ref(),
            Ok(&p),
            "{text:?} re-encoded as {again:?}"
        );
    }
    // The server's own encodings of what it might answer are valid packets.
    if p.kind == SioKind::Connect {
        let refusal = packet::connect_error(&p.nsp, "Invalid namespace");
        let decoded = refusal
            .strip_prefix('4')
            .map(packet::parse_sio)
            .and_then(Result::ok);
        assert!(
            decoded.is_some_and(|d| d.kind == SioKind::ConnectError),
            "{refusal:?}"
        );
    }
    Outcome::Accepted
}

/// The Socket.IO decoder (`parse_sio`), then the event path the gateway takes.
///
/// Properties: the namespace starts with `/`; kind and payload agree (event:
/// array led by a name; ack: has an id; disconnect: no data); a non-binary
/// packet re-encodes and re-parses to itself; an event's first argument
/// through `parse_action` is a valid action or a well-formed `error`.
pub fn socketio_packet(data: &[u8]) -> Outcome {
    match text(data) {
        Some(t) => socketio_text(t),
        None => Outcome::Rejected,
    }
}

/// A valid tick's contract JSON parses back to the same tick and serializes identically.
fn assert_tick_round_trip(t: &Tick) {
    if let Err(e) = t.validate() {
        panic!("invalid tick {t:?}: {e}");
    }
    assert_symbol(&t.symbol);
    let json = t.to_json();
    let back = match Tick::from_json(json.as_bytes()) {
        Ok(b) => b,
        Err(e) => panic!("{json} does not parse back: {e}"),
    };
    assert_eq!(&back, t, "round trip through {json}");
    assert_eq!(back.to_json(), json, "serialization is not stable");
}

/// `Tick::from_json` on the bytes, `Symbol::parse` and `Symbol::parse_list` on the text.
///
/// Properties: an accepted tick validates, round-trips through its JSON to
/// an equal value, and serializes the same way twice; a parsed symbol is
/// normalized and idempotent (and case-insensitive); a parsed list is
/// unique and parses back from its own `,`-join.
pub fn model_tick_symbol(data: &[u8]) -> Outcome {
    let mut accepted = false;
    if let Ok(t) = Tick::from_json(data) {
        accepted = true;
        assert_tick_round_trip(&t);
    }
    let Some(text) = text(data) else {
        return outcome(accepted);
    };
    if let Ok(sym) = Symbol::parse(text) {
        accepted = true;
        assert_symbol(&sym);
        assert_eq!(
            Symbol::parse(&text.to_ascii_lowercase()).as_ref(),
            Ok(&sym),
            "case changed the symbol"
        );
    }
    if let Ok(list) = Symbol::parse_list(text) {
        accepted |= !list.is_empty();
        for (i, s) in list.iter().enumerate() {
            assert_symbol(s);
            assert!(!list[..i].contains(s), "duplicate {s}");
        }
        let joined: Vec<&str> = list.iter().map(Symbol::as_str).collect();
        assert_eq!(
            Symbol::parse_list(&joined.join(",")).as_ref(),
            Ok(&list),
            "list does not re-parse"
        );
    }
    outcome(accepted)
}

/// A quote as an ingestor publishes it: the publisher skips any quote
/// [`Quote::validated`] refuses; the rest have a positive price and become
/// valid ticks that round-trip. A refusal must agree with the tick contract.
fn assert_quotes(quotes: &[Quote], source: &str) {
    for q in quotes {
        let tick = q.clone().into_tick(source, 1);
        match q.clone().validated() {
            Ok(q) => {
                assert!(q.price.is_finite() && q.price > 0.0, "price {}", q.price);
                assert_tick_round_trip(&tick);
            }
            Err(e) => assert!(
                tick.validate().is_err(),
                "Quote::validated refused a valid tick {tick:?}: {e}"
            ),
        }
    }
}

/// A trade as an ingestor publishes it: the publisher skips any print
/// [`TradePrint::validated`] refuses; the rest have a positive price and a
/// non-negative size and become valid trades that round-trip. A refusal must
/// agree with the trade contract.
fn assert_trades(prints: &[TradePrint], source: &str) {
    for p in prints {
        let trade = p.clone().into_trade(source, 1);
        match p.clone().validated() {
            Ok(p) => {
                assert!(p.price.is_finite() && p.price > 0.0, "price {}", p.price);
                assert!(p.size.is_finite() && p.size >= 0.0, "size {}", p.size);
                let json = trade.to_json();
                let back = Trade::from_json(json.as_bytes())
                    .unwrap_or_else(|e| panic!("trade {json} does not re-parse: {e}"));
                assert_eq!(back.to_json(), json, "trade does not round-trip");
            }
            Err(e) => assert!(
                trade.validate().is_err(),
                "TradePrint::validated refused a valid trade {trade:?}: {e}"
            ),
        }
    }
}

fn assert_ws_event(ev: &WsEvent, source: &str) {
    match ev {
        WsEvent::Quotes(q) => assert_quotes(q, source),
        WsEvent::Trades { trades, quotes } => {
            assert_quotes(quotes, source);
            assert_trades(trades, source);
        }
        _ => {}
    }
}

/// The quotes of a frame that carries market data (with or without trades).
fn quotes_of(ev: &WsEvent) -> Option<&[Quote]> {
    match ev {
        WsEvent::Quotes(q) | WsEvent::Trades { quotes: q, .. } => Some(q),
        _ => None,
    }
}

/// One fixed symbol for REST parsers that are told which symbol they asked for.
fn rest_symbol() -> Symbol {
    match Symbol::parse("AAPL") {
        Ok(s) => s,
        Err(e) => panic!("constant symbol: {e}"),
    }
}

/// A fixed receive time for parsers whose bodies carry no time.
fn received() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(1_763_000_000_000).unwrap_or_default()
}

/// Binance: `parse_ws` (combined, raw, control frames) and `parse_rest`.
///
/// Properties: every quote has a positive price and becomes a valid tick
/// that round-trips; parsing is deterministic.
pub fn upstream_binance(data: &[u8]) -> Outcome {
    let Some(text) = text(data) else {
        return Outcome::Rejected;
    };
    let source = ingest_binance::SOURCE;
    let mut accepted = false;
    if let Ok(ev) = ingest_binance::parse::parse_ws(text) {
        accepted = true;
        assert_ws_event(&ev, source);
        assert_eq!(ingest_binance::parse::parse_ws(text).ok(), Some(ev));
    }
    if let Ok(q) = ingest_binance::parse::parse_rest(text) {
        accepted = true;
        assert_quotes(&q, source);
    }
    outcome(accepted)
}

/// Coinbase: `CoinbaseParser::parse_ws` (with its per-product sequence filter) and `parse_rest`.
///
/// Properties: quotes become valid ticks and matches valid trades (with a side and
/// an id); a ticker with a `sequence`, or a match with a `trade_id`, seen a second
/// time by the same parser is dropped as stale.
pub fn upstream_coinbase(data: &[u8]) -> Outcome {
    let Some(text) = text(data) else {
        return Outcome::Rejected;
    };
    let source = ingest_coinbase::SOURCE;
    let mut accepted = false;
    let parser = ingest_coinbase::parse::CoinbaseParser::default();
    if let Ok(ev) = parser.parse_ws(text) {
        accepted = true;
        assert_ws_event(&ev, source);
        let has_sequence = serde_json::from_str::<Value>(text)
            .is_ok_and(|v| v.get("sequence").is_some_and(Value::is_u64));
        if let WsEvent::Trades { trades, .. } = &ev {
            assert!(
                trades
                    .iter()
                    .all(|t| t.side.is_some() && t.trade_id.is_some()),
                "a Coinbase match has a side and an id"
            );
            assert_eq!(
                parser.parse_ws(text).ok(),
                Some(WsEvent::Control),
                "a repeated trade_id was not dropped"
            );
        }
        if matches!(ev, WsEvent::Quotes(_)) && has_sequence {
            assert_eq!(
                parser.parse_ws(text).ok(),
                Some(WsEvent::Control),
                "a repeated sequence was not dropped"
            );
        }
    }
    if let Ok(q) = ingest_coinbase::parse::parse_rest(&rest_symbol(), text) {
        accepted = true;
        assert_quotes(&[q], source);
    }
    outcome(accepted)
}

/// Finnhub: `FinnhubParser::parse_ws` (trade batches, running day volume), `parse_rest`, `parse_global_quote`.
///
/// Properties: quotes become valid ticks, one per symbol per batch, with a
/// non-negative running volume; feeding the same batch twice never lowers it;
/// trades become valid trades without side or id, each with its symbol's quote.
pub fn upstream_finnhub(data: &[u8]) -> Outcome {
    let Some(text) = text(data) else {
        return Outcome::Rejected;
    };
    let source = ingest_finnhub::SOURCE;
    let mut accepted = false;
    let parser = ingest_finnhub::parse::FinnhubParser::default();
    if let Ok(ev) = parser.parse_ws(text) {
        accepted = true;
        assert_ws_event(&ev, source);
        if let WsEvent::Trades { trades, .. } = &ev {
            for t in trades {
                assert!(
                    t.side.is_none() && t.trade_id.is_none(),
                    "Finnhub gives no side and no id"
                );
                assert!(
                    quotes_of(&ev).is_some_and(|q| q.iter().any(|q| q.symbol == t.symbol)),
                    "a trade of {} without its symbol's quote",
                    t.symbol
                );
            }
        }
        if let Some(first) = quotes_of(&ev) {
            for (i, q) in first.iter().enumerate() {
                assert!(
                    !first[..i].iter().any(|o| o.symbol == q.symbol),
                    "two quotes for {} in one batch",
                    q.symbol
                );
            }
            if let Some(second) = parser.parse_ws(text).ok().as_ref().and_then(quotes_of) {
                assert_quotes(second, source);
                for (a, b) in first.iter().zip(second) {
                    assert!(
                        b.volume >= a.volume,
                        "running volume of {} went down",
                        a.symbol
                    );
                }
            }
        }
    }
    let symbol = rest_symbol();
    if let Ok(q) = ingest_finnhub::parse::parse_rest(&symbol, text) {
        accepted = true;
        assert_quotes(&[q], source);
    }
    if let Ok(q) = ingest_finnhub::parse::parse_global_quote(&symbol, text, received()) {
        accepted = true;
        assert_quotes(&[q], source);
    }
    outcome(accepted)
}

/// Twelve Data: `parse_ws`, `parse_rest` (one symbol and a batch) and `is_rate_limited`.
///
/// Properties: quotes become valid ticks; a batch answer holds only
/// symbols that were asked for, each at most once.
pub fn upstream_twelvedata(data: &[u8]) -> Outcome {
    let Some(text) = text(data) else {
        return Outcome::Rejected;
    };
    let source = ingest_twelvedata::SOURCE;
    let mut accepted = false;
    if let Ok(ev) = ingest_twelvedata::parse::parse_ws(text) {
        accepted = true;
        assert_ws_event(&ev, source);
    }
    let asked: Vec<Symbol> = ["AAPL", "EUR/USD", "BTC/USD"]
        .iter()
        .filter_map(|s| Symbol::parse(s).ok())
        .collect();
    for symbols in [&asked[..1], &asked[..]] {
        if let Ok(q) = ingest_twelvedata::parse::parse_rest(symbols, text, received()) {
            accepted = true;
            assert_quotes(&q, source);
            assert!(q.len() <= symbols.len(), "more quotes than symbols");
            for (i, x) in q.iter().enumerate() {
                assert!(
                    symbols.contains(&x.symbol),
                    "{} was not asked for",
                    x.symbol
                );
                assert!(!q[..i].iter().any(|o| o.symbol == x.symbol), "duplicate");
            }
        }
    }
    if ingest_twelvedata::parse::is_rate_limited(text) {
        accepted = true;
    }
    outcome(accepted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        let sub = br#"{"event":"subscribe","data":{"symbols":["btcusdt"]},"id":1}"#;
        assert_eq!(native_protocol(sub), Outcome::Accepted);
        assert_eq!(native_protocol(b"not json"), Outcome::Rejected);
        assert_eq!(native_protocol(&[0xff, 0xfe]), Outcome::Rejected);
        assert_eq!(engineio_packet(b"42[\"ping\"]"), Outcome::Accepted);
        assert_eq!(engineio_packet(b"x"), Outcome::Rejected);
        assert_eq!(socketio_packet(b"2[\"list\"]"), Outcome::Accepted);
        assert_eq!(socketio_packet(b"2{}"), Outcome::Rejected);
        assert_eq!(model_tick_symbol(b"eur/usd"), Outcome::Accepted);
        assert_eq!(model_tick_symbol(b"a b"), Outcome::Rejected);
        assert_eq!(TARGETS.len(), 8);
    }

    #[test]
    #[should_panic(expected = "duplicate symbol")]
    fn symbol_list_property_can_fail() {
        let a = Symbol::parse("A").unwrap_or_else(|e| panic!("{e}"));
        let targets = Targets {
            symbols: vec![a.clone(), a],
            channels: vec![],
        };
        assert_targets(&targets, 5);
    }
}
