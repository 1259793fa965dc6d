//! WebSocket plumbing shared by both protocols: reading frames, writing frames, and the upgraded connection.
//!
//! # Layout
//! - [`read`]: [`WsIn`](read::WsIn), client frames with continuation aggregation.
//! - [`write`]: [`WsOut`](write::WsOut), pre-encoded frames handed to the socket in batches.
//! - [`upgrade`]: upgraded connections served without actix-http's per-connection buffers.

pub mod read;
pub mod upgrade;
pub mod write;
