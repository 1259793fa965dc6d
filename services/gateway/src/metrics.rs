//! The gateway's Prometheus metrics (`tickstream_` prefix, unit suffixes; listed in `docs/metrics.md`).
//!
//! Label values come from bounded tables ([`crate::vocabulary`], the channel
//! kinds), never from client input.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use tickstream_model::{Channel, KINDS};
use tickstream_runtime::metrics::register;

use crate::vocabulary::{Disconnect, ErrorCode, Protocol};

/// Why a connection was refused before the upgrade (`connections_rejected_total{reason}`).
pub const REJECT_REASONS: &[&str] = &[
    "too_many_connections",
    "too_many_connections_per_ip",
    "origin_forbidden",
    "unauthorized",
];

/// Why a JWT check failed (`auth_failures_total{reason}`).
pub const AUTH_FAILURE_REASONS: &[&str] = &[
    "missing",
    "expired",
    "not_yet_valid",
    "bad_signature",
    "bad_algorithm",
    "malformed",
    "symbol_denied",
];

/// Outcomes of a feed control request (`feed_control_total{outcome}`).
pub const FEED_CONTROL_OUTCOMES: &[&str] = &[
    "ok",
    "timeout",
    "unauthorized",
    "forbidden",
    "unknown_feed",
    "bad_request",
    "unavailable",
];

/// Every gateway metric, registered once and shared by all workers.
#[derive(Clone)]
pub struct GatewayMetrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// Open client connections by protocol.
    pub connections: IntGaugeVec,
    /// Connections accepted since start, by protocol.
    pub connections_opened: IntCounterVec,
    /// Client-symbol subscriptions currently held.
    pub subscriptions: IntGauge,
    /// `ticks:` channels with at least one local subscriber.
    pub active_symbols: IntGauge,
    /// Channels with at least one local subscriber (= Redis channels subscribed).
    pub active_channels: IntGauge,
    /// Valid ticks received from Redis.
    pub ticks_received: IntCounter,
    /// Valid messages of every other kind received from Redis, by kind (ticks count in `ticks_received`).
    pub messages_received: IntCounterVec,
    /// Messages of every other kind that were skipped as invalid, by kind.
    pub messages_invalid: IntCounterVec,
    /// [`Self::messages_received`] per kind, resolved once (index: [`Channel::kind_index`]); ticks map to `ticks_received`.
    received_by_kind: Vec<IntCounter>,
    /// [`Self::messages_invalid`] per kind, resolved once; ticks map to `ticks_invalid`.
    invalid_by_kind: Vec<IntCounter>,
    /// Messages on `ticks:*` that were not valid ticks (skipped).
    pub ticks_invalid: IntCounter,
    /// Publications skipped because their seq was not newer than the last one dispatched on their channel.
    pub messages_stale: IntCounter,
    /// Frames of every channel queued to clients (deliveries).
    pub messages_sent: IntCounter,
    /// Frames not delivered, by reason (`conflated`: superseded by a newer pending item of its channel; `queue_full`: client being cut as a slow consumer).
    pub dropped: IntCounterVec,
    /// `dropped{reason="conflated"}`, resolved once so fan-out does not hash labels per tick.
    pub dropped_conflated: IntCounter,
    /// `dropped{reason="queue_full"}`, resolved once for fan-out.
    pub dropped_queue_full: IntCounter,
    /// Connections refused before the upgrade/handshake, by reason (limits, origin, auth).
    pub connections_rejected: IntCounterVec,
    /// Refused or failed JWT checks, by reason (bounded set, see [`AUTH_FAILURE_REASONS`]).
    pub auth_failures: IntCounterVec,
    /// Feed control requests (`POST /feeds/{name}/stop|start`), by action and outcome.
    pub feed_control: IntCounterVec,
    /// Upstream event time to gateway receive time.
    pub tick_latency: Histogram,
    /// Error frames sent to clients, by code.
    pub client_errors: IntCounterVec,
    /// Connections closed by the gateway, by reason.
    pub disconnects: IntCounterVec,
    /// 1 while Redis answers, 0 while it does not.
    pub redis_up: IntGauge,
    /// Pub/sub reconnects since start.
    pub redis_reconnects: IntCounter,
    /// Socket.IO sessions upgraded from long-polling to WebSocket, to see which transport clients end on.
    pub socketio_upgrades: IntCounter,
}

