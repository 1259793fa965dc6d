//! Fan-out: which client wants which channel, and getting each publication to all of them.
//!
//! # Layout
//! - [`publication`]: [`Publication`], one message on one channel, encoded at most once per protocol.
//! - [`hub`]: [`Hub`], the subscription table, fan-out, and the Redis subscriber's source of truth.
//! - [`queue`]: [`Outlet`] and [`TickQueue`], a client's bounded, conflating outbound queue.
//!
//! Dependencies point one way: `hub` → `queue` → `publication`.

pub mod hub;
pub mod publication;
pub mod queue;

pub use hub::{ClientId, Hub};
pub use publication::{Outbound, Publication};
pub use queue::{Offer, Outlet, Relay, TickQueue};
