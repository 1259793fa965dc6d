//! REST endpoints: `/health`, `/stats`, `/symbols`, `/price/{symbol}`, `/prices`, `/metrics`.
//!
//! Shapes are documented in `docs/rest.md`. Errors map to status codes in one
//! place, [`ApiError`], always as `{"success":false,"error":...}`.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Value};
use tickstream_bus::keys::TICK_CHANNEL_PREFIX;
use tickstream_bus::{FeedMode, Heartbeat, IngestorStatus};
use tickstream_model::{Symbol, Tick};
use tickstream_runtime::health::HealthStatus;
use tickstream_runtime::human_duration;

use crate::state::AppState;

/// Most symbols `/prices` answers in one call.
pub const MAX_PRICES_PER_REQUEST: usize = 100;
/// `/health` answers within this even when Redis hangs.
const HEALTH_REDIS_TIMEOUT: Duration = Duration::from_millis(1500);
/// Service name shown in `/health` and `/stats`.
pub const SERVICE_NAME: &str = "tickstream-gateway";

/// Every REST failure, mapped to a status code here and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (invalid symbol, too many symbols): 400.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing cached for the symbol: 404.
    #[error("{0}")]
    NotFound(String),
    /// Redis is unreachable: 503.
    #[error("{0}")]
    Unavailable(String),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(json!({"success": false, "error": self.to_string()}))
    }
}

fn now() -> String {
    tickstream_model::time::format(&tickstream_model::time::now_millis())
}

/// The symbols of the `ticks:` channels some local client holds.
fn active_symbols(state: &AppState) -> Vec<String> {
    state
        .hub
        .subscriptions_by_channel()
        .into_iter()
        .filter(|(c, _)| c.is_ticks())
        .filter_map(|(c, _)| c.symbol().map(str::to_owned))
        .collect()
}

fn active_streams(state: &AppState) -> i64 {
    state.connections()
}

/// `GET /health`: Redis and ingestors; 503 while Redis is unreachable.
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let ping = tokio::time::timeout(HEALTH_REDIS_TIMEOUT, state.redis.ping()).await;
    let redis_error = match ping {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("Redis did not answer in time".to_owned()),
    };
    let heartbeats = if redis_error.is_none() {
        match tokio::time::timeout(HEALTH_REDIS_TIMEOUT, state.redis.heartbeats()).await {
            Ok(Ok(h)) => h,
            _ => Vec::new(),
        }
    } else {
        Vec::new()
    };

    let mut status = HealthStatus::Healthy;
    let redis = match &redis_error {
        None => json!({"status": "healthy", "message": "OK"}),
        Some(e) => {
            // Alive and reconnecting, but cannot serve new data: out of rotation (503).
            status = HealthStatus::Degraded;
            json!({"status": "unhealthy", "message": e})
        }
    };
    let mut ingestors = serde_json::Map::new();
    for hb in &heartbeats {
        if hb.status != IngestorStatus::Healthy {
            status = status.worst(HealthStatus::Degraded);
        }
        ingestors.insert(hb.name.clone(), ingestor_json(hb));
    }
    let ingestor_note = if redis_error.is_none() && heartbeats.is_empty() {
        status = status.worst(HealthStatus::Degraded);
        Some("no ingestor heartbeats in Redis")
    } else {
        None
    };
    let code = if redis_error.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut body = json!({
        "service": SERVICE_NAME,
        "status": status.as_str(),
        "port": state.port,
        "timestamp": now(),
        "uptime": human_duration(state.started.elapsed()),
        "dependencies": {"redis": redis, "ingestors": Value::Object(ingestors)},
        "metrics": {
            "active_streams": active_streams(&state),
            "total_subscriptions": state.hub.total_subscriptions(),
            "active_symbols": active_symbols(&state),
        },
    });
    if let Some(note) = ingestor_note {
        body["dependencies"]["ingestors_message"] = json!(note);
    }
    HttpResponse::build(code).json(body)
}

fn ingestor_json(hb: &Heartbeat) -> Value {
    let mut v = json!({
        "status": hb.status,
        "symbols": hb.symbols.len(),
        "last_tick": hb.last_tick,
        "ticks_published": hb.ticks_published,
        "updated_at": hb.updated_at,
    });
    if let Some(m) = &hb.message {
        v["message"] = json!(m);
    }
    v
}

