//! WebSocket connections served without actix-http's per-connection buffers.
//!
//! Why: actix-http's HTTP/1 dispatcher keeps a fixed 8 KiB read buffer and an
//! 8 KiB write buffer for the whole life of a connection. For a WebSocket that
//! idles between ticks those 16 KiB were most of its memory (valgrind massif
//! at 2,000 idle clients: 16.4 KiB of 18.6 KB per connection). actix-http
//! offers the way out itself: an *upgrade service* receives each upgrade
//! request together with its socket and the dispatcher's buffers.
//!
//! [`serve`] runs that request through the same actix-web `App` as every
//! other request, so routing, admission (origin, JWT, limits) and the
//! `/ws` and `/socket.io/` handlers are unchanged. It then writes the
//! response head with actix-http's own encoder and moves bytes itself,
//! keeping no buffer: what the socket delivers goes to the request payload in
//! exact-size chunks. Frames are written by the connection's own task while
//! the socket takes them ([`Link`]); this loop writes only what the socket
//! left over, when it has room again (no copy into a write buffer either).
//!
//! A refused upgrade (401, 403, 429, ...) gets its complete response and the
//! connection is closed.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use actix_codec::{Encoder, Framed, FramedParts};
use actix_http::error::PayloadError;
use actix_http::h1::{self, Message};
use actix_http::BoxedPayloadStream;
use actix_http::{ConnectionType, Request, Response, StatusCode};
use actix_web::body::{self, BodySize, BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::web::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::write::{Flush, Link};

/// How long a closed connection waits for the peer's FIN, so our last frames are not cut by a
/// reset; a peer that has not closed by then is reset (see [`close`]).
const LINGER: Duration = Duration::from_secs(1);

/// The error of a connection whose socket took no bytes for the stall limit.
pub const STALLED: io::ErrorKind = io::ErrorKind::TimedOut;

/// Whether a WebSocket read error is [`serve`] giving up on a socket that took no data (a slow consumer).
pub fn is_stall(e: &actix_http::ws::ProtocolError) -> bool {
    let actix_http::ws::ProtocolError::Io(e) = e else {
        return false;
    };
    // actix-ws wraps the payload's error: Io(other(PayloadError::Io(TimedOut))).
    matches!(
        e.get_ref().and_then(|inner| inner.downcast_ref::<PayloadError>()),
        Some(PayloadError::Io(inner)) if inner.kind() == STALLED
    )
}

/// Handles one upgrade request on its socket until the connection ends.
///
/// `app` is an actix-web application service built from the same routes as
/// the HTTP server. Runs as a task of its own; errors are logged here.
///
/// A socket that accepts no bytes for `stall_limit` while frames wait is
/// aborted (reset, kernel buffers freed) and the handler's payload ends with a
/// [`STALLED`] error. The handler's own slow-consumer rule is meant to act
/// first: `stall_limit` covers a client that stopped reading for good and
/// never takes even its close frame.
pub async fn serve<S, B>(
    app: Rc<S>,
    req: Request,
    framed: Framed<TcpStream, h1::Codec>,
    stall_limit: Duration,
) where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    // The dispatcher gives upgrade requests no payload; the handler reads the
    // WebSocket's frames from this one, which the loop below feeds.
    let inbound = Rc::new(RefCell::new(Inbound::default()));
    let payload: BoxedPayloadStream = Box::pin(InboundStream(inbound.clone()));
    let feed = Feed(inbound);
    let (req, _) = req.replace_payload(actix_http::Payload::from(payload));
    // Boxed, like every one-off step here: this future lives inside the
    // dispatcher's for the whole connection, so only the copying loop is kept inline.
    let response: Response<BoxBody> = match Box::pin(app.call(req)).await {
        Ok(res) => Response::from(res.map_into_boxed_body()),
        Err(e) => e.error_response().into(),
    };
    drop(app);
    let FramedParts {
        io,
        mut codec,
        read_buf,
        ..
    } = framed.into_parts();
    let (mut head, body) = response.into_parts();
    if head.status() != StatusCode::SWITCHING_PROTOCOLS {
        Box::pin(refuse(io, codec, head, body)).await;
        return;
    }
    let Some(link) = head.extensions_mut().remove::<Link>() else {
        tracing::error!("A WebSocket upgrade without a writer link; closing the connection.");
        return;
    };
    let mut out = BytesMut::new();
    if let Err(e) = codec.encode(Message::Item((head, BodySize::Stream)), &mut out) {
        tracing::debug!(error = %e, "Could not encode the 101 response.");
        return;
    }
    drop(codec);
    if !read_buf.is_empty() {
        // Frames the client sent right behind its request.
        feed.data(read_buf.freeze());
    } else {
        drop(read_buf);
    }
    let io = Arc::new(io);
    link.attach(&io, out.freeze());
    let mut conn = Conn {
        io,
        link,
        reading: true,
        stall_limit,
        stalled_since: None,
        stall_timer: None,
    };
    let ended = poll_fn(|cx| conn.poll(cx, &feed)).await;
    let Conn { io, .. } = conn;
    // Dropping the body first tells the handler the connection is over, and unlinks the socket from its writer.
    drop(body);
    match ended {
        Ok(()) => Box::pin(close(io)).await,
        Err(e) => {
            if e.kind() == STALLED {
                // Reset rather than FIN: the unsent data would otherwise keep the socket alive.
                let _ = socket2::SockRef::from(io.as_ref()).set_linger(Some(Duration::ZERO));
            }
            tracing::debug!(error = %e, "WebSocket connection ended by an I/O error.");
            feed.error(e);
        }
    }
}

