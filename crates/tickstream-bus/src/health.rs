//! Shared view of whether Redis is reachable, fed by every bus operation.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// What `/health` and the `tickstream_redis_up` gauge report about Redis.
///
/// Written by the command path and the subscriber on every success or failure;
/// read by health handlers. Cheap to update on the hot path (atomics; the
/// mutex is taken only when the state flips).
#[derive(Debug, Default)]
pub struct RedisHealth {
    /// Last observed reachability.
    up: AtomicBool,
    /// Times the pub/sub reader re-established its connection.
    reconnects: AtomicU64,
    /// The most recent failure, shown in `/health` while down.
    last_error: Mutex<Option<String>>,
    /// Set while part of a Redis Cluster is unreachable for the subscriber (a
    /// lost master, channels not yet re-subscribed), which one successful
    /// command elsewhere must not hide.
    partial: AtomicBool,
    /// Why the cluster is partly unreachable, while `partial` is set.
    partial_reason: Mutex<Option<String>>,
}

impl RedisHealth {
    /// Records a successful round trip.
    pub fn mark_up(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            if let Ok(mut e) = self.last_error.lock() {
                *e = None;
            }
        }
    }

    /// Records a failure with its reason.
    pub fn mark_down(&self, error: impl std::fmt::Display) {
        self.up.store(false, Ordering::Release);
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(error.to_string());
        }
    }

    /// Records that part of a Redis Cluster is unreachable (Redis is degraded until [`RedisHealth::clear_partial`]).
    pub fn mark_partial(&self, reason: impl std::fmt::Display) {
        if let Ok(mut r) = self.partial_reason.lock() {
            *r = Some(reason.to_string());
        }
        self.partial.store(true, Ordering::Release);
    }

    /// Records that every cluster channel is served again.
    pub fn clear_partial(&self) {
        if self.partial.swap(false, Ordering::AcqRel) {
            if let Ok(mut r) = self.partial_reason.lock() {
                *r = None;
            }
        }
    }

    /// Why part of the cluster is unreachable, if it is.
    pub fn partial(&self) -> Option<String> {
        if !self.partial.load(Ordering::Acquire) {
            return None;
        }
        self.partial_reason.lock().ok().and_then(|r| r.clone())
    }

    /// Counts a pub/sub reconnect for `/health` and metrics.
    pub fn note_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the last operation succeeded and no part of a cluster is known unreachable.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire) && !self.partial.load(Ordering::Acquire)
    }

    /// Pub/sub reconnects so far.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// The last failure message, if currently down (or why a cluster is partly unreachable).
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .or_else(|| self.partial())
    }
}
