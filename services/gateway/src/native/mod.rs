//! The native protocol at `/ws`: JSON text frames `{"event","data","id"?}`.
//!
//! # Layout
//! - [`frame`]: parsing and writing native frames.
//! - [`conn`]: the route and the connection task.

pub mod conn;
pub mod frame;

pub use conn::route;
