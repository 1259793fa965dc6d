//! The subscription engine: which local client wants which symbol, and fan-out.
//!
//! One `Hub` serves every protocol. A tick arriving from Redis is validated,
//! serialized once into a [`TickFrame`], and the same `Arc` is offered to every
//! subscriber's [`Outlet`] (a bounded queue that conflates to the newest tick
//! per symbol when full), so a slow client never blocks the Redis reader or
//! anyone else, and fan-out allocates nothing per receiver. The hub is the source of truth the Redis
//! [`Subscriber`](tickstream_bus::Subscriber) reconciles against: a symbol is
//! subscribed in Redis exactly while some local client wants it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use bytestring::ByteString;
use tickstream_bus::ChannelHandler;
use tickstream_model::{Symbol, Tick};

use crate::metrics::GatewayMetrics;
use crate::outlet::{Offer, Outlet};

/// One tick, encoded once, shared by every receiver.
#[derive(Debug)]
pub struct TickFrame {
    /// Which symbol, so a connection can drop frames it no longer wants.
    pub symbol: Symbol,
    /// The tick's seq, so a connection can skip what its snapshot already covered.
    pub seq: u64,
    /// The complete native frame `{"event":"price_update","data":{tick}}`.
    pub native: ByteString,
    /// `native` as a complete WebSocket text frame, so each receiver queues the same bytes.
    pub ws: actix_web::web::Bytes,
    /// The Engine.IO/Socket.IO packet `42["price_update",{tick}]`, built on first use; see [`TickFrame::socketio`].
    socketio: OnceLock<ByteString>,
    /// [`TickFrame::socketio`] as a complete WebSocket text frame, built on first use; see [`TickFrame::socketio_ws`].
    socketio_ws: OnceLock<actix_web::web::Bytes>,
}

/// What precedes the tick JSON in [`TickFrame::native`].
const NATIVE_PREFIX: &str = r#"{"event":"price_update","data":"#;

impl TickFrame {
    /// The Socket.IO packet for this tick, encoded once and shared by every Socket.IO receiver.
    ///
    /// Lazy (`OnceLock`) rather than eager: the Redis reader thread that
    /// builds frames stays as cheap as before when no Socket.IO client holds
    /// the symbol (the common case for a native-only deployment), and when
    /// some do, the first of their connection tasks pays one copy of the tick
    /// JSON and every other one gets the same bytes. The bytes are the same
    /// over polling and WebSocket (Engine.IO `4` + Socket.IO `2`), so one
    /// encoding serves both transports.
    pub fn socketio(&self) -> &ByteString {
        self.socketio.get_or_init(|| {
            let json = self
                .native
                .strip_prefix(NATIVE_PREFIX)
                .and_then(|rest| rest.strip_suffix('}'))
                .unwrap_or("null");
            let mut packet = String::with_capacity(json.len() + 20);
            packet.push_str(r#"42["price_update","#);
            packet.push_str(json);
            packet.push(']');
            ByteString::from(packet)
        })
    }

    /// [`TickFrame::socketio`] as a complete WebSocket text frame, encoded once and shared by
    /// every Socket.IO WebSocket receiver (as [`TickFrame::ws`] is for native ones).
    pub fn socketio_ws(&self) -> &actix_web::web::Bytes {
        self.socketio_ws.get_or_init(|| {
            crate::wsout::encode(actix_http::ws::OpCode::Text, self.socketio().as_bytes())
        })
    }
}

/// What travels through a connection's bounded queue.
pub type Outbound = std::sync::Arc<TickFrame>;

/// Process-unique connection number.
pub type ClientId = u64;

/// Subscribers of one symbol: a dense vector for fast fan-out plus an index for O(1) removal.
#[derive(Default)]
struct Subscribers {
    /// Walked on every tick.
    queues: Vec<(ClientId, Arc<Outlet>)>,
    /// Position of each client in `queues`.
    index: HashMap<ClientId, usize>,
}

impl Subscribers {
    fn insert(&mut self, id: ClientId, tx: &Arc<Outlet>) -> bool {
        if self.index.contains_key(&id) {
            return false;
        }
        self.index.insert(id, self.queues.len());
        self.queues.push((id, tx.clone()));
        true
    }

