//! What an ingestor wrote to Redis, as its tests see it: the cached tick
//! `price:{SYMBOL}` (read, or awaited until it matches) and the ticks on the
//! channel `ticks:{SYMBOL}`, as JSON values so a test compares them with the
//! tick contract's examples.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use crate::wait::wait_for;
use crate::RedisServer;

/// The cached tick `price:{symbol}`, if any.
pub async fn cached_tick(redis: &RedisServer, symbol: &str) -> Option<Value> {
    let mut c = redis.client().await.ok()?;
    let raw: Option<String> = redis::cmd("GET")
        .arg(format!("price:{symbol}"))
        .query_async(&mut c)
        .await
        .ok()?;
    raw.and_then(|r| serde_json::from_str(&r).ok())
}

/// Waits until `price:{symbol}` holds a tick for which `pred` holds, and returns it.
pub async fn wait_tick(
    redis: &RedisServer,
    symbol: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let what = format!("a matching tick under price:{symbol}");
    let pred = &pred;
    wait_for(timeout, &what, || async move {
        cached_tick(redis, symbol).await.filter(|t| pred(t))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A subscription to `ticks:{symbol}`, to assert what subscribers receive.
pub struct TickChannel {
    /// The pub/sub connection's message stream.
    stream: std::pin::Pin<Box<dyn futures_util::Stream<Item = redis::Msg> + Send>>,
}

impl TickChannel {
    /// Subscribes before the test makes the upstream send, so nothing is missed.
    pub async fn subscribe(redis: &RedisServer, symbol: &str) -> TickChannel {
        let subscribed = async {
            let client = redis::Client::open(redis.url())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(format!("ticks:{symbol}")).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = subscribed.await.unwrap_or_else(|e| {
            panic!("cannot subscribe to ticks:{symbol} on the test's Redis: {e}")
        });
        TickChannel {
            stream: Box::pin(pubsub.into_on_message()),
        }
    }

    /// The next tick published, within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Value {
        let msg = tokio::time::timeout(timeout, self.stream.next())
            .await
            .expect("no tick on the channel in time")
            .expect("pub/sub stream ended");
        let payload: String = msg
            .get_payload()
            .unwrap_or_else(|e| panic!("a non-text payload on {}: {e}", msg.get_channel_name()));
        serde_json::from_str(&payload)
            .unwrap_or_else(|e| panic!("the ingestor published a non-JSON tick {payload:?}: {e}"))
    }
}

/// A subscription to any pub/sub channel of JSON messages (`feeds`, `ticks:X`)
/// whose reads may time out without failing, so a test can observe that
/// nothing arrives during a window.
pub struct JsonChannel {
    /// The pub/sub connection's message stream.
    stream: std::pin::Pin<Box<dyn futures_util::Stream<Item = redis::Msg> + Send>>,
}

impl JsonChannel {
    /// Subscribes to `channel` on `redis` before the test acts, so nothing is missed.
    pub async fn subscribe(redis: &RedisServer, channel: &str) -> JsonChannel {
        let subscribed = async {
            let client = redis::Client::open(redis.url())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = subscribed
            .await
            .unwrap_or_else(|e| panic!("cannot subscribe to {channel} on the test's Redis: {e}"));
        JsonChannel {
            stream: Box::pin(pubsub.into_on_message()),
        }
    }

    /// The next message within `timeout`, or `None` if none came.
    pub async fn try_next(&mut self, timeout: Duration) -> Option<Value> {
        let msg = tokio::time::timeout(timeout, self.stream.next())
            .await
            .ok()?
            .expect("pub/sub stream ended");
        let payload: String = msg
            .get_payload()
            .unwrap_or_else(|e| panic!("a non-text payload on {}: {e}", msg.get_channel_name()));
        Some(
            serde_json::from_str(&payload)
                .unwrap_or_else(|e| panic!("a non-JSON message {payload:?}: {e}")),
        )
    }

    /// Reads messages until one satisfies `pred` (within `timeout` in all), and returns it.
    pub async fn wait(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.try_next(left).await {
                Some(v) if pred(&v) => return v,
                Some(_) => {}
                None => panic!("no matching message within {timeout:?}"),
            }
        }
    }

    /// Drops whatever is queued now (messages from before the test's action).
    pub async fn drain(&mut self) {
        while self.try_next(Duration::from_millis(1)).await.is_some() {}
    }
}
