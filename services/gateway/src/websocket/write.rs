//! A WebSocket connection's write side: pre-encoded frames written straight to the socket.
//!
//! The hub encodes each tick's complete WebSocket frame once
//! ([`TickFrame::ws`](crate::fanout::TickFrame::ws)), so every receiver hands
//! the same bytes over. [`WsOut`] is a byte-bounded queue of such frames,
//! linked to the connection's socket once the upgrade is done
//! ([`Link`], taken by [`crate::websocket::upgrade::serve`]). A write finds
//! the queue empty almost always: then the connection task that made it
//! writes the frames to the socket itself, in one vectored write, with no
//! second task woken. Only what the socket does not take at once stays
//! queued, for the upgraded connection's loop to write when the socket has
//! room. Every socket write happens under the queue's lock, so frames keep
//! their order whoever writes them.
//!
//! The inbound side is [`WsIn`], which reads the request payload.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use actix_http::ws::{CloseReason, OpCode, Parser};
use actix_web::body::{BodySize, MessageBody};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::websocket::read::WsIn;

/// Queued bytes above which a write waits for the socket: bounds memory per
/// connection and turns a client that does not read into a blocked write
/// (which the slow-consumer logic times).
pub const HIGH_WATER_BYTES: usize = 32 * 1024;

/// Frames handed to one `writev`: a stack array this size is set up per write of several frames;
/// what is left goes out in the next write.
const MAX_IOVECS: usize = 64;

/// The peer is gone (or the close frame was already sent): nothing more can be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the WebSocket connection is closed")]
pub struct Closed;

/// State shared by the writer, the body and the upgraded connection's loop.
#[derive(Default)]
struct Queue {
    /// Complete frames in write order; the front one may be partly written.
    frames: VecDeque<Bytes>,
    /// Sum of `frames`' lengths.
    bytes: usize,
    /// The connection loop (or the dispatcher) waiting for frames.
    waker: Option<Waker>,
    /// A close frame is queued: the body ends after it, writes are refused.
    closing: bool,
    /// The body was dropped (connection gone): writes are refused.
    gone: bool,
    /// The upgraded socket, once [`Link::attach`]ed: writers write to it themselves while the queue is empty.
    socket: Option<Arc<TcpStream>>,
}

impl Queue {
    /// Appends frames; writes them at once if the socket is linked and nothing was waiting, else wakes the writer loop.
    fn push(&mut self, frames: impl Iterator<Item = Bytes>) {
        let was_empty = self.frames.is_empty();
        for f in frames {
            if !f.is_empty() {
                self.bytes += f.len();
                self.frames.push_back(f);
            }
        }
        if was_empty {
            // Taken and put back rather than cloned: no refcount traffic per write.
            if let Some(io) = self.socket.take() {
                // An error is left for the connection loop, whose own write meets it and ends the connection.
                let _ = self.write_to(&io);
                self.socket = Some(io);
            }
        }
        if !self.frames.is_empty() {
            if let Some(w) = self.waker.take() {
                w.wake();
            }
        }
    }

    /// One vectored write of the queued frames (as many as the socket takes now); drops what was written.
    fn write_to(&mut self, io: &TcpStream) -> io::Result<usize> {
        let written = match self.frames.len() {
            0 => return Ok(0),
            // The usual case (one tick, or a reply): no slice array to set up.
            1 => io.try_write(&self.frames[0])?,
            n => {
                // A 64-slot array (1 KiB to fill), not IOV_MAX's 1,024 (16 KiB per write, 5 % of the CPU in `perf`).
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let count = n.min(MAX_IOVECS);
                for (slot, frame) in slices.iter_mut().zip(self.frames.iter()) {
                    *slot = IoSlice::new(frame);
                }
                io.try_write_vectored(&slices[..count])?
            }
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.bytes -= written;
        let mut left = written;
        while left > 0 {
            let Some(front) = self.frames.front_mut() else {
                break;
            };
            if front.len() <= left {
                left -= front.len();
                self.frames.pop_front();
            } else {
                *front = front.slice(left..);
                left = 0;
            }
        }
        Ok(written)
    }
}

/// Queue plus the wake-up for writers waiting below the high-water mark.
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    room: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue inconsistent (plain pushes/pops).
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The writing half of one WebSocket connection.
pub struct WsOut {
    shared: Arc<Shared>,
}

/// Upgrades the request: the 101 response (whose body is an [`OutBody`], and which carries a [`Link`]), the writer, and the reader.
pub fn handle(
    req: &HttpRequest,
    payload: actix_web::web::Payload,
    max_frame_bytes: usize,
) -> actix_web::Result<(HttpResponse, WsOut, WsIn)> {
    let mut response = actix_http::ws::handshake(req.head())?;
    let shared = Arc::new(Shared::default());
    let body = OutBody {
        shared: shared.clone(),
    };
    let mut response = response.message_body(body)?;
    response.extensions_mut().insert(Link(shared.clone()));
    let response = HttpResponse::from(response).map_into_boxed_body();
    let inbound = WsIn::new(payload.into_inner(), max_frame_bytes);
    Ok((response, WsOut { shared }, inbound))
}

/// The 101 response's way to its writer's queue, so the upgraded connection
/// can hand the socket to the writer and write what is left over itself.
#[derive(Clone)]
pub struct Link(Arc<Shared>);

/// Where the upgraded connection's writing stands after [`Link::poll_flush`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// Nothing is queued; the loop is woken when something is.
    Idle,
    /// Frames wait for the socket to take them.
    Blocked {
        /// The socket took some bytes this time (it is slow, not stalled).
        wrote: bool,
    },
    /// The writer is done (closed or dropped) and everything is written.
    Done,
}

