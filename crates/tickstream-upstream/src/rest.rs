//! The REST fallback poller: engages once the stream has been down for
//! `fallback_after`, polls every `rest_interval` (longer when the venue says
//! 429/418 with `Retry-After`), marks ticks `<venue>-rest`, and stops as soon
//! as the stream is back.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;
use tokio::sync::watch;

use crate::context::Context;
use crate::metrics::rest_source;
use crate::venue::redact;
use crate::venue::{RestRequest, Venue};

/// Bound on one REST request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest `Retry-After` honoured; Binance's 418 bans can say days, which we cap.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// How one poll round ended.
#[derive(Debug, PartialEq, Eq)]
enum Round {
    /// Wait the normal interval.
    Done,
    /// The venue asked us to wait this long (429/418).
    RateLimited(Duration),
}

/// Why a REST request failed.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// Network failure or timeout.
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// A non-success status other than rate limiting.
    #[error("HTTP {0}")]
    Status(u16),
}

impl RestError {
    /// Network trouble and 5xx can succeed later; 4xx (bad key, bad symbol) will not.
    pub fn is_retryable(&self) -> bool {
        match self {
            RestError::Http(_) => true,
            RestError::Status(code) => *code >= 500,
        }
    }
}

/// The delay a 429/418 response asks for: `Retry-After` seconds, else `fallback`.
pub fn retry_after(headers: &reqwest::header::HeaderMap, fallback: Duration) -> Duration {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(fallback)
        .min(MAX_RETRY_AFTER)
}

/// Runs until shutdown; idle unless the stream is down long enough.
pub(crate) async fn run_fallback<V: Venue>(
    ctx: Arc<Context<V>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(after) = ctx.settings.fallback_after() else {
        return;
    };
    if ctx.rest_requests().is_empty() {
        tracing::info!(
            source = ctx.venue.name(),
            "No REST fallback configured for this venue."
        );
        return;
    }
    let client = match reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("tickstream/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Cannot build the REST client; no fallback.");
            return;
        }
    };
    let mut providers = crate::providers::Providers {
        coingecko: ctx.settings.coingecko(),
        coingecko_after: None,
        exchangerate: ctx.settings.exchangerate(),
        exchangerate_after: None,
        alphavantage: ctx.settings.alphavantage(),
        alphavantage_after: None,
    };
    let mut up = ctx.status.watch_stream();
    loop {
        tokio::select! {
            _ = crate::context::wait_flag(&mut shutdown, true) => return,
            _ = crate::context::wait_flag(&mut up, false) => {}
        }
        tokio::select! {
            _ = crate::context::wait_flag(&mut shutdown, true) => return,
            _ = crate::context::wait_flag(&mut up, true) => continue,
            _ = tokio::time::sleep(after) => {}
        }
        ctx.status.set_fallback(true);
        ctx.metrics.fallback_active.set(1);
        tracing::warn!(
            source = ctx.venue.name(),
            after_ms = after.as_millis() as u64,
            "Stream down; polling the REST fallback."
        );
        loop {
            let (round, got) = poll_round(&ctx, &client).await;
            if !got {
                poll_providers(&ctx, &client, &mut providers).await;
            }
            let delay = match round {
                Round::Done => ctx.settings.rest_interval(),
                Round::RateLimited(d) => d.max(ctx.settings.rest_interval()),
            };
            let back = tokio::select! {
                _ = crate::context::wait_flag(&mut shutdown, true) => {
                    ctx.metrics.fallback_active.set(0);
                    return;
                }
                _ = crate::context::wait_flag(&mut up, true) => true,
                _ = tokio::time::sleep(delay) => false,
            };
            if back {
                break;
            }
        }
        ctx.status.set_fallback(false);
        ctx.metrics.fallback_active.set(0);
        tracing::info!(
            source = ctx.venue.name(),
            "Stream is back; REST fallback stopped."
        );
    }
}

