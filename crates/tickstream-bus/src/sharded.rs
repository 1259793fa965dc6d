//! The channel reader on Redis Cluster: sharded pub/sub, following slot moves and failovers.
//!
//! Each wanted channel is `SSUBSCRIBE`d under its hash-tagged Redis name
//! (`ticks:{BTCUSDT}`) on the master that owns its slot, so a gateway receives
//! only what its own clients want, from the shard that carries it. The `redis`
//! crate's cluster connection (RESP3, one push stream for every node) routes
//! each `SSUBSCRIBE` by slot and follows `MOVED`. On top of it:
//! - a server-sent `sunsubscribe` (the slot moved away in a reshard) for a
//!   channel still wanted is subscribed again at once, which the cluster
//!   connection routes to the slot's new owner, then backfilled from history;
//! - a lost node (a `Disconnection` push, a master failing the periodic probe,
//!   or an `SSUBSCRIBE` that fails) marks Redis degraded and rebuilds the
//!   connection from the seeds with backoff until every wanted channel is
//!   confirmed again (the promoted replica owns the dead master's slots by
//!   then); then every channel is backfilled from its history stream, as
//!   after a single-node reconnect.
//!
//! Messages go straight from the push callback to [`ChannelHandler::on_message`]
//! (which must not block), so no queue holds ticks here. Control pushes go
//! through a bounded queue; when it is full the reader rebuilds instead (the
//! result is the same).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::{mpsc, Notify};

use crate::backoff::Backoff;
use crate::keys::Naming;
use crate::subscriber::{
    backfill_with, Change, ChannelHandler, COMMAND_TIMEOUT, PING_INTERVAL, RECONNECT_INITIAL,
    RECONNECT_MAX,
};
use crate::Redis;

/// Control pushes (server-side unsubscribes, lost nodes) waiting for the reader;
/// past this the reader rebuilds instead of reading them one by one.
const CONTROL_QUEUE: usize = 4096;
/// Most `SSUBSCRIBE`s in flight during a full re-subscription, so a thousand
/// channels do not become a thousand simultaneous requests.
const RESUBSCRIBE_CONCURRENCY: usize = 64;

/// What the push callback tells the reader.
enum Control {
    /// The server dropped this client channel (its slot moved, or its node stepped down).
    Dropped(String),
    /// A node's connection closed: which channels it carried is unknown.
    NodeLost,
}

/// The push callback of one connection generation: delivers messages to the
/// handler and control pushes to the reader, and goes quiet once a newer
/// generation replaced it (so a dropped connection's late pushes are ignored).
struct Pushes<H> {
    /// Where messages go, synchronously.
    handler: Arc<H>,
    /// Bounded control queue to the reader, tagged with the generation.
    control: mpsc::Sender<(u64, Control)>,
    /// Set when `control` was full: the reader then rebuilds (which covers whatever was lost).
    overflow: Arc<AtomicBool>,
    /// Wakes the reader after an overflow.
    wake: Arc<Notify>,
    /// This callback's connection generation.
    generation: u64,
    /// The reader's current generation.
    current: Arc<AtomicU64>,
}

impl<H> Pushes<H> {
    /// Whether this callback's connection is the reader's current one.
    fn is_current(&self) -> bool {
        self.current.load(Ordering::Acquire) == self.generation
    }

    /// Queues `c`, or records an overflow.
    fn control(&self, c: Control) {
        if self.control.try_send((self.generation, c)).is_err() {
            self.overflow.store(true, Ordering::Release);
            self.wake.notify_one();
        }
    }
}

/// The channel name of a push's first data item, untagged.
fn channel_of(data: &[Value]) -> Option<String> {
    match data.first() {
        Some(Value::BulkString(b)) => std::str::from_utf8(b)
            .ok()
            .map(|c| Naming::Tagged.client_channel(c)),
        Some(Value::SimpleString(s)) => Some(Naming::Tagged.client_channel(s)),
        _ => None,
    }
}

impl<H: ChannelHandler> redis::aio::AsyncPushSender for Pushes<H> {
    fn send(&self, info: PushInfo) -> Result<(), redis::aio::SendError> {
        if !self.is_current() {
            return Ok(());
        }
        match info.kind {
            PushKind::SMessage => {
                if let (Some(channel), Some(Value::BulkString(payload))) =
                    (channel_of(&info.data), info.data.get(1))
                {
                    self.handler.on_message(&channel, payload);
                }
            }
            PushKind::SUnsubscribe => {
                if let Some(channel) = channel_of(&info.data) {
                    self.control(Control::Dropped(channel));
                }
            }
            PushKind::Disconnection => self.control(Control::NodeLost),
            _ => {}
        }
        Ok(())
    }
}

