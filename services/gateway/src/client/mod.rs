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

/// Sleeps until `at`, or forever when it is `None`, for an optional `select!` timer branch.
///
/// `select!` evaluates every branch's expression on each pass, even a
/// disabled one; a `sleep_until` there builds a timer (and clones the
/// runtime handle) every time a connection task wakes for a tick. This async
/// fn builds the timer only when its branch is actually polled.
pub(crate) async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
