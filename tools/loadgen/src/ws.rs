//! A minimal WebSocket client (RFC 6455) built for load generation.
//!
//! A general client (tungstenite) allocates a `Message` and validates UTF-8
//! per frame; with 1,000 connections receiving a million frames a second on a
//! machine the server also runs on, that overhead is what would be measured.
//! This client reads whole socket buffers and hands out payload slices in
//! place: no allocation per frame, one `read` per batch of frames. It only
//! speaks what a load generator needs: `ws://` (loopback, no TLS), text
//! frames out (masked, as the RFC requires of clients), text/binary/ping/pong/
//! close in, fragmented messages reassembled.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// Read buffer per connection at start; it grows only for a frame larger than this.
const INITIAL_BUFFER: usize = 16 * 1024;
/// Largest frame or reassembled message accepted; the server's ticks are a few hundred bytes.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// Largest HTTP upgrade response accepted.
const MAX_HANDSHAKE: usize = 16 * 1024;
/// A valid `Sec-WebSocket-Key` (16 bytes, base64); the server only echoes a hash of it.
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Text or binary frame opcodes, and the control frames a client must answer.
mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// Where a `ws://` URL points, resolved once for all clients.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server's socket address.
    pub addr: SocketAddr,
    /// `Host` header value (`host:port` as written in the URL).
    pub host: String,
    /// Request path with query, e.g. `/ws` or `/socket.io/?EIO=4&transport=websocket`.
    pub path: String,
}

impl Target {
    /// Parses a `ws://host:port/path` URL and resolves the host, so thousands of clients share one lookup.
    pub async fn resolve(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| anyhow::anyhow!("only ws:// URLs are supported, got {url:?}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let with_port = if authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addr = tokio::net::lookup_host(&with_port)
            .await?
            .find(SocketAddr::is_ipv4)
            .ok_or_else(|| anyhow::anyhow!("{authority} has no IPv4 address"))?;
        Ok(Self {
            addr,
            host: authority.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// What a received frame is; text payloads are read with [`WsConn::payload`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A complete text message.
    Text(Payload),
    /// A complete binary message (not used by either protocol; counted by the caller).
    Binary,
    /// A ping; the connection has already queued the pong.
    Ping,
    /// A pong (ignored).
    Pong,
    /// The server closed; the connection has queued the close reply.
    Close,
}

/// Where a message's bytes are: in the read buffer, or in the reassembly buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// `buf[start..end]`.
    Buf(usize, usize),
    /// The reassembled fragments.
    Fragments,
}

/// One client connection after the HTTP upgrade.
pub struct WsConn {
    /// The socket.
    stream: TcpStream,
    /// Bytes read and not yet consumed are `buf[start..end]`.
    buf: Vec<u8>,
    /// First unconsumed byte.
    start: usize,
    /// One past the last byte read.
    end: usize,
    /// Fragments of a message whose final frame has not arrived.
    frag: Vec<u8>,
    /// Whether `frag` holds an unfinished message.
    in_fragment: bool,
    /// Frames to write (pongs, close replies, requests), flushed by [`flush`](Self::flush).
    out: Vec<u8>,
    /// Mask key state (clients must mask; any key is valid, it need not be secret here).
    mask_seed: u32,
    /// A close frame was queued; a close from the server then needs no reply.
    close_sent: bool,
    /// Code and reason of the server's close frame, once one arrived (how a stalled client learns why it was cut).
    peer_close: Option<(u16, String)>,
}

/// Why a connection attempt failed, split so callers can try another source address.
#[derive(Debug)]
pub enum ConnectError {
    /// The local address has no free port left (or cannot be bound).
    SourceExhausted(io::Error),
    /// Anything else: refused, reset, bad upgrade response.
    Other(anyhow::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::SourceExhausted(e) => write!(f, "source address exhausted: {e}"),
            ConnectError::Other(e) => write!(f, "{e:#}"),
        }
    }
}

fn exhausted(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::AddrInUse | io::ErrorKind::AddrNotAvailable
    )
}

impl WsConn {
    /// Connects from `source` (port chosen by the kernel) and performs the HTTP upgrade.
    pub async fn connect(target: &Target, source: Ipv4Addr) -> Result<Self, ConnectError> {
        Self::connect_with(target, source, None).await
    }

