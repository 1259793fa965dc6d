//! One client, whatever protocol it speaks: admission, what it may ask, its session and the slow-consumer rule.
//!
//! # Layout
//! - [`limits`]: admission before any upgrade: origin, JWT, connection limits.
//! - [`auth`]: optional JWT verification and what a token grants.
//! - [`request`]: the request vocabulary shared by every protocol, and reply payloads.
//! - [`session`]: [`ClientSession`], one client's subscriptions, limits and throttles.
//! - [`slow`]: the slow-consumer rule and the queue drain every transport uses.

pub mod auth;
pub mod limits;
pub mod request;
pub mod session;
pub mod slow;

pub use session::{ClientSession, Response};
