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
//! exact-size chunks, and whatever frames the response body has queued go out
//! in one vectored write (no copy into a write buffer either).
//!
//! A refused upgrade (401, 403, 429, ...) gets its complete response and the
//! connection is closed.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::rc::Rc;
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

/// Bytes taken from the response body ahead of the socket: the same bound as
/// actix-http's write buffer, so back-pressure reaches the body as before.
const WRITE_AHEAD_BYTES: usize = 32 * 1024;

/// Frames handed to one `writev` (Linux's `IOV_MAX`): everything queued goes out in one call.
const MAX_IOVECS: usize = 1024;

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
    let (head, body) = response.into_parts();
    if head.status() != StatusCode::SWITCHING_PROTOCOLS {
        Box::pin(refuse(io, codec, head, body)).await;
        return;
    }
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
    let mut conn = Conn {
        io,
        body,
        out: VecDeque::new(),
        queued: 0,
        reading: true,
        body_done: false,
        stall_limit,
        stalled_since: None,
        stall_timer: None,
    };
    conn.push(out.freeze());
    match poll_fn(|cx| conn.poll(cx, &feed)).await {
        Ok(()) => {
            let Conn { io, body, .. } = conn;
            // Dropping the body first tells the handler the connection is over.
            drop(body);
            Box::pin(close(io)).await;
        }
        Err(e) => {
            if e.kind() == STALLED {
                // Reset rather than FIN: the unsent data would otherwise keep the socket alive.
                let _ = socket2::SockRef::from(&conn.io).set_linger(Some(Duration::ZERO));
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
    close(io).await;
}

/// An upgraded connection: the socket, the response body, and frames taken from it not yet written.
struct Conn {
    io: TcpStream,
    body: BoxBody,
    /// Frames taken from the body, in order; the front one may be partly written.
    out: VecDeque<Bytes>,
    /// Sum of `out`'s lengths.
    queued: usize,
    /// The peer has not closed its side yet.
    reading: bool,
    /// The body has ended: once `out` is written the connection is done.
    body_done: bool,
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
    fn push(&mut self, frame: Bytes) {
        if !frame.is_empty() {
            self.queued += frame.len();
            self.out.push_back(frame);
        }
    }

    /// Moves bytes both ways until the body has ended and everything is written.
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
        loop {
            while !self.body_done && self.queued < WRITE_AHEAD_BYTES {
                match Pin::new(&mut self.body).poll_next(cx) {
                    Poll::Ready(Some(Ok(frame))) => self.push(frame),
                    Poll::Ready(Some(Err(e))) => {
                        tracing::debug!(error = %e, "WebSocket response body failed.");
                        self.body_done = true;
                    }
                    Poll::Ready(None) => self.body_done = true,
                    Poll::Pending => break,
                }
            }
            if self.out.is_empty() {
                self.stalled_since = None;
                if self.out.capacity() > 8 {
                    // A burst is over: do not keep its queue's capacity on an idle connection.
                    self.out = VecDeque::new();
                }
                break;
            }
            match self.io.poll_write_ready(cx) {
                Poll::Pending => break,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => match self.write_some() {
                    Ok(()) => self.stalled_since = None,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                },
            }
        }
        if self.body_done && self.out.is_empty() {
            return Poll::Ready(Ok(()));
        }
        if !self.out.is_empty() {
            return self.poll_stall(cx);
        }
        Poll::Pending
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

    /// One vectored write of the queued frames; drops what was written.
    fn write_some(&mut self) -> io::Result<()> {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let mut count = 0;
        for (slot, frame) in slices.iter_mut().zip(self.out.iter()) {
            *slot = IoSlice::new(frame);
            count += 1;
        }
        let mut written = self.io.try_write_vectored(&slices[..count])?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.queued -= written;
        while written > 0 {
            let Some(front) = self.out.front_mut() else {
                break;
            };
            if front.len() <= written {
                written -= front.len();
                self.out.pop_front();
            } else {
                *front = front.slice(written..);
                written = 0;
            }
        }
        Ok(())
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
        q.reader = Some(cx.waker().clone());
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
async fn close(mut io: TcpStream) {
    let _ = io.shutdown().await;
    let answered = tokio::time::timeout(LINGER, async {
        let mut buf = [0u8; 512];
        loop {
            match tokio::io::AsyncReadExt::read(&mut io, &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    if answered.is_err() {
        let _ = socket2::SockRef::from(&io).set_linger(Some(Duration::ZERO));
    }
}
