//! Engine.IO v4 and Socket.IO v5 packets: parsing (total, never panics) and encoding.
//!
//! Engine.IO packet: one type digit then the data, e.g. `4hello`; over HTTP
//! long-polling several are joined by `\x1e`, and a binary one is `b` +
//! base64. Socket.IO packet (inside an Engine.IO `4` message): type digit,
//! `N-` attachments for binary types, `/nsp,` unless the default namespace,
//! an ack id, then a JSON payload, e.g. `2/admin,12["event",{"a":1}]`.
//! References: the `engine.io-protocol` and `socket.io-protocol` READMEs.

use base64::Engine as _;
use serde_json::Value;

/// Separator of packets in one long-polling body (the record separator).
pub const SEPARATOR: char = '\x1e';

/// Why a packet was refused; the session closes on any of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Empty packet, unknown type, or bad base64.
    #[error("invalid Engine.IO packet")]
    Engine,
    /// Bad Socket.IO framing or a payload of the wrong shape.
    #[error("invalid Socket.IO packet")]
    SocketIo,
}

/// One decoded Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EioPacket<'a> {
    /// `0`: only the server sends it.
    Open,
    /// `1`: the peer closes the session.
    Close,
    /// `2` (+ `probe` during an upgrade).
    Ping(&'a str),
    /// `3`: answer to our ping (or `3probe`).
    Pong(&'a str),
    /// `4`: a Socket.IO packet as text.
    Message(&'a str),
    /// `b<base64>` over polling, or a binary WebSocket frame.
    Binary(Vec<u8>),
    /// `5`: switch to the probed WebSocket.
    Upgrade,
    /// `6`: nothing.
    Noop,
}

/// Parses one text Engine.IO packet; `polling` allows the `b` base64 form.
pub fn parse_eio(text: &str, polling: bool) -> Result<EioPacket<'_>, PacketError> {
    let mut chars = text.chars();
    let kind = chars.next().ok_or(PacketError::Engine)?;
    let rest = chars.as_str();
    Ok(match kind {
        '0' => EioPacket::Open,
        '1' => EioPacket::Close,
        '2' => EioPacket::Ping(rest),
        '3' => EioPacket::Pong(rest),
        '4' => EioPacket::Message(rest),
        '5' => EioPacket::Upgrade,
        '6' => EioPacket::Noop,
        'b' if polling => EioPacket::Binary(
            base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| PacketError::Engine)?,
        ),
        _ => return Err(PacketError::Engine),
    })
}

/// Splits a long-polling body into its packets.
pub fn parse_payload(body: &str) -> Result<Vec<EioPacket<'_>>, PacketError> {
    body.split(SEPARATOR).map(|p| parse_eio(p, true)).collect()
}

/// The Engine.IO open packet `0{...}` sent first on every session.
pub fn open(
    sid: &str,
    upgrades: &[&str],
    ping_interval_ms: u64,
    ping_timeout_ms: u64,
    max_payload: usize,
) -> String {
    let body = serde_json::json!({
        "sid": sid,
        "upgrades": upgrades,
        "pingInterval": ping_interval_ms,
        "pingTimeout": ping_timeout_ms,
        "maxPayload": max_payload,
    });
    format!("0{body}")
}

/// Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SioKind {
    /// `0` CONNECT, optional auth object.
    Connect,
    /// `1` DISCONNECT.
    Disconnect,
    /// `2` EVENT `["name", ...args]`.
    Event,
    /// `3` ACK `[...args]`.
    Ack,
    /// `4` CONNECT_ERROR: only the server sends it.
    ConnectError,
    /// `5` BINARY_EVENT with attachments (not supported: we answer `bad_json`).
    BinaryEvent,
    /// `6` BINARY_ACK with attachments (ignored).
    BinaryAck,
}

