//! Waiting on a condition instead of sleeping for a guessed duration.

use std::future::Future;
use std::time::Duration;

use anyhow::bail;
use tokio::time::Instant;

/// How often [`wait_until`] re-checks its condition: short enough not to slow
/// tests down, long enough not to spin a core.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Polls `f` every 20 ms until it returns `true`, so tests await a condition instead of sleeping; the timeout error names `what`.
///
/// `f` is checked once more at the deadline, so a condition that becomes true
/// just in time still passes.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut f: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(timeout, what, || {
        let check = f();
        async move { check.await.then_some(()) }
    })
    .await
}

/// Polls `f` like [`wait_until`] until it yields a value, and returns that
/// value: the one that matched, not a second read that may already differ.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = f().await {
            return Ok(value);
        }
        let now = Instant::now();
        if now >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn returns_once_condition_holds() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        wait_until(Duration::from_secs(5), "third call", move || {
            let c = c.clone();
            async move { c.fetch_add(1, Ordering::SeqCst) >= 2 }
        })
        .await
        .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn timeout_error_names_what() {
        let started = std::time::Instant::now();
        let err = wait_until(
            Duration::from_millis(100),
            "the moon to turn blue",
            || async { false },
        )
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("the moon to turn blue"), "{msg}");
        assert!(msg.contains("timed out"), "{msg}");
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn checks_at_least_once_with_zero_timeout() {
        wait_until(Duration::ZERO, "already true", || async { true })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn wait_for_returns_the_value_that_matched() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        // Each call yields a different value: the result must be the matching one, not a later read.
        let got = wait_for(Duration::from_secs(5), "a value of 2", move || {
            let c = c.clone();
            async move { Some(c.fetch_add(1, Ordering::SeqCst)).filter(|v| *v == 2) }
        })
        .await
        .unwrap();
        assert_eq!(got, 2);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