/// Asks a secondary provider once: the body, `Err(Some(wait))` when it rate
/// limits, `Err(None)` on any other failure (logged by name, never by URL,
/// which may carry a key).
async fn ask<V: Venue>(
    ctx: &Context<V>,
    client: &reqwest::Client,
    provider: &'static str,
    url: String,
) -> Result<String, Option<Duration>> {
    let request = RestRequest {
        url,
        symbols: Vec::new(),
    };
    match fetch(client, &request, ctx.settings.rest_interval()).await {
        Ok(Ok(body)) => {
            ctx.metrics.rest_request("ok");
            Ok(body)
        }
        Ok(Err(wait)) => {
            ctx.metrics.rest_request("rate_limited");
            tracing::warn!(
                source = ctx.venue.name(),
                provider,
                retry_after_ms = wait.as_millis() as u64,
                "REST provider rate limited; waiting as asked."
            );
            Err(Some(wait))
        }
        Err(e) => {
            ctx.metrics.rest_request("error");
            // reqwest's error text names the URL; only the status is logged.
            let why = match &e {
                RestError::Status(code) => format!("HTTP {code}"),
                RestError::Http(e) if e.is_timeout() => "timed out".to_owned(),
                RestError::Http(_) => "request failed".to_owned(),
            };
            tracing::warn!(source = ctx.venue.name(), provider, error = %why, "REST provider request failed.");
            Err(None)
        }
    }
}

/// Publishes a provider's quotes, or counts and logs why its answer was unusable.
async fn publish_provider<V: Venue>(
    ctx: &Context<V>,
    provider: &'static str,
    source: &str,
    parsed: Result<Vec<crate::venue::Quote>, crate::providers::ProviderError>,
) {
    match parsed {
        Ok(quotes) => {
            let _ = ctx.publisher.publish(quotes, source).await;
        }
        Err(e) => {
            ctx.metrics.parse_errors.inc();
            tracing::warn!(source = ctx.venue.name(), provider, error = %e, "Skipping an unusable provider response.");
        }
    }
}

/// The secondary providers' round, for when the venue's own gave nothing:
/// each provider that is not waiting out a rate limit is asked once.
async fn poll_providers<V: Venue>(
    ctx: &Context<V>,
    client: &reqwest::Client,
    providers: &mut crate::providers::Providers,
) {
    use crate::providers::{
        alphavantage_rate_limited, alphavantage_requests, coingecko_request, exchangerate_requests,
        parse_alphavantage, parse_coingecko, parse_exchangerate, ALPHAVANTAGE_SOURCE,
        COINGECKO_SOURCE, EXCHANGERATE_SOURCE,
    };
    let now = std::time::Instant::now();
    let symbols = ctx.current_symbols();
    if providers.coingecko_ready(now) {
        if let (Some(base), Some((path, pairs))) =
            (providers.coingecko.clone(), coingecko_request(&symbols))
        {
            match ask(ctx, client, "coingecko", format!("{base}{path}")).await {
                Ok(body) => {
                    let parsed = parse_coingecko(&body, &pairs, chrono::Utc::now());
                    publish_provider(ctx, "coingecko", COINGECKO_SOURCE, parsed).await;
                }
                Err(Some(wait)) => providers.coingecko_wait(now, wait),
                Err(None) => {}
            }
        }
    }
    if providers.alphavantage_ready(now) {
        if let Some((base, key)) = providers.alphavantage.clone() {
            for (path, symbol) in alphavantage_requests(&symbols, &key) {
                match ask(ctx, client, "alphavantage", format!("{base}{path}")).await {
                    Ok(body) if alphavantage_rate_limited(&body) => {
                        let wait = ctx.settings.rest_interval() * 2;
                        ctx.metrics.rest_request("rate_limited");
                        tracing::warn!(
                            source = ctx.venue.name(),
                            provider = "alphavantage",
                            retry_after_ms = wait.as_millis() as u64,
                            "REST provider rate limited (in the body); backing off."
                        );
                        providers.alphavantage_after = Some(now + wait);
                        break;
                    }
                    Ok(body) => {
                        let parsed = parse_alphavantage(&body, &symbol, chrono::Utc::now())
                            .map(|q| q.into_iter().collect());
                        publish_provider(ctx, "alphavantage", ALPHAVANTAGE_SOURCE, parsed).await;
                    }
                    Err(Some(wait)) => {
                        providers.alphavantage_after = Some(now + wait);
                        break;
                    }
                    Err(None) => {}
                }
            }
        }
    }
    if providers.exchangerate_ready(now) {
        if let Some((base, key)) = providers.exchangerate.clone() {
            for (path, wants) in exchangerate_requests(&symbols, &key) {
                match ask(ctx, client, "exchangerate", format!("{base}{path}")).await {
                    Ok(body) => {
                        let parsed = parse_exchangerate(&body, &wants, chrono::Utc::now());
                        publish_provider(ctx, "exchangerate", EXCHANGERATE_SOURCE, parsed).await;
                    }
                    Err(Some(wait)) => {
                        providers.exchangerate_after = Some(now + wait);
                        break;
                    }
                    Err(None) => {}
                }
            }
        }
    }
}