/// Why a connection generation ended.
enum End {
    /// The service is shutting down (the interest channel closed).
    Shutdown,
    /// Part of the cluster is unreachable or a subscription failed: rebuild.
    Rebuild(String),
}

/// The reader task: one cluster pub/sub connection per generation, rebuilt
/// from the seeds whenever part of it fails.
///
/// Why rebuild instead of waiting for the `redis` crate to repair: its
/// cluster connection keeps retrying a dead master and only refreshes its
/// slot map on `MOVED`, so subscriptions to a failed master's slots would not
/// move to the promoted replica by themselves. A rebuild reads the current
/// slot map from a live seed and subscribes every wanted channel again; what
/// was published in between is backfilled from the history streams.
pub(crate) async fn run<H: ChannelHandler>(
    redis: Redis,
    handler: Arc<H>,
    mut changes: mpsc::Receiver<Change>,
) {
    let (control_tx, mut control) = mpsc::channel(CONTROL_QUEUE);
    let overflow = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(Notify::new());
    let current = Arc::new(AtomicU64::new(0));
    let health = redis.health().clone();
    let opts = redis.options().clone();
    let mut backoff = Backoff::new(RECONNECT_INITIAL, RECONNECT_MAX);
    let mut ever_connected = false;
    let mut generation = 0u64;
    loop {
        generation += 1;
        current.store(generation, Ordering::Release);
        let pushes = Pushes {
            handler: handler.clone(),
            control: control_tx.clone(),
            overflow: overflow.clone(),
            wake: wake.clone(),
            generation,
            current: current.clone(),
        };
        let end = match connect(&opts, pushes).await {
            Ok(conn) => {
                session(
                    &redis,
                    conn,
                    &*handler,
                    generation,
                    &mut changes,
                    &mut control,
                    &overflow,
                    &wake,
                    &mut backoff,
                    &mut ever_connected,
                )
                .await
            }
            Err(reason) => End::Rebuild(reason),
        };
        let reason = match end {
            End::Shutdown => return,
            End::Rebuild(reason) => reason,
        };
        // No generation is current while waiting: late pushes of the old one are ignored.
        current.store(0, Ordering::Release);
        health.mark_partial(&reason);
        let delay = backoff.next_delay();
        tracing::warn!(error = %reason, retry_in_ms = delay.as_millis() as u64, "Redis Cluster pub/sub impaired; rebuilding.");
        if !crate::subscriber::wait_draining(delay, &mut changes).await {
            return;
        }
    }
}

/// A RESP3 cluster connection whose pushes go to `pushes`.
async fn connect<H: ChannelHandler>(
    opts: &crate::RedisOptions,
    pushes: Pushes<H>,
) -> Result<ClusterConnection, String> {
    let client = crate::store::cluster_builder(opts)
        .and_then(|b| {
            b.use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(pushes)
                .build()
                .map_err(crate::BusError::BadUrl)
        })
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(COMMAND_TIMEOUT, client.get_async_connection()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("Redis Cluster connect timed out".to_owned()),
    }
}

