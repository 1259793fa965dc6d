//! Start and stop by an operator: the feed's desired state (`running` or
//! `stopped`, stored in Redis by a gateway's `POST /feeds/{name}/stop|start`)
//! followed as a [`watch`] value, so every ingestor obeys it the same way.
//!
//! The state is read at start (so a stop survives a restart), again on every
//! notification on the feed's control channel (so it acts at once), and every
//! [`RECHECK`] besides (so a notification lost while the pub/sub connection was
//! down is caught up). While Redis is unreachable the last known state stays.

use std::time::Duration;

use futures_util::StreamExt;
use tickstream_bus::feeds::feed_control_channel;
use tickstream_bus::{Backoff, Desired, Redis};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the desired state is re-read besides the notifications.
pub const RECHECK: Duration = Duration::from_secs(1);
/// Bound on connecting and subscribing the control channel.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// First wait after losing the control channel.
const RETRY_INITIAL: Duration = Duration::from_millis(100);
/// Longest wait between attempts to reopen the control channel.
const RETRY_MAX: Duration = Duration::from_secs(2);

/// The desired state as the ingestor follows it; `None` until Redis has answered once.
pub type DesiredRx = watch::Receiver<Option<Desired>>;

/// The task following a feed's desired state; aborted on drop.
pub struct DesiredWatch {
    /// Every change of the desired state.
    rx: DesiredRx,
    /// The follower task.
    task: JoinHandle<()>,
}

impl DesiredWatch {
    /// Starts following `name`'s desired state in Redis.
    pub fn spawn(redis: Redis, name: &'static str) -> Self {
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(follow(redis, name, tx));
        Self { rx, task }
    }

    /// A receiver of the desired state (`None` until first read).
    pub fn subscribe(&self) -> DesiredRx {
        self.rx.clone()
    }
}

impl Drop for DesiredWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits until the desired state is known and returns it (`Running` if the watcher is gone).
pub async fn known(rx: &mut DesiredRx) -> Desired {
    match rx.wait_for(Option::is_some).await {
        Ok(v) => v.unwrap_or(Desired::Running),
        Err(_) => Desired::Running,
    }
}

/// Waits until the desired state is `want` (forever if the watcher is gone).
pub async fn until(rx: &mut DesiredRx, want: Desired) {
    if rx.wait_for(|v| *v == Some(want)).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Reads the stored state and publishes it to the receivers when it changed.
async fn refresh(redis: &Redis, name: &str, tx: &watch::Sender<Option<Desired>>) {
    match redis.desired_state(name).await {
        Ok(stored) => {
            let desired = stored.unwrap_or(Desired::Running);
            let changed = tx.send_if_modified(|v| {
                let changed = *v != Some(desired);
                *v = Some(desired);
                changed
            });
            if changed {
                tracing::info!(
                    source = name,
                    desired = desired.as_str(),
                    "Feed desired state."
                );
            }
        }
        Err(e) if e.is_retryable() => {
            tracing::debug!(source = name, error = %e, "Cannot read the feed's desired state.");
        }
        Err(e) => {
            tracing::warn!(source = name, error = %e, "Ignoring an invalid desired state; keeping the current one.");
            // Unknown before: run, as when nothing is stored.
            tx.send_if_modified(|v| {
                let was_unknown = v.is_none();
                if was_unknown {
                    *v = Some(Desired::Running);
                }
                was_unknown
            });
        }
    }
}

/// Follows the desired state until aborted: subscribe, read, then read again
/// on every notification and every [`RECHECK`]; reconnects with backoff.
async fn follow(redis: Redis, name: &'static str, tx: watch::Sender<Option<Desired>>) {
    let channel = feed_control_channel(name);
    let mut backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
    loop {
        let opened = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut pubsub = redis.client().get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, tickstream_bus::store::BusError>(pubsub)
        })
        .await;
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        match opened {
            Ok(Ok(pubsub)) => {
                backoff.reset();
                // Subscribed first, then read: a change made in between is not missed.
                let mut messages = pubsub.into_on_message();
                loop {
                    tokio::select! {
                        msg = messages.next() => {
                            if msg.is_none() {
                                tracing::debug!(source = name, "Feed control channel closed; reopening.");
                                break;
                            }
                            refresh(&redis, name, &tx).await;
                        }
                        _ = recheck.tick() => refresh(&redis, name, &tx).await,
                    }
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(source = name, error = %e, "Cannot open the feed control channel.");
                refresh(&redis, name, &tx).await;
            }
            Err(_) => {
                tracing::debug!(source = name, "Opening the feed control channel timed out.");
                refresh(&redis, name, &tx).await;
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}