/// One round: every request of the venue, publishing what parses; also
/// whether any of it gave quotes (if not, the secondary providers are asked).
async fn poll_round<V: Venue>(ctx: &Context<V>, client: &reqwest::Client) -> (Round, bool) {
    let source = rest_source(ctx.venue.name());
    let mut got = false;
    for request in ctx.rest_requests() {
        match fetch(client, &request, ctx.settings.rest_interval()).await {
            Ok(Ok(body)) if ctx.venue.rest_rate_limited(&body) => {
                let wait = ctx.settings.rest_interval() * 2;
                ctx.metrics.rest_request("rate_limited");
                tracing::warn!(
                    source = ctx.venue.name(),
                    retry_after_ms = wait.as_millis() as u64,
                    "REST fallback rate limited (in the body); backing off."
                );
                return (Round::RateLimited(wait), got);
            }
            Ok(Ok(body)) => {
                ctx.metrics.rest_request("ok");
                match ctx.venue.parse_rest(&request, &body) {
                    Ok(quotes) => {
                        got |= !quotes.is_empty();
                        let _ = ctx.publisher.publish(quotes, &source).await;
                    }
                    Err(e) => {
                        ctx.metrics.parse_errors.inc();
                        tracing::warn!(source = ctx.venue.name(), url = redact(&request.url), error = %e, "Skipping an unparsable REST response.");
                    }
                }
            }
            Ok(Err(wait)) => {
                ctx.metrics.rest_request("rate_limited");
                tracing::warn!(
                    source = ctx.venue.name(),
                    retry_after_ms = wait.as_millis() as u64,
                    "REST fallback rate limited; waiting as asked."
                );
                return (Round::RateLimited(wait), got);
            }
            Err(e) => {
                ctx.metrics.rest_request("error");
                tracing::warn!(source = ctx.venue.name(), url = redact(&request.url), error = %e, retryable = e.is_retryable(), "REST fallback request failed.");
            }
        }
    }
    (Round::Done, got)
}

/// GETs one URL: `Ok(Ok(body))`, `Ok(Err(wait))` when rate limited, or the failure.
async fn fetch(
    client: &reqwest::Client,
    request: &RestRequest,
    default_wait: Duration,
) -> Result<Result<String, Duration>, RestError> {
    let response = client.get(&request.url).send().await?;
    let status = response.status();
    if status == StatusCode::TOO_MANY_REQUESTS || status.as_u16() == 418 {
        return Ok(Err(retry_after(response.headers(), default_wait * 2)));
    }
    if !status.is_success() {
        return Err(RestError::Status(status.as_u16()));
    }
    Ok(Ok(response.text().await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn retry_after_table() {
        let d = Duration::from_secs(7);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, d), d);
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h, d), Duration::from_secs(3));
        h.insert(RETRY_AFTER, HeaderValue::from_static("999999"));
        assert_eq!(retry_after(&h, d), MAX_RETRY_AFTER);
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h, d), d);
        assert!(RestError::Status(503).is_retryable());
        assert!(!RestError::Status(401).is_retryable());
    }
}
