//! Test support for tickstream's integration tests: real processes, real ports.
//!
//! Tests that need Redis start their own private `redis-server` on a free
//! port (never the machine's shared 6379), so tests run in parallel and a test
//! can crash and restart "its" Redis without disturbing anyone. Tests that need
//! a service run the workspace's real binary as a child process on port 0 and
//! learn its address from its `Listening.` log line. Every wait is a condition
//! that is polled under a timeout, never a bare sleep.
//!
//! Use it as a dev-dependency: `tickstream-testkit = { workspace = true }`.
//!
//! # Layout
//! - [`port`]: [`free_port`], a port nobody is listening on right now.
//! - [`wait`]: [`wait_until`] / [`wait_for`], poll a condition (or for a value) under a timeout that names it.
//! - [`redis_server`]: [`RedisServer`], a private `redis-server` process that
//!   can be killed (a crash) and restarted on the same port.
//! - [`redis_cluster`]: [`RedisCluster`], a private 3-master, 3-replica Redis
//!   Cluster whose masters can be killed (failover) and resharded live.
//! - [`service`]: [`Service`], one of the workspace's binaries run as a child
//!   process, with its logs captured and its bound address parsed from them.
//!   [`env_with`] layers one test's variables over a suite's.
//! - [`exit`]: [`run_to_exit`] and [`assert_rejected`], a binary that must stop before it starts.
//! - [`ticks`]: [`cached_tick`], [`wait_tick`] and [`TickChannel`], what an ingestor wrote to Redis.
//! - [`http`]: [`http_get_json`] and [`http_get_text`] for REST assertions.

// Test support: a panic with a message is an acceptable failure mode here,
// though the API returns `anyhow::Result` wherever a caller could use it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod exit;
pub mod http;
pub mod port;
pub mod redis_cluster;
pub mod redis_server;
pub mod service;
pub mod ticks;
pub mod wait;

pub use exit::{assert_rejected, run_to_exit};
pub use http::{http_get_json, http_get_text, http_post_json};
pub use port::free_port;
pub use redis_cluster::{symbol_slot, RedisCluster};
pub use redis_server::RedisServer;
pub use service::{bin_path, env_with, target_dir, Service};
pub use ticks::{cached_tick, wait_tick, JsonChannel, TickChannel};
pub use wait::{wait_for, wait_until};