/// Writes a refused upgrade's complete response and closes the connection.
async fn refuse(mut io: TcpStream, mut codec: h1::Codec, mut head: Response<()>, body: BoxBody) {
    let bytes = body::to_bytes(body).await.unwrap_or_default();
    head.head_mut().set_connection_type(ConnectionType::Close);
    let mut out = BytesMut::new();
    let encoded = codec
        .encode(
            Message::Item((head, BodySize::Sized(bytes.len() as u64))),
            &mut out,
        )
        .and_then(|()| codec.encode(Message::Chunk(Some(bytes)), &mut out))
        .and_then(|()| codec.encode(Message::Chunk(None), &mut out));
    if let Err(e) = encoded {
        tracing::debug!(error = %e, "Could not encode a refused upgrade's response.");
        return;
    }
    let _ = io.write_all(&out).await;
    close(Arc::new(io)).await;
}

/// An upgraded connection: the socket and the link to its writer's queue.
struct Conn {
    /// Shared with the writer, which writes to it itself while nothing is queued.
    io: Arc<TcpStream>,
    /// The writer's queue: what the socket left over is written from here.
    link: Link,
    /// The peer has not closed its side yet.
    reading: bool,
    /// How long the socket may take no bytes while frames wait.
    stall_limit: Duration,
    /// Since when frames have waited with the socket taking none.
    stalled_since: Option<tokio::time::Instant>,
    /// Wakes the loop to check `stalled_since`; created at the first stall
    /// (boxed: only connections that ever stalled pay for it) and left armed,
    /// so a connection that keeps filling its socket does not churn the timer wheel.
    stall_timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Conn {
    /// Moves bytes both ways until the writer is done and everything is written.
    fn poll(&mut self, cx: &mut Context<'_>, feed: &Feed) -> Poll<io::Result<()>> {
        while self.reading {
            if feed.paused(cx) {
                break;
            }
            match self.io.poll_read_ready(cx) {
                Poll::Pending => break,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => match read_chunk(&self.io) {
                    Ok(Some(chunk)) => feed.data(chunk),
                    Ok(None) => {
                        feed.eof();
                        self.reading = false;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                },
            }
        }
        match self.link.poll_flush(cx, &self.io) {
            Err(e) => Poll::Ready(Err(e)),
            Ok(Flush::Done) => Poll::Ready(Ok(())),
            Ok(Flush::Idle) => {
                self.stalled_since = None;
                Poll::Pending
            }
            Ok(Flush::Blocked { wrote }) => {
                if wrote {
                    self.stalled_since = None;
                }
                self.poll_stall(cx)
            }
        }
    }

    /// Frames wait and the socket takes none: fails once that has lasted `stall_limit`.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let now = tokio::time::Instant::now();
        let since = *self.stalled_since.get_or_insert(now);
        let deadline = since + self.stall_limit;
        if deadline <= now {
            return Poll::Ready(Err(io::Error::new(
                STALLED,
                format!("the peer took no data for {:?}", self.stall_limit),
            )));
        }
        let timer = self
            .stall_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() > deadline || timer.is_elapsed() {
            // Armed for an earlier stall that ended, or fired already: aim it at this one.
            timer.as_mut().reset(deadline);
        }
        if timer.as_mut().poll(cx).is_ready() {
            // Fired for a stall that ended and a new one began since; wake again to re-check.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

/// Unread bytes the handler may fall behind by before the socket is not read any more.
const READ_AHEAD_BYTES: usize = 64 * 1024;

/// Bytes from the socket waiting for the handler (the request payload's shared state).
#[derive(Default)]
struct Inbound {
    chunks: VecDeque<Bytes>,
    bytes: usize,
    eof: bool,
    error: Option<io::Error>,
    /// The handler waiting for bytes.
    reader: Option<Waker>,
    /// The connection loop waiting for the handler to catch up.
    feeder: Option<Waker>,
}

/// The feeding half, held by the connection loop; dropping it ends the payload.
struct Feed(Rc<RefCell<Inbound>>);

impl Drop for Feed {
    /// The connection is over whatever the socket said last: the handler sees the payload end.
    fn drop(&mut self) {
        self.eof();
    }
}

impl Feed {
    /// True while the handler has [`READ_AHEAD_BYTES`] unread; it wakes the loop when it reads.
    fn paused(&self, cx: &mut Context<'_>) -> bool {
        let mut q = self.0.borrow_mut();
        if q.bytes < READ_AHEAD_BYTES {
            return false;
        }
        q.feeder = Some(cx.waker().clone());
        true
    }

    fn push(&self, f: impl FnOnce(&mut Inbound)) {
        if Rc::strong_count(&self.0) == 1 {
            // The handler dropped its payload: what the peer sends is discarded.
            return;
        }
        let mut q = self.0.borrow_mut();
        f(&mut q);
        if let Some(w) = q.reader.take() {
            w.wake();
        }
    }

    fn data(&self, chunk: Bytes) {
        self.push(|q| {
            q.bytes += chunk.len();
            q.chunks.push_back(chunk);
        });
    }

    fn eof(&self) {
        self.push(|q| q.eof = true);
    }

    fn error(&self, e: io::Error) {
        self.push(|q| q.error = Some(e));
    }
}

/// The request payload the handler reads (actix-ws decodes its frames from it).
struct InboundStream(Rc<RefCell<Inbound>>);

impl Stream for InboundStream {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut q = self.0.borrow_mut();
        if let Some(chunk) = q.chunks.pop_front() {
            q.bytes -= chunk.len();
            if q.chunks.is_empty() {
                q.chunks = VecDeque::new();
            }
            if let Some(w) = q.feeder.take() {
                w.wake();
            }
            return Poll::Ready(Some(Ok(chunk)));
        }
        if let Some(e) = q.error.take() {
            return Poll::Ready(Some(Err(PayloadError::Io(e))));
        }
        if q.eof {
            return Poll::Ready(None);
        }
        // Polled on every wake-up of the connection task (each tick): keep the waker rather than clone it again.
        match &q.reader {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => q.reader = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Reads what the socket has (up to 4 KiB) into an exact-size chunk; `None` at end of stream.
fn read_chunk(io: &TcpStream) -> io::Result<Option<Bytes>> {
    let mut buf = [0u8; 4096];
    match io.try_read(&mut buf)? {
        0 => Ok(None),
        n => Ok(Some(Bytes::copy_from_slice(&buf[..n]))),
    }
}

/// Ends the connection politely: FIN after the last frame, then a short wait for the peer's.
///
/// Closing with unread data in the receive buffer would send a reset, which
/// can make the peer discard our close frame before reading it; so unread
/// bytes are drained while we wait.
///
/// A peer that has not closed within [`LINGER`] is reset, as nginx's
/// `reset_timedout_connection` does. A healthy client answers our FIN within
/// a round trip; one that stopped reading never does, and a plain close would
/// leave the kernel holding the socket, our unsent frames and their buffers
/// for minutes while it probes the peer's closed window (FIN_WAIT1).
async fn close(io: Arc<TcpStream>) {
    // Shared with the writer until the body was dropped; a socket is shut down and read through `&`.
    let _ = socket2::SockRef::from(io.as_ref()).shutdown(std::net::Shutdown::Write);
    let answered = tokio::time::timeout(LINGER, async {
        let mut buf = [0u8; 512];
        loop {
            if io.readable().await.is_err() {
                break;
            }
            match io.try_read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
    })
    .await;
    if answered.is_err() {
        let _ = socket2::SockRef::from(io.as_ref()).set_linger(Some(Duration::ZERO));
    }
}