/// `GET /stats`: connections, subscriptions and rates.
pub async fn stats(state: web::Data<AppState>) -> HttpResponse {
    let by_channel: BTreeMap<String, usize> = state
        .hub
        .subscriptions_by_channel()
        .into_iter()
        .map(|(c, n)| (c.as_str().to_owned(), n))
        .collect();
    let by_symbol: BTreeMap<&str, usize> = by_channel
        .iter()
        .filter_map(|(c, n)| Some((c.strip_prefix(TICK_CHANNEL_PREFIX)?, *n)))
        .collect();
    let m = &state.metrics;
    HttpResponse::Ok().json(json!({
        "success": true,
        "data": {
            "service": SERVICE_NAME,
            "port": state.port,
            "active_streams": active_streams(&state),
            "active_symbols": by_symbol.keys().collect::<Vec<_>>(),
            "total_subscriptions": state.hub.total_subscriptions(),
            "subscriptions_by_symbol": by_symbol,
            "active_channels": by_channel.keys().collect::<Vec<_>>(),
            "subscriptions_by_channel": by_channel,
            "uptime": human_duration(state.started.elapsed()),
            "ticks_received_total": m.ticks_received.get(),
            "messages_sent_total": m.messages_sent.get(),
            "ticks_dropped_total": m.dropped.with_label_values(&["queue_full"]).get(),
            "ticks_per_second": state.rates.ticks(),
            "messages_per_second": state.rates.messages(),
            "redis_connected": state.redis.health().is_up(),
        }
    }))
}

/// `GET /symbols`: suggested, active, and what each ingestor serves now.
pub async fn symbols(state: web::Data<AppState>) -> HttpResponse {
    let heartbeats =
        match tokio::time::timeout(HEALTH_REDIS_TIMEOUT, state.redis.heartbeats()).await {
            Ok(Ok(h)) => h,
            _ => Vec::new(),
        };
    let supported: BTreeMap<String, Vec<String>> = heartbeats
        .into_iter()
        .map(|hb| (hb.name, hb.symbols))
        .collect();
    let statuses =
        match tokio::time::timeout(HEALTH_REDIS_TIMEOUT, state.redis.feed_statuses()).await {
            Ok(Ok(s)) => s,
            _ => Vec::new(),
        };
    let feeds: BTreeMap<String, Value> = statuses
        .into_iter()
        .map(|f| {
            // A stopped feed streams nothing; a feed older than `can_serve` serves its symbols.
            let streaming = if f.mode == FeedMode::Stopped {
                Vec::new()
            } else {
                f.symbols.clone()
            };
            let can_serve = if f.can_serve.is_empty() {
                f.symbols
            } else {
                f.can_serve
            };
            let entry = json!({
                "can_serve": can_serve,
                "streaming": streaming,
                "on_demand": f.on_demand,
                "mode": f.mode,
            });
            (f.name, entry)
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "success": true,
        "data": {
            "default_symbols": state.default_symbols,
            "active_symbols": active_symbols(&state),
            "supported": supported,
            "feeds": feeds,
        }
    }))
}

/// Reads a symbol from a path tail: `/price/EUR%2FUSD`, `/price/EUR/USD`, `/price/btcusdt`.
fn symbol_from_path(req: &HttpRequest) -> Result<Symbol, ApiError> {
    let raw = req.match_info().get("symbol").unwrap_or_default();
    let decoded = urlencoding::decode(raw)
        .map_err(|_| ApiError::BadRequest("symbol is not valid UTF-8".to_owned()))?;
    Symbol::parse(&decoded).map_err(|e| ApiError::BadRequest(format!("invalid symbol: {e}")))
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("price cache unavailable: {e}"))
}

fn decode_cached(raw: &[u8]) -> Option<Tick> {
    Tick::from_json(raw).ok()
}

/// The tick as a client that asked for `asked` sees it: an alias's tick carries the alias, and `feed_symbol` the feed's name.
fn as_asked(tick: &Tick, asked: &Symbol) -> serde_json::Value {
    let mut data = json!(tick);
    if tick.symbol != *asked {
        if let serde_json::Value::Object(obj) = &mut data {
            obj.insert("symbol".to_owned(), json!(asked.as_str()));
            obj.insert("feed_symbol".to_owned(), json!(tick.symbol.as_str()));
        }
    }
    data
}