    fn remove(&mut self, id: ClientId) -> bool {
        let Some(pos) = self.index.remove(&id) else {
            return false;
        };
        self.queues.swap_remove(pos);
        if let Some((moved, _)) = self.queues.get(pos) {
            self.index.insert(*moved, pos);
        }
        true
    }
}

/// The subscription table plus fan-out.
pub struct Hub {
    /// symbol → its local subscribers; read-locked per tick, write-locked only on (un)subscribe.
    table: RwLock<HashMap<Symbol, Subscribers>>,
    /// Total client-symbol pairs, for `/stats` without walking the table.
    subscriptions: AtomicI64,
    /// Source of connection ids.
    next_client: AtomicU64,
    /// Random per-process prefix so client ids differ across replicas and restarts.
    id_prefix: u32,
    /// Counters updated by fan-out.
    metrics: GatewayMetrics,
}

impl Hub {
    /// An empty hub reporting into `metrics`.
    pub fn new(metrics: GatewayMetrics) -> Self {
        Self {
            table: RwLock::new(HashMap::new()),
            subscriptions: AtomicI64::new(0),
            next_client: AtomicU64::new(1),
            id_prefix: rand::random(),
            metrics,
        }
    }

    /// A fresh connection id and its public string form (`connected.client_id`).
    pub fn new_client(&self) -> (ClientId, String) {
        let n = self.next_client.fetch_add(1, Ordering::Relaxed);
        (n, format!("{:08x}-{n}", self.id_prefix))
    }

    /// Adds `client` to each symbol; returns the symbols that had no local subscriber before.
    pub fn subscribe(&self, client: ClientId, tx: &Arc<Outlet>, symbols: &[Symbol]) -> Vec<Symbol> {
        let mut first = Vec::new();
        let Ok(mut table) = self.table.write() else {
            return first;
        };
        let mut added = 0;
        for sym in symbols {
            let entry = table.entry(sym.clone()).or_default();
            let was_empty = entry.queues.is_empty();
            if entry.insert(client, tx) {
                added += 1;
                if was_empty {
                    first.push(sym.clone());
                }
            }
        }
        self.metrics.active_symbols.set(table.len() as i64);
        drop(table);
        let total = self.subscriptions.fetch_add(added, Ordering::Relaxed) + added;
        self.metrics.subscriptions.set(total);
        first
    }

    /// Removes `client` from each symbol; returns the symbols nobody local wants any more.
    pub fn unsubscribe<'a>(
        &self,
        client: ClientId,
        symbols: impl IntoIterator<Item = &'a Symbol>,
    ) -> Vec<Symbol> {
        let mut emptied = Vec::new();
        let Ok(mut table) = self.table.write() else {
            return emptied;
        };
        let mut removed = 0;
        for sym in symbols {
            if let Some(entry) = table.get_mut(sym.as_str()) {
                if entry.remove(client) {
                    removed += 1;
                }
                if entry.queues.is_empty() {
                    table.remove(sym.as_str());
                    emptied.push(sym.clone());
                }
            }
        }
        self.metrics.active_symbols.set(table.len() as i64);
        drop(table);
        let total = self.subscriptions.fetch_sub(removed, Ordering::Relaxed) - removed;
        self.metrics.subscriptions.set(total);
        emptied
    }

    /// Client-symbol pairs currently held.
    pub fn total_subscriptions(&self) -> i64 {
        self.subscriptions.load(Ordering::Relaxed)
    }

    /// Each active symbol with its local subscriber count, sorted by symbol.
    pub fn subscriptions_by_symbol(&self) -> Vec<(Symbol, usize)> {
        let mut out: Vec<(Symbol, usize)> = match self.table.read() {
            Ok(t) => t
                .iter()
                .map(|(s, subs)| (s.clone(), subs.queues.len()))
                .collect(),
            Err(_) => Vec::new(),
        };
        out.sort();
        out
    }

