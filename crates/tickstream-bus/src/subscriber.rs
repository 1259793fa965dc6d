//! One long-lived pub/sub connection carrying every channel a gateway's clients want.
//!
//! Channel names are the Redis pub/sub channels themselves (`ticks:BTCUSDT`,
//! `candles:1m:BTCUSDT`, `sentiment`, ...), so the reader handles any kind the
//! same way: it subscribes to what the handler wants and hands each message on.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

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
}

/// Handle to the reader task; cheap to clone.
#[derive(Clone, Debug)]
pub struct Subscriber {
    /// Channels whose wanted-ness may have changed.
    changes: mpsc::Sender<String>,
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

    /// Tells the reader that clients' interest in `channel` changed; it reconciles with [`ChannelHandler::wants`].
    pub async fn sync(&self, channel: &str) {
        // Only fails when the reader task is gone, i.e. at shutdown.
        let _ = self.changes.send(channel.to_owned()).await;
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
    mut changes: mpsc::Receiver<String>,
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
                // Keep draining interest changes while waiting; they are re-read on reconnect anyway.
                let sleep = tokio::time::sleep(delay);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        _ = &mut sleep => break,
                        change = changes.recv() => if change.is_none() { return },
                    }
                }
            }
        }
    }
}

async fn session<H: ChannelHandler>(
    client: &redis::Client,
    handler: &H,
    health: &RedisHealth,
    changes: &mut mpsc::Receiver<String>,
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
        tracing::info!(
            channels = subscribed.len(),
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
                let Some(channel) = change else { return End::Shutdown };
                let want = handler.wants(&channel);
                let have = subscribed.contains(&channel);
                let result = if want && !have {
                    tokio::time::timeout(COMMAND_TIMEOUT, sink.subscribe(&channel)).await
                } else if !want && have {
                    tokio::time::timeout(COMMAND_TIMEOUT, sink.unsubscribe(&channel)).await
                } else {
                    continue;
                };
                match result {
                    Ok(Ok(())) => {
                        if want { subscribed.insert(channel); } else { subscribed.remove(&channel); }
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