/// The feed symbol behind a requested name (the alias table, deferring to what feeds serve themselves).
fn resolved(
    state: &AppState,
    served: &std::collections::HashSet<String>,
    asked: &Symbol,
) -> Symbol {
    crate::compat::aliases::Resolver::new(&state.cfg.gateway.compat, served)
        .target(asked)
        .unwrap_or_else(|| asked.clone())
}

/// `GET /price/{symbol}`: the cached latest tick (aliases such as `BTC` answer with their feed symbol's tick).
pub async fn price(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let asked = symbol_from_path(&req)?;
    let served = state.served.get(&state.redis).await;
    let symbol = resolved(&state, &served, &asked);
    let raw = state
        .redis
        .latest(symbol.as_str())
        .await
        .map_err(unavailable)?;
    match raw.as_deref().and_then(decode_cached) {
        Some(tick) => {
            let data = as_asked(&tick, &asked);
            Ok(HttpResponse::Ok().json(json!({"success": true, "data": data, "source": "cache"})))
        }
        None => Err(ApiError::NotFound(format!("no price for {symbol}"))),
    }
}

/// `?symbols=A,B` for `/prices`.
#[derive(Debug, serde::Deserialize)]
pub struct PricesQuery {
    symbols: Option<String>,
}

/// `GET /prices?symbols=A,B`: several cached ticks in one call; missing ones are listed.
pub async fn prices(
    query: web::Query<PricesQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let raw = query.symbols.as_deref().unwrap_or_default();
    let symbols = Symbol::parse_list(raw)
        .map_err(|(bad, e)| ApiError::BadRequest(format!("invalid symbol {bad:?}: {e}")))?;
    if symbols.is_empty() {
        return Err(ApiError::BadRequest("give ?symbols=A,B".to_owned()));
    }
    if symbols.len() > MAX_PRICES_PER_REQUEST {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_PRICES_PER_REQUEST} symbols per request"
        )));
    }
    let served = state.served.get(&state.redis).await;
    let feeds: Vec<Symbol> = symbols
        .iter()
        .map(|s| resolved(&state, &served, s))
        .collect();
    let names: Vec<&str> = feeds.iter().map(Symbol::as_str).collect();
    let cached = state.redis.latest_many(&names).await.map_err(unavailable)?;
    let mut data = serde_json::Map::new();
    let mut missing = Vec::new();
    for (sym, raw) in symbols.iter().zip(cached) {
        match raw.as_deref().and_then(decode_cached) {
            Some(t) => {
                data.insert(sym.as_str().to_owned(), as_asked(&t, sym));
            }
            None => missing.push(sym.as_str().to_owned()),
        }
    }
    Ok(HttpResponse::Ok()
        .json(json!({"success": true, "data": data, "missing": missing, "source": "cache"})))
}

/// `?since_seq=N&limit=M` of the history endpoints, read as text so a bad value is a JSON 400 naming it.
#[derive(Debug, Default, serde::Deserialize)]
pub struct HistoryQuery {
    since_seq: Option<String>,
    limit: Option<String>,
}

/// `GET /history/{symbol}?since_seq=&limit=`: ticks after a seq, oldest first.
pub async fn history(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    history_of(&req, &state, "ticks").await
}

/// `GET /trades/{symbol}?since_seq=&limit=`: trades after a seq, oldest first.
pub async fn trades(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    history_of(&req, &state, "trades").await
}

/// One page of a symbol's `kind` history: `{"success":true,"data":{"symbol","channel","epoch","items"}}`.
///
/// 400 for a bad symbol or parameter; 404 when the symbol has neither history
/// nor a cached value (nothing serves it); `limit` defaults to and is capped by
/// `gateway.history_max_items`.
async fn history_of(
    req: &HttpRequest,
    state: &AppState,
    kind: &str,
) -> Result<HttpResponse, ApiError> {
    let symbol = symbol_from_path(req)?;
    let query = web::Query::<HistoryQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let number = |name: &str, raw: &Option<String>| -> Result<Option<u64>, ApiError> {
        raw.as_deref()
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "{name} must be a non-negative integer, got {v:?}"
                    ))
                })
            })
            .transpose()
    };
    let since = number("since_seq", &query.since_seq)?.unwrap_or(0);
    let cap = state.cfg.gateway.history_max_items;
    let limit = match number("limit", &query.limit)? {
        Some(0) => return Err(ApiError::BadRequest("limit must be at least 1".to_owned())),
        Some(l) => usize::try_from(l).unwrap_or(usize::MAX).min(cap),
        None => cap,
    };
    let channel = tickstream_model::Channel::for_symbol(kind, &symbol)
        .ok_or_else(|| ApiError::BadRequest(format!("{kind} keep no history")))?;
    let page = state
        .redis
        .history(&channel, since, limit)
        .await
        .map_err(|e| ApiError::Unavailable(format!("history unavailable: {e}")))?;
    if page.newest.is_none() {
        let cached = state
            .redis
            .latest_channels(std::slice::from_ref(&channel))
            .await
            .map_err(unavailable)?;
        if cached.first().is_none_or(Option::is_none) {
            return Err(ApiError::NotFound(format!("no {kind} for {symbol}")));
        }
    }
    let items: Vec<Value> = page
        .items
        .iter()
        .filter_map(|(_, raw)| serde_json::from_slice(raw).ok())
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "data": {
            "symbol": symbol,
            "channel": channel,
            "epoch": page.epoch,
            "oldest_seq": page.oldest,
            "newest_seq": page.newest,
            "items": items,
        }
    })))
}

