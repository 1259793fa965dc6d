//! One long-lived pub/sub connection carrying every channel a gateway's clients want.
//!
//! Channel names are the Redis pub/sub channels themselves (`ticks:BTCUSDT`,
//! `candles:1m:BTCUSDT`, `sentiment`, ...), so the reader handles any kind the
//! same way: it subscribes to what the handler wants and hands each message on.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};

use crate::backoff::Backoff;
use crate::health::RedisHealth;

/// First retry delay after losing the pub/sub connection.
pub const RECONNECT_INITIAL: Duration = Duration::from_millis(100);
/// Retry delays never exceed this, so ticks resume within ~1 s of Redis coming back.
pub const RECONNECT_MAX: Duration = Duration::from_secs(1);
/// How often an idle connection is probed; a half-open socket is found within this plus the timeout.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);
/// How long a probe or (un)subscribe may take before the connection is declared dead.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// Pending interest changes; senders wait when it is full (changes are cheap to apply).
const COMMAND_QUEUE: usize = 1024;

/// The gateway side of the subscriber: where messages go and which channels are wanted.
///
/// The subscriber asks the handler for the truth instead of keeping its own
/// refcounts, so concurrent subscribe/unsubscribe races always settle on what
/// clients actually want.
pub trait ChannelHandler: Send + Sync + 'static {
    /// Takes one message published on `channel`; runs on the reader task, so it must not block.
    fn on_message(&self, channel: &str, payload: &[u8]);
    /// Whether any local client currently wants `channel`.
    fn wants(&self, channel: &str) -> bool;
    /// Every wanted channel; subscribed again after each reconnect.
    fn wanted(&self) -> Vec<String>;
    /// The newest seq delivered on `channel`, so a reconnect can backfill what
    /// was published while the connection was down (`None`: nothing to backfill).
    fn last_seq(&self, _channel: &str) -> Option<u64> {
        None
    }
}

/// Most items backfilled per channel after a reconnect; older gaps are left to clients' own recovery.
pub const BACKFILL_MAX: usize = 10_000;

/// One interest change, with an optional acknowledgement once Redis has confirmed it.
pub(crate) type Change = (String, Option<oneshot::Sender<()>>);

/// Handle to the reader task; cheap to clone.
#[derive(Clone, Debug)]
pub struct Subscriber {
    /// Channels whose wanted-ness may have changed.
    changes: mpsc::Sender<Change>,
}

impl Subscriber {
    /// Starts the reader task on the current Tokio runtime.
    pub fn spawn<H: ChannelHandler>(
        client: redis::Client,
        handler: Arc<H>,
        health: Arc<RedisHealth>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        tokio::spawn(run(client, handler, health, rx));
        Self { changes: tx }
    }

    /// Starts the reader for `redis`'s deployment: [`Subscriber::spawn`] on one
    /// Redis; on Redis Cluster the sharded reader ([`crate::sharded`]), which
    /// `SSUBSCRIBE`s each channel on the master owning its slot.
    pub fn spawn_for<H: ChannelHandler>(redis: &crate::Redis, handler: Arc<H>) -> Self {
        if !redis.is_cluster() {
            return Self::spawn(redis.client().clone(), handler, redis.health().clone());
        }
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        tokio::spawn(crate::sharded::run(redis.clone(), handler, rx));
        Self { changes: tx }
    }

    /// Tells the reader that clients' interest in `channel` changed; it reconciles with [`ChannelHandler::wants`].
    pub async fn sync(&self, channel: &str) {
        // Only fails when the reader task is gone, i.e. at shutdown.
        let _ = self.changes.send((channel.to_owned(), None)).await;
    }

    /// Like [`Subscriber::sync`], then waits (at most `timeout`) until the
    /// connection has applied it: once this returns `true`, every message
    /// published on `channel` from now on reaches the handler. Recovery needs
    /// that before it reads history, or an item published in between would
    /// be in neither the history read nor the live stream.
    pub async fn sync_confirmed(&self, channel: &str, timeout: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        if self
            .changes
            .send((channel.to_owned(), Some(tx)))
            .await
            .is_err()
        {
            return false;
        }
        matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(())))
    }
}

/// Why one connection's session ended.
enum End {
    /// The command channel closed: the service is shutting down.
    Shutdown,
    /// The connection failed; reconnect.
    Lost(String),
}

async fn run<H: ChannelHandler>(
    client: redis::Client,
    handler: Arc<H>,
    health: Arc<RedisHealth>,
    mut changes: mpsc::Receiver<Change>,
) {
    let mut backoff = Backoff::new(RECONNECT_INITIAL, RECONNECT_MAX);
    let mut ever_connected = false;
    loop {
        match session(
            &client,
            &*handler,
            &health,
            &mut changes,
            &mut backoff,
            &mut ever_connected,
        )
        .await
        {
            End::Shutdown => return,
            End::Lost(reason) => {
                health.mark_down(&reason);
                let delay = backoff.next_delay();
                tracing::warn!(error = %reason, retry_in_ms = delay.as_millis() as u64, "Redis pub/sub connection lost.");
                if !wait_draining(delay, &mut changes).await {
                    return;
                }
            }
        }
    }
}

/// Waits out a reconnect delay while draining interest changes; false once the subscriber is dropped.
///
/// The changes are re-read on reconnect anyway. Their acknowledgements are
/// dropped: nothing is confirmed while the connection is down.
pub(crate) async fn wait_draining(
    delay: std::time::Duration,
    changes: &mut mpsc::Receiver<Change>,
) -> bool {
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return true,
            change = changes.recv() => if change.is_none() { return false },
        }
    }
}

