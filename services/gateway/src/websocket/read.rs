//! A WebSocket connection's read side (`/ws` and Socket.IO): client frames decoded straight from the request payload.
//!
//! actix-ws's `MessageStream` only comes with its `Session`, whose channel
//! (32 slots, allocated up front) costs 1.8 KB per connection that our
//! connections never use: they write through the write half, `websocket::write::WsOut`.
//! [`WsIn`] is the part of it they need: actix-http's frame [`Codec`] (masking,
//! frame size limit, control frames) plus the aggregation of continuation
//! frames into one message, with the same item type as actix-ws so the
//! connection code reads either alike.
//!
//! The connection is over when the payload ends: [`crate::upgrade`] ends it
//! when the socket closes or the connection loop stops.

use std::io;

use actix_codec::Decoder;
use actix_http::ws::{Codec, Frame, Item, ProtocolError};
use actix_web::web::{Bytes, BytesMut};
use actix_ws::AggregatedMessage;
use bytestring::ByteString;
use futures_util::StreamExt;

/// The message being reassembled from continuation frames.
struct Partial {
    text: bool,
    data: BytesMut,
}

/// Client messages of one native connection.
pub struct WsIn {
    payload: actix_web::dev::Payload,
    /// Received bytes not yet decoded into a frame (empty, and unallocated, between frames).
    buf: BytesMut,
    codec: Codec,
    partial: Option<Partial>,
    /// Largest message, continuations included.
    max_message: usize,
    /// The stream has ended (end of payload or an error was returned).
    done: bool,
}

impl WsIn {
    /// Reads `payload`, refusing frames and messages larger than `max_bytes`.
    pub fn new(payload: actix_web::dev::Payload, max_bytes: usize) -> Self {
        WsIn {
            payload,
            buf: BytesMut::new(),
            codec: Codec::new().max_size(max_bytes),
            partial: None,
            max_message: max_bytes,
            done: false,
        }
    }

    /// The next message; `None` once the connection is over. Cancel-safe (state lives in `self`).
    pub async fn recv(&mut self) -> Option<Result<AggregatedMessage, ProtocolError>> {
        loop {
            if self.done {
                return None;
            }
            match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => {
                    if self.buf.is_empty() {
                        // Do not keep the last chunk's capacity on an idle connection.
                        self.buf = BytesMut::new();
                    }
                    match self.aggregate(frame) {
                        Ok(Some(msg)) => return Some(Ok(msg)),
                        Ok(None) => continue,
                        Err(e) => return Some(Err(self.fail(e))),
                    }
                }
                Ok(None) => {}
                Err(e) => return Some(Err(self.fail(e))),
            }
            match self.payload.next().await {
                Some(Ok(bytes)) => self.buf.extend_from_slice(&bytes),
                // Wrapped as actix-ws does, so `upgrade::is_stall` reads both alike.
                Some(Err(e)) => {
                    return Some(Err(self.fail(ProtocolError::Io(io::Error::other(e)))))
                }
                None => self.done = true,
            }
        }
    }

    fn fail(&mut self, e: ProtocolError) -> ProtocolError {
        self.done = true;
        e
    }

    /// A complete message, `None` while a fragmented one is still arriving.
    fn aggregate(&mut self, frame: Frame) -> Result<Option<AggregatedMessage>, ProtocolError> {
        let msg = match frame {
            Frame::Text(data) => AggregatedMessage::Text(text(data)?),
            Frame::Binary(data) => AggregatedMessage::Binary(data),
            Frame::Ping(data) => AggregatedMessage::Ping(data),
            Frame::Pong(data) => AggregatedMessage::Pong(data),
            Frame::Close(reason) => AggregatedMessage::Close(reason),
            Frame::Continuation(item) => return self.continuation(item),
        };
        Ok(Some(msg))
    }

    /// RFC 6455 §5.4: a fragmented message is one first frame, any continuations, one last;
    /// control frames may come in between, other data frames may not.
    fn continuation(&mut self, item: Item) -> Result<Option<AggregatedMessage>, ProtocolError> {
        let (first, last, chunk) = match item {
            Item::FirstText(b) => (Some(true), false, b),
            Item::FirstBinary(b) => (Some(false), false, b),
            Item::Continue(b) => (None, false, b),
            Item::Last(b) => (None, true, b),
        };
        let partial = match (first, self.partial.as_mut()) {
            (Some(text), None) => self.partial.insert(Partial {
                text,
                data: BytesMut::new(),
            }),
            (None, Some(partial)) => partial,
            // The codec already refuses both; kept so this never relies on it silently.
            (Some(_), Some(_)) => return Err(ProtocolError::ContinuationStarted),
            (None, None) => return Err(ProtocolError::ContinuationNotStarted),
        };
        if partial.data.len() + chunk.len() > self.max_message {
            return Err(ProtocolError::Overflow);
        }
        partial.data.extend_from_slice(&chunk);
        if !last {
            return Ok(None);
        }
        let Some(Partial {
            text: is_text,
            data,
        }) = self.partial.take()
        else {
            return Ok(None);
        };
        let data = data.freeze();
        Ok(Some(if is_text {
            AggregatedMessage::Text(text(data)?)
        } else {
            AggregatedMessage::Binary(data)
        }))
    }
}