impl GatewayMetrics {
    /// Builds and registers every metric in a fresh registry.
    #[allow(clippy::expect_used)] // metric definitions are constants; a bad one is a bug caught by every test
    pub fn new() -> Self {
        let registry = tickstream_runtime::metrics::registry();
        let r = &registry;
        let counter = |name: &str, help: &str| {
            register(r, IntCounter::new(name, help).expect("valid metric"))
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            register(
                r,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let gauge =
            |name: &str, help: &str| register(r, IntGauge::new(name, help).expect("valid metric"));
        let latency_buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        let dropped = counter_vec(
            "tickstream_gateway_ticks_dropped_total",
            "Frames (of any channel) not delivered to a client.",
            &["reason"],
        );
        let messages_received = counter_vec(
            "tickstream_gateway_messages_received_total",
            "Valid messages received from Redis on channels other than ticks, by kind.",
            &["kind"],
        );
        let messages_invalid = counter_vec(
            "tickstream_gateway_messages_invalid_total",
            "Messages on channels other than ticks that were skipped as invalid, by kind.",
            &["kind"],
        );
        let ticks_received = counter(
            "tickstream_gateway_ticks_received_total",
            "Valid ticks received from Redis.",
        );
        let ticks_invalid = counter(
            "tickstream_gateway_ticks_invalid_total",
            "Messages on ticks:* channels that were not valid ticks.",
        );
        let per_kind = |vec: &IntCounterVec, ticks: &IntCounter| -> Vec<IntCounter> {
            KINDS
                .iter()
                .map(|k| match k.name {
                    "ticks" => ticks.clone(),
                    name => vec.with_label_values(&[name]),
                })
                .collect()
        };
        let m = Self {
            received_by_kind: per_kind(&messages_received, &ticks_received),
            invalid_by_kind: per_kind(&messages_invalid, &ticks_invalid),
            messages_received,
            messages_invalid,
            messages_stale: counter(
                "tickstream_gateway_messages_stale_total",
                "Publications skipped because their seq was not newer than the last one dispatched on their channel.",
            ),
            ticks_received,
            ticks_invalid,
            active_channels: gauge(
                "tickstream_gateway_active_channels",
                "Channels with at least one local subscriber (= Redis channels subscribed).",
            ),
            dropped_conflated: dropped.with_label_values(&["conflated"]),
            dropped_queue_full: dropped.with_label_values(&["queue_full"]),
            dropped,
            connections_rejected: counter_vec(
                "tickstream_gateway_connections_rejected_total",
                "Connections refused before the WebSocket upgrade or Engine.IO handshake.",
                &["reason"],
            ),
            auth_failures: counter_vec(
                "tickstream_gateway_auth_failures_total",
                "Refused JWT credentials and refused symbols.",
                &["reason"],
            ),
            feed_control: counter_vec(
                "tickstream_gateway_feed_control_total",
                "Feed stop/start requests, by action (stop, start) and outcome (ok, timeout, unauthorized, forbidden, unknown_feed, bad_request, unavailable).",
                &["action", "outcome"],
            ),
            connections: register(
                r,
                IntGaugeVec::new(
                    Opts::new("tickstream_gateway_connections", "Open client connections."),
                    &["protocol"],
                )
                .expect("valid metric"),
            ),
            connections_opened: counter_vec(
                "tickstream_gateway_connections_opened_total",
                "Client connections accepted.",
                &["protocol"],
            ),
            subscriptions: gauge(
                "tickstream_gateway_subscriptions",
                "Client-channel subscriptions currently held.",
            ),
            active_symbols: gauge(
                "tickstream_gateway_active_symbols",
                "ticks: channels with at least one local subscriber.",
            ),
            messages_sent: counter(
                "tickstream_gateway_messages_sent_total",
                "Frames (of any channel) queued to clients.",
            ),
            tick_latency: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "tickstream_gateway_tick_latency_seconds",
                        "Upstream event time to gateway receive time.",
                    )
                    .buckets(latency_buckets),
                )
                .expect("valid metric"),
            ),
            client_errors: counter_vec(
                "tickstream_gateway_client_errors_total",
                "Error frames sent to clients.",
                &["code"],
            ),
            disconnects: counter_vec(
                "tickstream_gateway_disconnects_total",
                "Connections closed by the gateway.",
                &["reason"],
            ),
            redis_up: gauge("tickstream_redis_up", "1 while Redis answers, else 0."),
            redis_reconnects: counter(
                "tickstream_redis_reconnects_total",
                "Redis pub/sub reconnects.",
            ),
            socketio_upgrades: counter(
                "tickstream_gateway_socketio_upgrades_total",
                "Socket.IO sessions upgraded from long-polling to WebSocket.",
            ),
            registry,
        };
        // Pre-create label values so dashboards and alerts see zeros, not gaps.
        for protocol in Protocol::ALL {
            m.connections.with_label_values(&[protocol.label()]);
            m.connections_opened.with_label_values(&[protocol.label()]);
        }
        for reason in REJECT_REASONS {
            m.connections_rejected.with_label_values(&[reason]);
        }
        for reason in AUTH_FAILURE_REASONS {
            m.auth_failures.with_label_values(&[reason]);
        }
        for action in ["stop", "start"] {
            for outcome in FEED_CONTROL_OUTCOMES {
                m.feed_control.with_label_values(&[action, outcome]);
            }
        }
        for code in ErrorCode::ALL {
            m.client_errors.with_label_values(&[code.as_str()]);
        }
        for reason in Disconnect::ALL {
            m.disconnects.with_label_values(&[reason.label()]);
        }
        m
    }
}

impl GatewayMetrics {
    /// The counter of valid messages received on `channel`'s kind.
    pub fn received(&self, channel: &Channel) -> &IntCounter {
        &self.received_by_kind[channel.kind_index()]
    }

    /// The counter of invalid messages skipped on `channel`'s kind.
    pub fn invalid(&self, channel: &Channel) -> &IntCounter {
        &self.invalid_by_kind[channel.kind_index()]
    }
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self::new()
    }
}
