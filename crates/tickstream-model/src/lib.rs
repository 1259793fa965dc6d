//! The normalized market tick shared by every tickstream service.
//!
//! Ingestors turn upstream payloads into a [`Tick`]; the bus carries it as JSON;
//! the gateway forwards those bytes to clients. Keeping the schema in one crate
//! means there is exactly one definition of what a valid tick is.
//!
//! # Layout
//! - [`channel`]: [`Channel`], what clients subscribe to, and the table of stream kinds.
//! - [`symbol`]: [`Symbol`], the validated, uppercase instrument name.
//! - [`tick`]: [`Tick`], its JSON form and validation.
//! - [`time`]: RFC 3339 timestamps with at least millisecond precision.
//! - [`trade`]: [`Trade`], one execution on a venue, and its JSON.

#![forbid(unsafe_code)]

pub mod channel;
pub mod symbol;
pub mod tick;
pub mod time;
pub mod trade;

pub use channel::{Channel, ChannelError, KindSpec, KINDS};
pub use symbol::{Symbol, SymbolError};
pub use tick::{Tick, TickError};
pub use trade::{Side, Trade};
