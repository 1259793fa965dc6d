//! `loadgen`: the load generator behind tickstream's benchmarks (`scripts/bench.sh`).
//!
//! It opens many WebSocket clients against a server (the gateway's native
//! protocol, or Socket.IO v4 for the Node reference), subscribes each to a
//! few symbols, publishes ticks into Redis at a fixed rate with `timestamp` =
//! publish time, and measures what arrives: deliveries per second against
//! what the published ticks should have caused, latency (receive time −
//! tick `timestamp`) in an HDR histogram, connect failures and errors, and
//! the CPU and RSS of the server under test. It is built to cost little,
//! because it shares the machine with the server it measures: one tokio
//! runtime, a hand-rolled WebSocket reader with no allocation per frame, and
//! a literal search for `"timestamp":"` instead of a JSON parse per message.
//!
//! # Layout
//! - [`ws`]: the minimal WebSocket client (upgrade, frames, masking).
//! - [`client`]: one simulated client: connect from a 127.0.0.x source, subscribe, count.
//! - [`stats`]: sharded HDR histograms and counters; the fast timestamp parser.
//! - [`stalled`]: clients that subscribe to everything and never read (slow consumers, `--stalled`).
//! - [`publisher`]: fixed-rate pipelined `PUBLISH` of synthetic ticks (or through the ingestors' script, with history).
//! - [`recovery`]: seq-checking clients, and churners that reconnect and recover with `since` (`--churn-fraction`).
//! - [`procstat`]: CPU% and RSS of a process from `/proc`.
//! - [`transient`]: clients that connect, subscribe and leave at a fixed rate (`--transient-rate`).
//! - [`run`]: one measured run ([`RunConfig`] → [`Report`]).
//! - [`shard`]: `run --shards N`, the clients spread over N processes and their results merged.
//! - [`report`]: the JSON report, its human summary, and the Markdown comparison table.

#![forbid(unsafe_code)]

pub mod client;
pub mod procstat;
pub mod publisher;
pub mod recovery;
pub mod report;
pub mod run;
pub mod shard;
pub mod stalled;
pub mod stats;
pub mod transient;
pub mod ws;

pub use client::Protocol;
pub use report::Report;
pub use run::{run, RunConfig};