/// One connection generation: subscribe everything wanted, then follow
/// interest changes, slot moves and probes until something fails.
#[allow(clippy::too_many_arguments)]
async fn session<H: ChannelHandler>(
    redis: &Redis,
    mut conn: ClusterConnection,
    handler: &H,
    generation: u64,
    changes: &mut mpsc::Receiver<Change>,
    control: &mut mpsc::Receiver<(u64, Control)>,
    overflow: &AtomicBool,
    wake: &Notify,
    backoff: &mut Backoff,
    ever_connected: &mut bool,
) -> End {
    let health = redis.health();
    let wanted = handler.wanted();
    let results = resubscribe(&conn, &wanted).await;
    let failed = results.iter().filter(|ok| !**ok).count();
    if failed > 0 {
        return End::Rebuild(format!(
            "{failed} of {} channel(s) not subscribed on Redis Cluster",
            wanted.len()
        ));
    }
    let mut subscribed: HashSet<String> = wanted.into_iter().collect();
    health.clear_partial();
    health.mark_up();
    backoff.reset();
    if *ever_connected {
        health.note_reconnect();
        let mut c = redis.conn();
        let backfilled = backfill_with(&mut c, Naming::Tagged, handler, subscribed.iter()).await;
        tracing::info!(
            channels = subscribed.len(),
            backfilled,
            "Redis Cluster pub/sub rebuilt; subscriptions restored."
        );
    }
    *ever_connected = true;

    let mut probe = tokio::time::interval(PING_INTERVAL);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    probe.reset();
    loop {
        tokio::select! {
            change = changes.recv() => {
                let Some((channel, ack)) = change else { return End::Shutdown };
                let want = handler.wants(&channel);
                let have = subscribed.contains(&channel);
                if want && !have {
                    if ssubscribe(&mut conn, &channel).await.is_err() {
                        return End::Rebuild(format!("SSUBSCRIBE {channel} failed"));
                    }
                    subscribed.insert(channel);
                } else if !want && have {
                    // If this fails the server may keep sending it; the handler drops unwanted channels.
                    let _ = tokio::time::timeout(
                        COMMAND_TIMEOUT,
                        conn.sunsubscribe(Naming::Tagged.name(&channel)),
                    ).await;
                    subscribed.remove(&channel);
                }
                if let Some(ack) = ack { let _ = ack.send(()); }
            }
            c = control.recv() => {
                // The reader holds a sender itself, so the queue never closes under it.
                let Some((g, c)) = c else { return End::Shutdown };
                if g != generation {
                    continue;
                }
                match c {
                    Control::Dropped(channel) => {
                        if !(subscribed.remove(&channel) && handler.wants(&channel)) {
                            continue;
                        }
                        // The slot moved (reshard) or its node stepped down: the cluster
                        // connection routes the new SSUBSCRIBE to the slot's owner now.
                        tracing::info!(channel = %channel, "Redis dropped a channel whose slot moved; subscribing on its new owner.");
                        if ssubscribe(&mut conn, &channel).await.is_err() {
                            return End::Rebuild(format!("SSUBSCRIBE {channel} after a slot move failed"));
                        }
                        subscribed.insert(channel.clone());
                        let mut c = redis.conn();
                        backfill_with(&mut c, Naming::Tagged, handler, std::iter::once(&channel)).await;
                    }
                    Control::NodeLost => return End::Rebuild("a Redis Cluster node connection was lost".to_owned()),
                }
            }
            _ = wake.notified() => {
                if overflow.swap(false, Ordering::AcqRel) {
                    return End::Rebuild("control queue overflowed".to_owned());
                }
            }
            _ = probe.tick() => {
                // A master that does not answer means some slots are unserved.
                if crate::store::all_masters_answer(&mut conn, COMMAND_TIMEOUT).await {
                    health.clear_partial();
                } else {
                    return End::Rebuild("a Redis Cluster master does not answer".to_owned());
                }
            }
        }
    }
}

/// `SSUBSCRIBE` of one client channel under the timeout (one channel per call: a
/// multi-channel `SSUBSCRIBE` must stay within one slot).
async fn ssubscribe(conn: &mut ClusterConnection, channel: &str) -> Result<(), ()> {
    match tokio::time::timeout(
        COMMAND_TIMEOUT,
        conn.ssubscribe(Naming::Tagged.name(channel)),
    )
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::debug!(channel, error = %e, "SSUBSCRIBE failed.");
            Err(())
        }
        Err(_) => {
            tracing::debug!(channel, "SSUBSCRIBE timed out.");
            Err(())
        }
    }
}

/// `SSUBSCRIBE`s `channels` (at most [`RESUBSCRIBE_CONCURRENCY`] at once); whether each was confirmed, in order.
async fn resubscribe(conn: &ClusterConnection, channels: &[String]) -> Vec<bool> {
    use futures_util::StreamExt;
    let calls: Vec<_> = channels
        .iter()
        .map(|channel| one(conn.clone(), channel.clone()))
        .collect();
    async fn one(mut c: ClusterConnection, channel: String) -> bool {
        ssubscribe(&mut c, &channel).await.is_ok()
    }
    futures_util::stream::iter(calls)
        .buffered(RESUBSCRIBE_CONCURRENCY)
        .collect()
        .await
}