/// `?interval=1m&limit=&from=&to=` of `/candles`, read as text so a bad value is a JSON 400 naming it.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CandlesQuery {
    interval: Option<String>,
    limit: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// Default and cap of `/candles?limit=`.
pub const MAX_CANDLES_PER_REQUEST: usize = 1000;

/// Reads a bound of `/candles`: epoch milliseconds, or an RFC 3339 time.
fn time_bound(name: &str, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    if let Ok(ms) = raw.parse::<i64>() {
        return Ok(Some(ms));
    }
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| Some(t.timestamp_millis()))
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "{name} must be epoch milliseconds or an RFC 3339 time, got {raw:?}"
            ))
        })
}

/// `GET /candles/{symbol}?interval=1m&limit=&from=&to=`: stored bars, oldest first (the analytics service's store).
pub async fn candles(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let symbol = symbol_from_path(&req)?;
    let query = web::Query::<CandlesQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let interval = query.interval.as_deref().unwrap_or("1m");
    let channel = tickstream_model::Channel::parse(&format!("candles:{interval}:{symbol}"))
        .map_err(|e| ApiError::BadRequest(format!("invalid interval: {e}")))?;
    let limit = match query.limit.as_deref() {
        None => MAX_CANDLES_PER_REQUEST,
        Some(raw) => match raw.parse::<usize>() {
            Ok(0) | Err(_) => {
                return Err(ApiError::BadRequest(format!(
                    "limit must be a positive integer, got {raw:?}"
                )))
            }
            Ok(n) => n.min(MAX_CANDLES_PER_REQUEST),
        },
    };
    let range = tickstream_bus::CandleRange {
        from_ms: time_bound("from", query.from.as_deref())?,
        to_ms: time_bound("to", query.to.as_deref())?,
        limit,
    };
    let bars = state
        .redis
        .candles(&channel, range)
        .await
        .map_err(|e| ApiError::Unavailable(format!("candle store unavailable: {e}")))?;
    if bars.is_empty() && range.from_ms.is_none() && range.to_ms.is_none() {
        return Err(ApiError::NotFound(format!(
            "no {interval} candles for {symbol}"
        )));
    }
    let bars: Vec<Value> = bars
        .iter()
        .filter_map(|raw| serde_json::from_slice(raw).ok())
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "data": {"symbol": symbol, "interval": interval, "candles": bars}
    })))
}

/// `GET /signals/{symbol}`: the latest trading signal.
pub async fn signal(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let symbol = symbol_from_path(&req)?;
    let raw = state
        .redis
        .latest_signal(&symbol)
        .await
        .map_err(unavailable)?;
    match raw.and_then(|r| serde_json::from_slice::<Value>(&r).ok()) {
        Some(v) => Ok(HttpResponse::Ok().json(json!({"success": true, "data": v}))),
        None => Err(ApiError::NotFound(format!("no signal for {symbol}"))),
    }
}

/// `GET /sentiment`: the latest market mood.
pub async fn sentiment(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let raw = state.redis.latest_sentiment().await.map_err(unavailable)?;
    match raw.and_then(|r| serde_json::from_slice::<Value>(&r).ok()) {
        Some(v) => Ok(HttpResponse::Ok().json(json!({"success": true, "data": v}))),
        None => Err(ApiError::NotFound("no sentiment published yet".to_owned())),
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    tickstream_runtime::ops::metrics_response(&state.metrics.registry)
}