impl Link {
    /// Starts writing on the upgraded socket: `head` (the 101 response) first, then what was queued before, then writers write themselves.
    pub fn attach(&self, io: &Arc<TcpStream>, head: Bytes) {
        let mut q = self.0.lock();
        if !head.is_empty() {
            q.bytes += head.len();
            q.frames.push_front(head);
        }
        q.socket = Some(io.clone());
    }

    /// Writes queued frames while the socket takes them (the upgraded connection's loop).
    pub fn poll_flush(&self, cx: &mut Context<'_>, io: &TcpStream) -> io::Result<Flush> {
        let mut wrote = false;
        loop {
            {
                let mut q = self.0.lock();
                if q.frames.is_empty() {
                    if q.closing || q.gone {
                        return Ok(Flush::Done);
                    }
                    if q.frames.capacity() > 8 {
                        // A burst is over: do not keep its queue's capacity on an idle connection.
                        q.frames = VecDeque::new();
                    }
                    match &q.waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => q.waker = Some(cx.waker().clone()),
                    }
                    return Ok(Flush::Idle);
                }
            }
            match io.poll_write_ready(cx) {
                Poll::Pending => return Ok(Flush::Blocked { wrote }),
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Ready(Ok(())) => {
                    let mut q = self.0.lock();
                    let was_full = q.bytes >= HIGH_WATER_BYTES;
                    match q.write_to(io) {
                        Ok(n) => wrote |= n > 0,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                    let room = was_full && q.bytes < HIGH_WATER_BYTES;
                    drop(q);
                    if room {
                        self.0.room.notify_waiters();
                    }
                }
            }
        }
    }
}

impl WsOut {
    /// Queues one complete, already encoded frame; waits while the queue is above the high-water mark.
    pub async fn frame(&self, frame: Bytes) -> Result<(), Closed> {
        self.push_when_room(std::iter::once(frame)).await
    }

    /// Queues several encoded frames at once (one lock, one wake-up); waits while above the high-water mark.
    ///
    /// `frames` is left empty either way.
    pub async fn frames(&self, frames: &mut Vec<Bytes>) -> Result<(), Closed> {
        self.push_when_room(frames.drain(..)).await
    }

    /// Queues (and usually writes) `frames` if the queue is below the high-water mark, without waiting.
    ///
    /// `Ok(true)`: taken, `frames` is left empty; `Ok(false)`: no room, `frames`
    /// untouched (wait with [`WsOut::frames`]). The tick path tries this first so that
    /// every connection task does not carry the waiting future's state (memory per client).
    pub fn try_frames(&self, frames: &mut Vec<Bytes>) -> Result<bool, Closed> {
        let mut q = self.shared.lock();
        if q.gone || q.closing {
            return Err(Closed);
        }
        if q.bytes >= HIGH_WATER_BYTES {
            return Ok(false);
        }
        q.push(frames.drain(..));
        Ok(true)
    }

    /// Waits until the queue is below the high-water mark, then appends `frames` under one lock.
    async fn push_when_room(&self, frames: impl Iterator<Item = Bytes>) -> Result<(), Closed> {
        loop {
            {
                let mut q = self.shared.lock();
                if q.gone || q.closing {
                    return Err(Closed);
                }
                if q.bytes < HIGH_WATER_BYTES {
                    q.push(frames);
                    return Ok(());
                }
            }
            // Full (rare): register for room, then look again before waiting, so no wake-up is missed.
            let room = self.shared.room.notified();
            let mut room = std::pin::pin!(room);
            room.as_mut().enable();
            {
                let q = self.shared.lock();
                if q.gone || q.closing {
                    return Err(Closed);
                }
                if q.bytes < HIGH_WATER_BYTES {
                    continue;
                }
            }
            room.await;
        }
    }

    /// Queues a text frame.
    pub async fn text(&self, text: impl AsRef<[u8]>) -> Result<(), Closed> {
        self.frame(encode(OpCode::Text, text.as_ref())).await
    }

    /// Queues a ping frame (payload cut to the 125 bytes a control frame may carry).
    pub async fn ping(&self, payload: &[u8]) -> Result<(), Closed> {
        self.frame(encode(OpCode::Ping, control_payload(payload)))
            .await
    }

    /// Queues a pong frame answering a ping.
    pub async fn pong(&self, payload: &[u8]) -> Result<(), Closed> {
        self.frame(encode(OpCode::Pong, control_payload(payload)))
            .await
    }

