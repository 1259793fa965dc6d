//! A publication: one message on one channel, validated once, encoded at most once per protocol.

use std::sync::OnceLock;

use bytestring::ByteString;
use tickstream_model::{Channel, Tick};

use crate::websocket::write::encode;

/// One message on one channel, validated once and shared by every receiver.
///
/// The payload JSON is kept as received (ticks: as re-encoded from the
/// validated [`Tick`]); each protocol's framing is built lazily, the first
/// time a receiver of that protocol needs it, and then shared: a publication
/// with only native receivers never builds its Socket.IO frame and the other
/// way round.
#[derive(Debug)]
pub struct Publication {
    /// Which channel, so a connection can drop items it no longer wants and conflation keys by it.
    pub channel: Channel,
    /// The payload's `seq` (0 when its kind has none), so a connection can skip what its snapshot covered.
    pub seq: u64,
    /// The payload JSON object (`data` in every protocol's framing).
    data: ByteString,
    /// `{"event":…,"data":…}`, built on first use; see [`Publication::native`].
    native: OnceLock<ByteString>,
    /// [`Publication::native`] as a complete WebSocket text frame, built on first use.
    ws: OnceLock<actix_web::web::Bytes>,
    /// `42["event",data]`, built on first use; see [`Publication::socketio`].
    socketio: OnceLock<ByteString>,
    /// [`Publication::socketio`] as a complete WebSocket text frame, built on first use.
    socketio_ws: OnceLock<actix_web::web::Bytes>,
}

impl Publication {
    /// Wraps an already validated payload of `channel`.
    pub fn new(channel: Channel, seq: u64, data: ByteString) -> Self {
        Self {
            channel,
            seq,
            data,
            native: OnceLock::new(),
            ws: OnceLock::new(),
            socketio: OnceLock::new(),
            socketio_ws: OnceLock::new(),
        }
    }

    /// A validated tick as a `ticks:` publication.
    pub fn tick(tick: &Tick) -> Self {
        Self::new(
            Channel::ticks(&tick.symbol),
            tick.seq,
            ByteString::from(tick.to_json()),
        )
    }

    /// Validates a message of `channel`: a tick of the channel's symbol for
    /// `ticks:`, a JSON object (with an optional numeric `seq`) for every
    /// other kind. Cached values go through the same check as live ones.
    pub fn decode(channel: &Channel, payload: &[u8]) -> Result<Self, String> {
        Self::decode_timed(channel, payload).map(|(p, _)| p)
    }

    /// [`Publication::decode`], also returning a tick's upstream timestamp (for the latency histogram).
    pub(crate) fn decode_timed(
        channel: &Channel,
        payload: &[u8],
    ) -> Result<(Self, Option<chrono::DateTime<chrono::Utc>>), String> {
        if channel.is_ticks() {
            let tick = Tick::from_json(payload).map_err(|e| e.to_string())?;
            if Some(tick.symbol.as_str()) != channel.symbol() {
                return Err(format!("tick of {} on {channel}", tick.symbol));
            }
            return Ok((Self::tick(&tick), Some(tick.timestamp)));
        }
        /// The one field the engine reads; the rest is checked to be JSON and passed on as is.
        #[derive(serde::Deserialize)]
        struct Envelope {
            #[serde(default)]
            seq: Option<u64>,
        }
        let text = std::str::from_utf8(payload).map_err(|e| e.to_string())?;
        if !text.trim_start().starts_with('{') {
            return Err("not a JSON object".to_owned());
        }
        let envelope: Envelope = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let data = ByteString::from(text.trim().to_owned());
        Ok((
            Self::new(channel.clone(), envelope.seq.unwrap_or(0), data),
            None,
        ))
    }

    /// This publication as seen on an alias channel (`ticks:BTC` fed from `ticks:BTCUSDT`):
    /// the payload's `symbol` replaced by the alias's, everything else unchanged.
    /// `None` when the payload has no `symbol` to replace (a keyless kind).
    pub fn renamed(&self, alias: &Channel) -> Option<Self> {
        let symbol = alias.symbol()?;
        let mut value: serde_json::Value = serde_json::from_str(&self.data).ok()?;
        let obj = value.as_object_mut()?;
        obj.get("symbol")?;
        obj.insert(
            "symbol".to_owned(),
            serde_json::Value::String(symbol.to_owned()),
        );
        let data = ByteString::from(value.to_string());
        Some(Self::new(alias.clone(), self.seq, data))
    }

    /// The event name clients receive, from the channel's kind.
    pub fn event(&self) -> &'static str {
        self.channel.event()
    }

    /// The payload JSON.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The native frame `{"event":NAME,"data":PAYLOAD}`, encoded once and shared by every native receiver.
    pub fn native(&self) -> &ByteString {
        self.native.get_or_init(|| {
            let event = self.event();
            let mut frame = String::with_capacity(self.data.len() + event.len() + 20);
            frame.push_str(r#"{"event":""#);
            frame.push_str(event);
            frame.push_str(r#"","data":"#);
            frame.push_str(&self.data);
            frame.push('}');
            ByteString::from(frame)
        })
    }

    /// [`Publication::native`] as a complete WebSocket text frame, so each native receiver queues the same bytes.
    pub fn ws(&self) -> &actix_web::web::Bytes {
        self.ws
            .get_or_init(|| encode(actix_http::ws::OpCode::Text, self.native().as_bytes()))
    }

    /// The Socket.IO packet `42["NAME",PAYLOAD]`, encoded once and shared by every Socket.IO receiver.
    ///
    /// The bytes are the same over polling and WebSocket (Engine.IO `4` +
    /// Socket.IO `2`), so one encoding serves both transports.
    pub fn socketio(&self) -> &ByteString {
        self.socketio.get_or_init(|| {
            let event = self.event();
            let mut packet = String::with_capacity(self.data.len() + event.len() + 8);
            packet.push_str(r#"42[""#);
            packet.push_str(event);
            packet.push_str(r#"","#);
            packet.push_str(&self.data);
            packet.push(']');
            ByteString::from(packet)
        })
    }

    /// [`Publication::socketio`] as a complete WebSocket text frame, shared by every Socket.IO WebSocket receiver.
    pub fn socketio_ws(&self) -> &actix_web::web::Bytes {
        self.socketio_ws
            .get_or_init(|| encode(actix_http::ws::OpCode::Text, self.socketio().as_bytes()))
    }
}

/// What travels through a connection's bounded queue.
pub type Outbound = std::sync::Arc<Publication>;