    /// Builds the shared frame for a validated tick.
    pub fn encode(tick: &Tick) -> TickFrame {
        let json = tick.to_json();
        let mut native = String::with_capacity(json.len() + 36);
        native.push_str(NATIVE_PREFIX);
        native.push_str(&json);
        native.push('}');
        let ws = crate::wsout::encode(actix_http::ws::OpCode::Text, native.as_bytes());
        TickFrame {
            symbol: tick.symbol.clone(),
            seq: tick.seq,
            ws,
            native: ByteString::from(native),
            socketio: OnceLock::new(),
            socketio_ws: OnceLock::new(),
        }
    }

    /// Offers one frame to every subscriber of its symbol without waiting for anyone.
    pub fn dispatch(&self, frame: Outbound) {
        let (mut sent, mut conflated, mut full) = (0u64, 0u64, 0u64);
        if let Ok(table) = self.table.read() {
            if let Some(subs) = table.get(frame.symbol.as_str()) {
                for (_, outlet) in &subs.queues {
                    match outlet.offer(&frame) {
                        Offer::Delivered => sent += 1,
                        // Queue full: kept as this client's newest pending tick, an older one superseded.
                        Offer::Conflated => {
                            sent += 1;
                            conflated += 1;
                        }
                        // Being disconnected as a slow consumer: dropped for it only.
                        Offer::Dropped => full += 1,
                        // Connection is closing; its cleanup removes it from the table.
                        Offer::Closed => {}
                    }
                }
            }
        }
        if sent > 0 {
            self.metrics.messages_sent.inc_by(sent);
        }
        if conflated > 0 {
            self.metrics.dropped_conflated.inc_by(conflated);
        }
        if full > 0 {
            self.metrics.dropped_queue_full.inc_by(full);
        }
    }
}

impl ChannelHandler for Hub {
    fn on_message(&self, channel: &str, payload: &[u8]) {
        let Some(symbol) = channel.strip_prefix("ticks:") else {
            return;
        };
        let tick = match Tick::from_json(payload) {
            Ok(t) if t.symbol.as_str() == symbol => t,
            Ok(t) => {
                self.metrics.ticks_invalid.inc();
                tracing::debug!(channel = symbol, symbol = %t.symbol, "Tick symbol does not match its channel; skipped.");
                return;
            }
            Err(e) => {
                self.metrics.ticks_invalid.inc();
                tracing::debug!(channel = symbol, error = %e, "Invalid tick skipped.");
                return;
            }
        };
        self.metrics.ticks_received.inc();
        let age = chrono::Utc::now() - tick.timestamp;
        if let Ok(age) = age.to_std() {
            self.metrics.tick_latency.observe(age.as_secs_f64());
        }
        self.dispatch(std::sync::Arc::new(Self::encode(&tick)));
    }

    fn wants(&self, channel: &str) -> bool {
        let Some(symbol) = channel.strip_prefix("ticks:") else {
            return false;
        };
        self.table
            .read()
            .map(|t| t.contains_key(symbol))
            .unwrap_or(false)
    }