    /// Queues the close frame without waiting for room (it is tiny and final); the body ends after writing it.
    ///
    /// A client that reads again gets every queued frame and then the close;
    /// one that never reads again loses the socket once it has taken no
    /// bytes for the stall limit ([`crate::websocket::upgrade::serve`]).
    pub fn close(&self, reason: Option<CloseReason>) -> Result<(), Closed> {
        let reason = reason.map(|mut r| {
            if let Some(d) = r.description.as_mut() {
                // Close payload: 2-byte code + reason, at most 125 bytes in all.
                let mut end = d.len().min(123);
                while !d.is_char_boundary(end) {
                    end -= 1;
                }
                d.truncate(end);
            }
            r
        });
        let mut buf = BytesMut::new();
        Parser::write_close(&mut buf, reason, false);
        let mut q = self.shared.lock();
        if q.gone || q.closing {
            return Err(Closed);
        }
        q.push(std::iter::once(buf.freeze()));
        q.closing = true;
        // Written already or not, the connection loop must see the close to end the connection.
        if let Some(w) = q.waker.take() {
            w.wake();
        }
        Ok(())
    }
}

impl Drop for WsOut {
    /// The connection task is done: the body ends once the queued frames are written.
    fn drop(&mut self) {
        let mut q = self.shared.lock();
        q.closing = true;
        if let Some(w) = q.waker.take() {
            w.wake();
        }
    }
}

/// Encodes one unmasked (server → client) frame.
pub fn encode(op: OpCode, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(payload.len() + 10);
    Parser::write_message(&mut buf, payload, op, true, false);
    buf.freeze()
}

fn control_payload(payload: &[u8]) -> &[u8] {
    &payload[..payload.len().min(125)]
}

/// The 101 response's body: hands queued frames to the connection's writer.
pub struct OutBody {
    shared: Arc<Shared>,
}

impl MessageBody for OutBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let mut q = self.shared.lock();
        if let Some(frame) = q.frames.pop_front() {
            let was_full = q.bytes >= HIGH_WATER_BYTES;
            q.bytes -= frame.len();
            let has_room = q.bytes < HIGH_WATER_BYTES;
            drop(q);
            if was_full && has_room {
                self.shared.room.notify_waiters();
            }
            return Poll::Ready(Some(Ok(frame)));
        }
        if q.closing {
            return Poll::Ready(None);
        }
        match &q.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => q.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for OutBody {
    fn drop(&mut self) {
        let mut q = self.shared.lock();
        q.gone = true;
        q.frames.clear();
        q.bytes = 0;
        q.socket = None;
        drop(q);
        self.shared.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    fn pair() -> (WsOut, Pin<Box<OutBody>>) {
        let shared = Arc::new(Shared::default());
        let body = OutBody {
            shared: shared.clone(),
        };
        (WsOut { shared }, Box::pin(body))
    }

    async fn next(body: &mut Pin<Box<OutBody>>) -> Option<Bytes> {
        poll_fn(|cx| body.as_mut().poll_next(cx))
            .await
            .map(|r| r.unwrap())
    }

    #[tokio::test]
    async fn frames_come_out_in_order_and_encoded() {
        let (out, mut body) = pair();
        out.text("hi").await.unwrap();
        out.ping(b"").await.unwrap();
        out.close(Some(actix_http::ws::CloseCode::Away.into()))
            .unwrap();
        assert_eq!(next(&mut body).await.unwrap().as_ref(), b"\x81\x02hi");
        assert_eq!(next(&mut body).await.unwrap().as_ref(), b"\x89\x00");
        assert_eq!(next(&mut body).await.unwrap().as_ref(), b"\x88\x02\x03\xe9");
        assert!(next(&mut body).await.is_none(), "body ends after close");
        assert_eq!(out.text("late").await, Err(Closed));
    }

    #[tokio::test]
    async fn dropping_the_writer_ends_the_body_after_its_frames() {
        let (out, mut body) = pair();
        out.text("last").await.unwrap();
        drop(out);
        assert_eq!(next(&mut body).await.unwrap().as_ref(), b"\x81\x04last");
        assert!(next(&mut body).await.is_none());
    }

    #[tokio::test]
    async fn writes_wait_above_high_water_and_fail_once_the_body_is_gone() {
        let (out, mut body) = pair();
        let big = Bytes::from(vec![b'x'; HIGH_WATER_BYTES]);
        out.frame(big.clone()).await.unwrap();
        let mut blocked = std::pin::pin!(out.frame(big.clone()));
        assert!(
            futures_util::poll!(blocked.as_mut()).is_pending(),
            "above high water"
        );
        assert_eq!(next(&mut body).await.unwrap().len(), HIGH_WATER_BYTES);
        blocked.await.unwrap();
        let mut blocked = std::pin::pin!(out.frame(big));
        assert!(futures_util::poll!(blocked.as_mut()).is_pending());
        drop(body);
        assert_eq!(blocked.await, Err(Closed));
    }
}