async fn session<H: ChannelHandler>(
    client: &redis::Client,
    handler: &H,
    health: &RedisHealth,
    changes: &mut mpsc::Receiver<Change>,
    backoff: &mut Backoff,
    ever_connected: &mut bool,
) -> End {
    let pubsub = match tokio::time::timeout(COMMAND_TIMEOUT, client.get_async_pubsub()).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return End::Lost(e.to_string()),
        Err(_) => return End::Lost("connect timed out".to_owned()),
    };
    let (mut sink, mut stream) = pubsub.split();
    let mut subscribed: HashSet<String> = HashSet::new();

    let wanted = handler.wanted();
    if !wanted.is_empty() {
        match tokio::time::timeout(COMMAND_TIMEOUT, sink.subscribe(&wanted)).await {
            Ok(Ok(())) => subscribed.extend(wanted),
            Ok(Err(e)) => return End::Lost(e.to_string()),
            Err(_) => return End::Lost("subscribe timed out".to_owned()),
        }
    }
    health.mark_up();
    backoff.reset();
    if *ever_connected {
        health.note_reconnect();
        // Subscribed again: whatever is published from here on arrives live.
        // What was published while we were away is in the history streams.
        let backfilled = backfill(client, handler, &subscribed).await;
        tracing::info!(
            channels = subscribed.len(),
            backfilled,
            "Redis pub/sub reconnected; subscriptions restored."
        );
    }
    *ever_connected = true;

    let mut probe = tokio::time::interval(PING_INTERVAL);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    probe.reset();
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else { return End::Lost("connection closed".to_owned()) };
                handler.on_message(msg.get_channel_name(), msg.get_payload_bytes());
            }
            change = changes.recv() => {
                let Some((channel, ack)) = change else { return End::Shutdown };
                let want = handler.wants(&channel);
                let have = subscribed.contains(&channel);
                let result = if want && !have {
                    tokio::time::timeout(COMMAND_TIMEOUT, sink.subscribe(&channel)).await
                } else if !want && have {
                    tokio::time::timeout(COMMAND_TIMEOUT, sink.unsubscribe(&channel)).await
                } else {
                    if let Some(ack) = ack { let _ = ack.send(()); }
                    continue;
                };
                match result {
                    Ok(Ok(())) => {
                        if want { subscribed.insert(channel); } else { subscribed.remove(&channel); }
                        if let Some(ack) = ack { let _ = ack.send(()); }
                    }
                    Ok(Err(e)) => return End::Lost(e.to_string()),
                    Err(_) => return End::Lost("(un)subscribe timed out".to_owned()),
                }
            }
            _ = probe.tick() => {
                // In subscribed mode (RESP2) Redis answers ["pong", ""], not "PONG":
                // any reply proves the connection alive.
                match tokio::time::timeout(COMMAND_TIMEOUT, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => health.mark_up(),
                    Ok(Err(e)) => return End::Lost(e.to_string()),
                    Err(_) => return End::Lost("ping timed out".to_owned()),
                }
            }
        }
    }
}

/// Replays, through the handler, what each subscribed channel with history
/// published after the last seq it delivered; returns how many items.
///
/// Runs on the reader task before it reads live messages again, so items come
/// in seq order per channel; the handler drops any it already has (its seq
/// guard), so the overlap with the live stream costs nothing.
async fn backfill<H: ChannelHandler>(
    client: &redis::Client,
    handler: &H,
    subscribed: &HashSet<String>,
) -> usize {
    if !subscribed.iter().any(|c| wants_backfill(handler, c)) {
        return 0;
    }
    let conn =
        tokio::time::timeout(COMMAND_TIMEOUT, client.get_multiplexed_async_connection()).await;
    let Ok(Ok(mut conn)) = conn else {
        tracing::warn!(
            "No connection for the backfill after a reconnect; clients recover by themselves."
        );
        return 0;
    };
    backfill_with(
        &mut conn,
        crate::keys::Naming::Plain,
        handler,
        subscribed.iter(),
    )
    .await
}

/// Whether `channel` keeps history and the handler has delivered some of it (so a gap can be filled).
fn wants_backfill<H: ChannelHandler>(handler: &H, channel: &str) -> bool {
    tickstream_model::Channel::parse(channel).is_ok_and(|c| c.spec().history)
        && handler.last_seq(channel).is_some()
}

/// [`backfill`] of `channels` over an open connection, reading the streams under `naming`.
pub(crate) async fn backfill_with<'a, H: ChannelHandler>(
    conn: &mut impl redis::aio::ConnectionLike,
    naming: crate::keys::Naming,
    handler: &H,
    channels: impl Iterator<Item = &'a String>,
) -> usize {
    let with_history: Vec<(String, u64)> = channels
        .filter(|c| wants_backfill(handler, c))
        .filter_map(|c| handler.last_seq(c).map(|seq| (c.clone(), seq)))
        .collect();
    let mut total = 0;
    for (channel, since) in with_history {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(naming.name(&crate::keys::history_key(&channel)))
            .arg(format!("{}-0", since.saturating_add(1)))
            .arg("+")
            .arg("COUNT")
            .arg(BACKFILL_MAX);
        let range = cmd.query_async::<redis::Value>(conn);
        match tokio::time::timeout(COMMAND_TIMEOUT, range).await {
            Ok(Ok(reply)) => match crate::history::entries(reply) {
                Ok(items) => {
                    total += items.len();
                    for (_, payload) in items {
                        handler.on_message(&channel, &payload);
                    }
                }
                Err(e) => {
                    tracing::warn!(channel = %channel, error = %e, "Undecodable history; not backfilled.")
                }
            },
            Ok(Err(e)) => tracing::warn!(channel = %channel, error = %e, "Backfill read failed."),
            Err(_) => tracing::warn!(channel = %channel, "Backfill read timed out."),
        }
    }
    total
}
