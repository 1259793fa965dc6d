//! The tickstream gateway: WebSocket fan-out and REST snapshots on port 5021.
//!
//! Stateless by design: everything it knows comes from Redis, so any number
//! of replicas can run behind a load balancer. It subscribes in Redis only to
//! the channels its own clients want, and never exits because Redis went away.
//! The contract it serves is written out in the repository's `docs/`
//! (`native-protocol.md`, `socketio.md`, `rest.md`, `redis.md`, `metrics.md`).
//!
//! # Layout
//! - [`server`]: binds, serves, drains; the routes.
//! - [`fanout`]: channels → subscribers: the hub, publications, per-client conflating queues.
//! - [`client`]: one client in any protocol: admission (limits, JWT), requests, session, slow-consumer rule.
//! - [`native`]: the `/ws` JSON protocol.
//! - [`socketio`]: `/socket.io/`, Engine.IO v4 / Socket.IO v5.
//! - [`websocket`]: frame reading, writing and the upgraded connection, shared by both protocols.
//! - [`rest`]: REST endpoints and their error mapping.
//! - [`compat`]: profiles for existing clients (the Socket.IO trading dashboard) and the symbol alias table.
//! - [`feeds`]: `GET /feeds` and the admin's `POST /feeds/{name}/stop|start`.
//! - [`vocabulary`]: the tables of events, error codes and disconnect reasons.
//! - [`config`], [`metrics`], [`state`]: settings, instrumentation, shared handler state.
//!
//! Dependencies point one way: transports (`native`, `socketio`) → `client` →
//! `fanout` → `websocket::write`; `vocabulary` and `metrics` are leaves every
//! layer may use.

#![forbid(unsafe_code)]

pub mod client;
pub mod compat;
pub mod config;
pub mod dashboard;
pub mod fanout;
pub mod feeds;
pub mod metrics;
pub mod native;
pub mod rest;
pub mod server;
pub mod socketio;
pub mod state;
pub mod vocabulary;
pub mod websocket;

pub use server::{rest_cors, routes, run};