    /// Like [`connect`](Self::connect), with `SO_RCVBUF` set to `recv_buffer` bytes before
    /// connecting (the kernel doubles it), so a client that stops reading pushes back on the
    /// server after a few KB instead of the several MB loopback buffers grow to.
    pub async fn connect_with(
        target: &Target,
        source: Ipv4Addr,
        recv_buffer: Option<u32>,
    ) -> Result<Self, ConnectError> {
        let socket = TcpSocket::new_v4().map_err(|e| ConnectError::Other(e.into()))?;
        if let Some(size) = recv_buffer {
            // Must precede connect(): the TCP window scale is fixed in the handshake.
            socket
                .set_recv_buffer_size(size)
                .map_err(|e| ConnectError::Other(anyhow::Error::from(e).context("SO_RCVBUF")))?;
        }
        // Lets bind() pick ports still in TIME_WAIT from an earlier run (the
        // load generator closes first, so its ports linger there for 60 s).
        let _ = socket.set_reuseaddr(true);
        socket
            .bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))
            .map_err(|e| {
                if exhausted(&e) {
                    ConnectError::SourceExhausted(e)
                } else {
                    ConnectError::Other(e.into())
                }
            })?;
        let stream = socket.connect(target.addr).await.map_err(|e| {
            if exhausted(&e) {
                ConnectError::SourceExhausted(e)
            } else {
                ConnectError::Other(anyhow::Error::from(e).context("TCP connect"))
            }
        })?;
        let _ = stream.set_nodelay(true);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1);
        let mut conn = Self {
            stream,
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            frag: Vec::new(),
            in_fragment: false,
            out: Vec::new(),
            mask_seed: nanos | 1,
            close_sent: false,
            peer_close: None,
        };
        conn.handshake(target).await.map_err(ConnectError::Other)?;
        Ok(conn)
    }

    async fn handshake(&mut self, target: &Target) -> anyhow::Result<()> {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            target.path, target.host
        );
        self.stream.write_all(request.as_bytes()).await?;
        loop {
            if let Some(pos) = memchr::memmem::find(&self.buf[..self.end], b"\r\n\r\n") {
                let head = &self.buf[..pos];
                let status_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
                if !status_line.starts_with(b"HTTP/1.1 101") {
                    anyhow::bail!(
                        "upgrade refused: {}",
                        String::from_utf8_lossy(status_line).trim_end()
                    );
                }
                // Bytes after the header are already WebSocket frames.
                self.start = pos + 4;
                return Ok(());
            }
            if self.end >= MAX_HANDSHAKE.min(self.buf.len()) {
                anyhow::bail!("upgrade response larger than {MAX_HANDSHAKE} bytes");
            }
            let n = self.stream.read(&mut self.buf[self.end..]).await?;
            if n == 0 {
                anyhow::bail!("connection closed during the upgrade");
            }
            self.end += n;
        }
    }

    /// Reads whatever the socket has (at least one byte); `Ok(0)` means the server closed the TCP connection.
    pub async fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.buf.len() - self.end < self.buf.len() / 4 {
            // Little room left: move the unconsumed tail (a partial frame, usually
            // small) to the front so the next read can be large; grow if a frame
            // needs more room than the whole buffer.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() - self.end < self.buf.len() / 4 {
                if self.buf.len() >= MAX_MESSAGE {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "frame larger than the limit",
                    ));
                }
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// The next complete frame in the buffer, or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            let avail = &self.buf[self.start..self.end];
            if avail.len() < 2 {
                return Ok(None);
            }
            let (b0, b1) = (avail[0], avail[1]);
            let fin = b0 & 0x80 != 0;
            let op = b0 & 0x0F;
            let masked = b1 & 0x80 != 0;
            let (len, mut header) = match b1 & 0x7F {
                126 if avail.len() >= 4 => (u64::from(u16::from_be_bytes([avail[2], avail[3]])), 4),
                127 if avail.len() >= 10 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&avail[2..10]);
                    (u64::from_be_bytes(b), 10)
                }
                126 | 127 => return Ok(None),
                n => (u64::from(n), 2),
            };
            if len > MAX_MESSAGE as u64 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "frame larger than the limit",
                ));
            }
            let len = len as usize;
            let mask = if masked {
                if avail.len() < header + 4 {
                    return Ok(None);
                }
                let m = [
                    avail[header],
                    avail[header + 1],
                    avail[header + 2],
                    avail[header + 3],
                ];
                header += 4;
                Some(m)
            } else {
                None
            };
            if avail.len() < header + len {
                return Ok(None);
            }
            let (ps, pe) = (self.start + header, self.start + header + len);
            self.start = pe;
            if let Some(m) = mask {
                for (i, b) in self.buf[ps..pe].iter_mut().enumerate() {
                    *b ^= m[i & 3];
                }
            }
            match op {
                opcode::TEXT | opcode::BINARY if fin && !self.in_fragment => {
                    return Ok(Some(if op == opcode::TEXT {
                        Frame::Text(Payload::Buf(ps, pe))
                    } else {
                        Frame::Binary
                    }));
                }
                opcode::TEXT | opcode::BINARY => {
                    // First fragment of a longer message (or a protocol error we tolerate).
                    self.frag.clear();
                    self.frag.extend_from_slice(&self.buf[ps..pe]);
                    self.in_fragment = !fin;
                    if fin {
                        return Ok(Some(Frame::Text(Payload::Fragments)));
                    }
                }
                opcode::CONTINUATION => {
                    if self.frag.len() + len > MAX_MESSAGE {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "message larger than the limit",
                        ));
                    }
                    self.frag.extend_from_slice(&self.buf[ps..pe]);
                    if fin {
                        self.in_fragment = false;
                        return Ok(Some(Frame::Text(Payload::Fragments)));
                    }
                }
                opcode::PING => {
                    let payload = self.buf[ps..pe].to_vec();
                    self.queue_frame(opcode::PONG, &payload);
                    return Ok(Some(Frame::Ping));
                }
                opcode::PONG => return Ok(Some(Frame::Pong)),
                opcode::CLOSE => {
                    // RFC 6455 §5.5.1: an optional 2-byte code, then a UTF-8 reason.
                    let body = &self.buf[ps..pe];
                    self.peer_close = Some(match body {
                        [hi, lo, reason @ ..] => (
                            u16::from_be_bytes([*hi, *lo]),
                            String::from_utf8_lossy(reason).into_owned(),
                        ),
                        // No code given: 1005 is the RFC's "no status received".
                        _ => (1005, String::new()),
                    });
                    if !self.close_sent {
                        let code = self.buf[ps..pe.min(ps + 2)].to_vec();
                        self.queue_frame(opcode::CLOSE, &code);
                        self.close_sent = true;
                    }
                    return Ok(Some(Frame::Close));
                }
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unknown opcode {op}"),
                    ))
                }
            }
        }
    }

    /// Code and reason of the server's close frame, if one was received.
    pub fn peer_close(&self) -> Option<&(u16, String)> {
        self.peer_close.as_ref()
    }

    /// The bytes of a [`Frame::Text`] payload.
    pub fn payload(&self, p: Payload) -> &[u8] {
        match p {
            Payload::Buf(s, e) => &self.buf[s..e],
            Payload::Fragments => &self.frag,
        }
    }

    /// Queues a text frame; it is written by the next [`flush`](Self::flush).
    pub fn queue_text(&mut self, text: &str) {
        self.queue_frame(opcode::TEXT, text.as_bytes());
    }

    /// Queues a normal-closure close frame (code 1000).
    pub fn queue_close(&mut self) {
        if self.close_sent {
            return;
        }
        self.close_sent = true;
        self.queue_frame(opcode::CLOSE, &1000u16.to_be_bytes());
    }

    fn queue_frame(&mut self, op: u8, payload: &[u8]) {
        // xorshift32: cheap, varies per frame; the RFC's masking defends
        // proxies, not secrecy, so predictability does not matter here.
        let mut x = self.mask_seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask_seed = x;
        let mask = x.to_be_bytes();
        self.out.push(0x80 | op);
        match payload.len() {
            n if n < 126 => self.out.push(0x80 | n as u8),
            n if n <= usize::from(u16::MAX) => {
                self.out.push(0x80 | 126);
                self.out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                self.out.push(0x80 | 127);
                self.out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        self.out.extend_from_slice(&mask);
        self.out
            .extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    }

    /// Writes queued frames, if any.
    pub async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.stream.write_all(&self.out).await?;
        self.out.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// Unmasks a client frame the way a server would, returning (opcode, payload).
    fn unmask(frame: &[u8]) -> (u8, Vec<u8>) {
        let op = frame[0] & 0x0F;
        assert_eq!(frame[0] & 0x80, 0x80, "FIN set");
        assert_eq!(frame[1] & 0x80, 0x80, "client frames are masked");
        let (len, mut at) = match frame[1] & 0x7F {
            126 => (u16::from_be_bytes([frame[2], frame[3]]) as usize, 4),
            n => (n as usize, 2),
        };
        let mask = [frame[at], frame[at + 1], frame[at + 2], frame[at + 3]];
        at += 4;
        let payload = frame[at..at + len]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i & 3])
            .collect();
        (op, payload)
    }

    #[tokio::test]
    async fn upgrade_frames_fragments_and_control() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = vec![0u8; 4096];
            let mut n = 0;
            while memchr::memmem::find(&req[..n], b"\r\n\r\n").is_none() {
                n += s.read(&mut req[n..]).await.unwrap();
            }
            let mut out =
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
            // A text frame in the same packet as the headers.
            out.extend_from_slice(&[0x81, 5]);
            out.extend_from_slice(b"hello");
            // A fragmented text message: "ab" + "cd".
            out.extend_from_slice(&[0x01, 2, b'a', b'b', 0x80, 2, b'c', b'd']);
            // A 300-byte text frame (16-bit length).
            out.extend_from_slice(&[0x81, 126, 1, 44]);
            out.extend(std::iter::repeat_n(b'x', 300));
            // A 70,000-byte text frame (64-bit length; larger than the initial buffer).
            out.extend_from_slice(&[0x81, 127]);
            out.extend_from_slice(&70_000u64.to_be_bytes());
            out.extend(std::iter::repeat_n(b'y', 70_000));
            // A ping, then a close.
            out.extend_from_slice(&[0x89, 1, b'p', 0x88, 15, 0x03, 0xF0]);
            out.extend_from_slice(b"slow consumer");
            s.write_all(&out).await.unwrap();
            let mut back = vec![0u8; 4096];
            let mut got = 0;
            // pong(2+4+1) + text(2+4+2) + close(2+4+2) bytes.
            while got < 7 + 8 + 8 {
                let n = s.read(&mut back[got..]).await.unwrap();
                assert_ne!(n, 0);
                got += n;
            }
            back.truncate(got);
            back
        });
        let target = Target::resolve(&format!("ws://{addr}/ws")).await.unwrap();
        assert_eq!(target.path, "/ws");
        let mut conn = WsConn::connect(&target, Ipv4Addr::LOCALHOST).await.unwrap();
        let mut frames = Vec::new();
        while frames.len() < 6 {
            while let Some(f) = conn.next_frame().unwrap() {
                let text = match f {
                    Frame::Text(p) => Some(conn.payload(p).to_vec()),
                    _ => None,
                };
                frames.push((f, text));
            }
            if frames.len() < 6 {
                assert_ne!(conn.fill().await.unwrap(), 0);
            }
        }
        assert_eq!(frames[0].1.as_deref(), Some(&b"hello"[..]));
        assert_eq!(frames[1].1.as_deref(), Some(&b"abcd"[..]));
        assert_eq!(frames[2].1.as_ref().map(Vec::len), Some(300));
        assert_eq!(frames[3].1.as_ref().map(Vec::len), Some(70_000));
        assert!(frames[3].1.as_ref().unwrap().iter().all(|&b| b == b'y'));
        assert_eq!(frames[4].0, Frame::Ping);
        assert_eq!(frames[5].0, Frame::Close);
        assert_eq!(conn.peer_close(), Some(&(1008, "slow consumer".to_owned())));
        conn.queue_text("hi");
        conn.flush().await.unwrap();
        let back = server.await.unwrap();
        assert_eq!(unmask(&back[..7]), (opcode::PONG, b"p".to_vec()));
        assert_eq!(unmask(&back[7..15]), (opcode::CLOSE, vec![0x03, 0xF0]));
        assert_eq!(unmask(&back[15..]), (opcode::TEXT, b"hi".to_vec()));
    }

    #[tokio::test]
    async fn refused_upgrade_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = vec![0u8; 4096];
            let _ = s.read(&mut req).await.unwrap();
            s.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
        });
        let target = Target::resolve(&format!("ws://{addr}/nope")).await.unwrap();
        let err = WsConn::connect(&target, Ipv4Addr::LOCALHOST)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("404"), "{err}");
    }

    #[tokio::test]
    async fn only_ws_urls() {
        assert!(Target::resolve("http://127.0.0.1:1/").await.is_err());
    }
}
