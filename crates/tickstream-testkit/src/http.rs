//! Small HTTP helpers for asserting on a service's REST endpoints.

use std::time::Duration;

use anyhow::Context as _;

/// Per-request timeout: a local service that takes longer is hung, and the
/// test should say so rather than wait for the harness.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for loopback services: no proxy (an `HTTP_PROXY` in a developer's
/// environment must not intercept 127.0.0.1), bounded by [`REQUEST_TIMEOUT`].
fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("building HTTP client")
}

/// GETs `url` and returns the status with the body parsed as JSON, so REST tests assert in one line (an empty body is `Null`).
///
/// Any status is returned as is; a body that is neither empty nor JSON is an
/// error that quotes it.
pub async fn http_get_json(url: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    let (status, body) = http_get_text(url).await?;
    if body.trim().is_empty() {
        return Ok((status, serde_json::Value::Null));
    }
    let value = serde_json::from_str(&body)
        .with_context(|| format!("GET {url} returned {status} with a non-JSON body: {body}"))?;
    Ok((status, value))
}

/// GETs `url` and returns the status and body text, for endpoints that are not JSON (such as `/metrics`).
pub async fn http_get_text(url: &str) -> anyhow::Result<(u16, String)> {
    let response = client()?
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .with_context(|| format!("reading body of GET {url}"))?;
    Ok((status, body))
}

/// POSTs an empty body to `url` (with `Authorization: Bearer <token>` when given) and returns the status and JSON body, for admin endpoints.
pub async fn http_post_json(
    url: &str,
    bearer: Option<&str>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let mut request = client()?.post(url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .with_context(|| format!("reading body of POST {url}"))?;
    if body.trim().is_empty() {
        return Ok((status, serde_json::Value::Null));
    }
    let value = serde_json::from_str(&body)
        .with_context(|| format!("POST {url} returned {status} with a non-JSON body: {body}"))?;
    Ok((status, value))
}