/// One decoded Socket.IO packet.
#[derive(Debug, Clone, PartialEq)]
pub struct SioPacket {
    /// Its type.
    pub kind: SioKind,
    /// Namespace, `/` by default.
    pub nsp: String,
    /// Ack id when the sender wants an acknowledgement.
    pub id: Option<u64>,
    /// The JSON payload, if any.
    pub data: Option<Value>,
}

/// Most digits an ack id may have (socket.io-parser accepts any; u64 holds 19).
const MAX_ID_DIGITS: usize = 18;

/// Parses a Socket.IO packet with the payload checks socket.io-parser applies.
pub fn parse_sio(text: &str) -> Result<SioPacket, PacketError> {
    let bytes = text.as_bytes();
    let kind = match bytes.first() {
        Some(b'0') => SioKind::Connect,
        Some(b'1') => SioKind::Disconnect,
        Some(b'2') => SioKind::Event,
        Some(b'3') => SioKind::Ack,
        Some(b'4') => SioKind::ConnectError,
        Some(b'5') => SioKind::BinaryEvent,
        Some(b'6') => SioKind::BinaryAck,
        _ => return Err(PacketError::SocketIo),
    };
    let mut rest = &text[1..];
    if matches!(kind, SioKind::BinaryEvent | SioKind::BinaryAck) {
        let dash = rest.find('-').ok_or(PacketError::SocketIo)?;
        let count = &rest[..dash];
        if count.is_empty() || count.len() > 6 || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PacketError::SocketIo);
        }
        rest = &rest[dash + 1..];
    }
    let mut nsp = "/".to_owned();
    if rest.starts_with('/') {
        match rest.find(',') {
            Some(comma) => {
                nsp = rest[..comma].to_owned();
                rest = &rest[comma + 1..];
            }
            None => {
                nsp = rest.to_owned();
                rest = "";
            }
        }
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = if digits > 0 {
        if digits > MAX_ID_DIGITS {
            return Err(PacketError::SocketIo);
        }
        let id = rest[..digits]
            .parse::<u64>()
            .map_err(|_| PacketError::SocketIo)?;
        rest = &rest[digits..];
        Some(id)
    } else {
        None
    };
    let data = if rest.is_empty() {
        None
    } else {
        Some(serde_json::from_str::<Value>(rest).map_err(|_| PacketError::SocketIo)?)
    };
    let valid = match (kind, &data) {
        (SioKind::Connect, None | Some(Value::Object(_))) => true,
        (SioKind::Disconnect, None) => true,
        (SioKind::ConnectError, Some(Value::Object(_) | Value::String(_))) => true,
        (SioKind::Event | SioKind::BinaryEvent, Some(Value::Array(items))) => {
            matches!(items.first(), Some(Value::String(_)))
        }
        (SioKind::Ack | SioKind::BinaryAck, Some(Value::Array(_))) => id.is_some(),
        _ => false,
    };
    if !valid {
        return Err(PacketError::SocketIo);
    }
    Ok(SioPacket {
        kind,
        nsp,
        id,
        data,
    })
}

/// `42["event",data]`: an Engine.IO message carrying a Socket.IO EVENT on `/`.
pub fn event(name: &str, data: &Value) -> String {
    let name = Value::String(name.to_owned());
    format!("42[{name},{data}]")
}

/// `43<id>[data]`: the acknowledgement of event `id`, with the reply data as its argument.
pub fn ack(id: u64, data: &Value) -> String {
    format!("43{id}[{data}]")
}

/// `40{"sid":...}`: CONNECT accepted on `/`.
pub fn connect_ok(sid: &str) -> String {
    format!("40{}", serde_json::json!({ "sid": sid }))
}