    fn wanted(&self) -> Vec<String> {
        self.table
            .read()
            .map(|t| t.keys().map(|s| format!("ticks:{s}")).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    fn tick(s: &str, seq: u64) -> Vec<u8> {
        format!(r#"{{"symbol":"{s}","price":1.5,"timestamp":"2025-11-01T10:30:00.000Z","source":"sim","seq":{seq}}}"#).into_bytes()
    }

    #[test]
    fn first_and_last_subscriber_are_reported() {
        let hub = Hub::new(GatewayMetrics::new());
        let (tx1, _rx1) = Outlet::new(4);
        let (tx2, _rx2) = Outlet::new(4);
        assert_eq!(
            hub.subscribe(1, &tx1, &[sym("A"), sym("B")]),
            vec![sym("A"), sym("B")]
        );
        assert_eq!(hub.subscribe(2, &tx2, &[sym("A")]), Vec::<Symbol>::new());
        assert_eq!(
            hub.subscribe(2, &tx2, &[sym("A")]),
            Vec::<Symbol>::new(),
            "idempotent"
        );
        assert_eq!(hub.total_subscriptions(), 3);
        assert!(hub.wants("ticks:A") && hub.wants("ticks:B") && !hub.wants("ticks:C"));
        assert_eq!(hub.unsubscribe(1, &[sym("A")]), Vec::<Symbol>::new());
        assert_eq!(hub.unsubscribe(2, &[sym("A")]), vec![sym("A")]);
        assert_eq!(hub.unsubscribe(1, &[sym("B"), sym("Z")]), vec![sym("B")]);
        assert_eq!(hub.total_subscriptions(), 0);
        assert!(hub.wanted().is_empty());
    }

    #[test]
    fn fan_out_shares_one_frame_and_respects_bounds() {
        let metrics = GatewayMetrics::new();
        let hub = Hub::new(metrics.clone());
        let (tx1, mut rx1) = Outlet::new(8);
        let (tx2, mut rx2) = Outlet::new(1);
        let (tx3, mut rx3) = Outlet::new(8);
        hub.subscribe(1, &tx1, &[sym("BTCUSDT")]);
        hub.subscribe(2, &tx2, &[sym("BTCUSDT")]);
        hub.subscribe(3, &tx3, &[sym("ETHUSDT")]);
        hub.on_message("ticks:BTCUSDT", &tick("BTCUSDT", 1));
        hub.on_message("ticks:BTCUSDT", &tick("BTCUSDT", 2));
        let a = rx1.try_recv().unwrap();
        let b = rx2.try_recv().unwrap();
        assert!(
            std::sync::Arc::ptr_eq(&a, &b),
            "one encoding shared by receivers"
        );
        assert!(a
            .native
            .starts_with(r#"{"event":"price_update","data":{"symbol":"BTCUSDT""#));
        assert!(
            std::ptr::eq(a.socketio(), b.socketio()),
            "one Socket.IO encoding too"
        );
        assert!(
            std::ptr::eq(a.socketio_ws(), b.socketio_ws()),
            "and one Socket.IO WebSocket frame"
        );
        let mut ws_frame = actix_web::web::BytesMut::from(&a.socketio_ws()[..]);
        let mut parser = actix_http::ws::Codec::new().client_mode();
        match actix_codec::Decoder::decode(&mut parser, &mut ws_frame).unwrap() {
            Some(actix_http::ws::Frame::Text(payload)) => {
                assert_eq!(&payload[..], a.socketio().as_bytes());
            }
            other => panic!("not one text frame: {other:?}"),
        }
        assert!(ws_frame.is_empty(), "exactly one frame");
        let sio: &str = a.socketio();
        assert!(
            sio.starts_with(r#"42["price_update",{"symbol":"BTCUSDT""#),
            "{sio}"
        );
        let v: serde_json::Value = serde_json::from_str(&sio[2..]).unwrap();
        let native: serde_json::Value = serde_json::from_str(&a.native).unwrap();
        assert_eq!(v[1], native["data"], "same tick in both protocols");
        assert_eq!(rx1.try_recv().unwrap().seq, 2);
        assert!(
            rx2.try_recv().is_none(),
            "the overflow waits in the conflation slot, not the queue"
        );
        let mut pending = Vec::new();
        assert!(tx2.take_pending(&rx2, &mut pending));
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].seq, 2);
        assert!(rx3.try_recv().is_none(), "other symbol not delivered");
        assert_eq!(metrics.messages_sent.get(), 4);
        assert_eq!(metrics.dropped.with_label_values(&["queue_full"]).get(), 0);
        assert_eq!(metrics.dropped.with_label_values(&["conflated"]).get(), 0);
    }

    #[test]
    fn invalid_and_mismatched_ticks_are_counted_and_skipped() {
        let metrics = GatewayMetrics::new();
        let hub = Hub::new(metrics.clone());
        let (tx, mut rx) = Outlet::new(8);
        hub.subscribe(1, &tx, &[sym("AAPL")]);
        hub.on_message("ticks:AAPL", b"garbage");
        hub.on_message("ticks:AAPL", &tick("MSFT", 1));
        hub.on_message("ticks:AAPL", br#"{"symbol":"AAPL","price":-1,"timestamp":"2025-11-01T10:30:00Z","source":"sim","seq":1}"#);
        assert!(rx.try_recv().is_none());
        assert_eq!(metrics.ticks_invalid.get(), 3);
        assert_eq!(metrics.ticks_received.get(), 0);
    }
}