/// A text message's payload, which must be UTF-8 (close 1007 otherwise).
fn text(data: Bytes) -> Result<ByteString, ProtocolError> {
    ByteString::try_from(data).map_err(|e| {
        ProtocolError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("text frame is not valid UTF-8: {e}"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_http::ws::{OpCode, Parser};

    /// A masked client frame, as a browser sends it.
    fn client_frame(op: OpCode, fin: bool, payload: &[u8]) -> Bytes {
        let mut buf = BytesMut::new();
        Parser::write_message(&mut buf, payload, op, fin, true);
        buf.freeze()
    }

    fn ws_in(chunks: Vec<Bytes>, max: usize) -> WsIn {
        let stream: actix_http::BoxedPayloadStream =
            Box::pin(futures_util::stream::iter(chunks.into_iter().map(Ok)));
        WsIn::new(actix_web::dev::Payload::from(stream), max)
    }

    #[tokio::test]
    async fn frames_split_anywhere_and_fragmented_messages_are_reassembled() {
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&client_frame(OpCode::Text, true, b"{\"event\":\"ping\"}"));
        wire.extend_from_slice(&client_frame(OpCode::Text, false, b"hel"));
        wire.extend_from_slice(&client_frame(OpCode::Ping, true, b"p"));
        wire.extend_from_slice(&client_frame(OpCode::Continue, false, b"lo "));
        wire.extend_from_slice(&client_frame(OpCode::Continue, true, "wörld".as_bytes()));
        wire.extend_from_slice(&client_frame(OpCode::Binary, true, &[0, 1]));
        // Delivered three bytes at a time: frames straddle chunks.
        let chunks = wire.chunks(3).map(Bytes::copy_from_slice).collect();
        let mut rx = ws_in(chunks, 1024);
        let mut got = Vec::new();
        while let Some(msg) = rx.recv().await {
            got.push(format!("{:?}", msg.unwrap()));
        }
        assert_eq!(
            got,
            [
                r#"Text("{\"event\":\"ping\"}")"#,
                r#"Ping(b"p")"#,
                r#"Text("hello wörld")"#,
                r#"Binary(b"\0\x01")"#,
            ]
        );
    }

    #[tokio::test]
    async fn oversized_bad_utf8_and_bad_sequences_are_errors_that_end_the_stream() {
        let big = client_frame(OpCode::Text, true, &[b'x'; 40]);
        let mut rx = ws_in(vec![big], 32);
        assert!(matches!(
            rx.recv().await,
            Some(Err(ProtocolError::Overflow))
        ));
        assert!(rx.recv().await.is_none());

        // The limit holds for the reassembled message too.
        let parts = vec![
            client_frame(OpCode::Text, false, &[b'x'; 20]),
            client_frame(OpCode::Continue, true, &[b'x'; 20]),
        ];
        let mut rx = ws_in(parts, 32);
        assert!(matches!(
            rx.recv().await,
            Some(Err(ProtocolError::Overflow))
        ));

        let mut rx = ws_in(vec![client_frame(OpCode::Text, true, &[0xff, 0xfe])], 32);
        let Some(Err(ProtocolError::Io(e))) = rx.recv().await else {
            panic!("bad UTF-8 accepted");
        };
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);

        let mut rx = ws_in(vec![client_frame(OpCode::Continue, true, b"x")], 32);
        assert!(matches!(
            rx.recv().await,
            Some(Err(ProtocolError::ContinuationNotStarted))
        ));
        assert!(rx.recv().await.is_none());

        // An unmasked frame from a client is refused by the codec.
        let mut unmasked = BytesMut::new();
        Parser::write_message(&mut unmasked, b"hi", OpCode::Text, true, false);
        let mut rx = ws_in(vec![unmasked.freeze()], 32);
        assert!(matches!(rx.recv().await, Some(Err(_))));
    }

    #[tokio::test]
    async fn a_payload_error_is_reported_wrapped_like_actix_ws() {
        use actix_http::error::PayloadError;
        let stream: actix_http::BoxedPayloadStream =
            Box::pin(futures_util::stream::iter(vec![Err(PayloadError::Io(
                io::Error::new(crate::websocket::upgrade::STALLED, "stalled"),
            ))]));
        let mut rx = WsIn::new(actix_web::dev::Payload::from(stream), 32);
        let Some(Err(e)) = rx.recv().await else {
            panic!("payload error lost");
        };
        assert!(crate::websocket::upgrade::is_stall(&e));
    }
}