/// `44[/nsp,]{"message":...}`: CONNECT refused.
pub fn connect_error(nsp: &str, message: &str) -> String {
    let body = serde_json::json!({ "message": message });
    if nsp == "/" {
        format!("44{body}")
    } else {
        format!("44{nsp},{body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn engine_packets() {
        assert_eq!(parse_eio("2probe", false), Ok(EioPacket::Ping("probe")));
        assert_eq!(parse_eio("3", false), Ok(EioPacket::Pong("")));
        assert_eq!(parse_eio("40", false), Ok(EioPacket::Message("0")));
        assert_eq!(parse_eio("5", false), Ok(EioPacket::Upgrade));
        assert_eq!(
            parse_eio("bAQID", true),
            Ok(EioPacket::Binary(vec![1, 2, 3]))
        );
        for bad in ["", "7", "x", "bAQID", "é"] {
            assert_eq!(parse_eio(bad, false), Err(PacketError::Engine), "{bad:?}");
        }
        assert_eq!(parse_eio("b!!", true), Err(PacketError::Engine));
        let body = "40\x1e42[\"ping\"]\x1e3";
        assert_eq!(
            parse_payload(body).unwrap(),
            vec![
                EioPacket::Message("0"),
                EioPacket::Message("2[\"ping\"]"),
                EioPacket::Pong("")
            ]
        );
        assert!(parse_payload("40\x1e").is_err(), "empty trailing packet");
    }

    #[test]
    fn socketio_packets() {
        let p = parse_sio("0").unwrap();
        assert_eq!(
            (p.kind, p.nsp.as_str(), p.id, p.data),
            (SioKind::Connect, "/", None, None)
        );
        let p = parse_sio(r#"0{"token":"abc"}"#).unwrap();
        assert_eq!(p.data, Some(json!({"token":"abc"})));
        let p = parse_sio("0/admin,").unwrap();
        assert_eq!(p.nsp, "/admin");
        let p = parse_sio(r#"2/admin,12["subscribe",{"symbols":["A"]}]"#).unwrap();
        assert_eq!(
            (p.kind, p.nsp.as_str(), p.id),
            (SioKind::Event, "/admin", Some(12))
        );
        let p = parse_sio(r#"27["ping"]"#).unwrap();
        assert_eq!(p.id, Some(7));
        assert_eq!(p.data, Some(json!(["ping"])));
        let p = parse_sio(r#"51-["subscribe",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!(p.kind, SioKind::BinaryEvent);
        assert_eq!(parse_sio("1").unwrap().kind, SioKind::Disconnect);
        for bad in [
            "",
            "9",
            "2",
            "2{}",
            "2[]",
            "2[1]",
            "2[\"a\"",
            "0[1]",
            "0\"x\"",
            "1{}",
            "3[]",
            "5[\"a\"]",
            "5x-[\"a\"]",
            "21234567890123456789[\"a\"]",
        ] {
            assert_eq!(parse_sio(bad), Err(PacketError::SocketIo), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Parsing is total: any input is a packet or an error, never a panic.
        #[test]
        fn parsers_never_panic(text in "\\PC{0,64}", tail in "[0-9/,\\[\\]{}\"a-z-]{0,40}") {
            let _ = parse_payload(&text);
            let _ = parse_sio(&text);
            for kind in ["0", "2", "3", "5", "51-", "2/", "4"] {
                let _ = parse_sio(&format!("{kind}{tail}"));
            }
            let _ = parse_eio(&format!("b{tail}"), true);
        }
    }

    #[test]
    fn encodings() {
        assert_eq!(
            event("subscribed", &json!({"a":1})),
            r#"42["subscribed",{"a":1}]"#
        );
        assert_eq!(ack(5, &json!({"a":1})), r#"435[{"a":1}]"#);
        assert_eq!(connect_ok("x"), r#"40{"sid":"x"}"#);
        assert_eq!(connect_error("/", "no"), r#"44{"message":"no"}"#);
        assert_eq!(connect_error("/a", "no"), r#"44/a,{"message":"no"}"#);
        let open = open("s", &["websocket"], 25000, 20000, 1_000_000);
        assert_eq!(
            serde_json::from_str::<Value>(&open[1..]).unwrap(),
            json!({"sid":"s","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000})
        );
        assert!(open.starts_with('0'));
    }
}
