//! Clients that check every seq, and churners that drop their connection and recover (`--track-seq`,
//! `--churn-fraction`).
//!
//! Such a client keeps, per symbol, the last `seq` it received and every run of consecutive seqs it
//! received, and counts gaps (`seq > last + 1`), duplicates (`seq <= last`) and items. A churner (a
//! fixed share of the clients, chosen spread over the symbols) drops its TCP connection
//! `--churn-every` seconds after each (re)connect (the first at its own phase, so reconnects are
//! spread over the period; a connection the server ends is replaced at once), stays away
//! `--churn-offline` seconds, then opens a new TCP + WebSocket connection and subscribes again
//! with `since` = its last seq per symbol and the `epoch` of its first `subscribed` reply. The reply's
//! `recovery` says per channel whether it was recovered (`replayed` items follow the reply) or not
//! (`reason`; a snapshot follows instead), so the client knows how many frames precede the first live
//! one, and times each reconnect:
//!
//! - `reply`: subscribe sent → `subscribed` received;
//! - `caught_up`: subscribe sent → the last replayed (or snapshot) frame received;
//! - `first_live`: subscribe sent → the first live item after the replay received.
//!
//! At the end the runs are intersected with the seqs the publisher sent inside the measured window
//! (seqs of a symbol go up by exactly 1 per tick), which makes the exactly-once figure exact rather
//! than a count of whatever arrived between two instants. Native protocol only.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use memchr::memmem;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use crate::client::{self, classify, ClientCtx, ClientOutcome, Event};
use crate::report::Latency;
use crate::stats::{
    new_histogram, now_micros, tick_timestamp_micros, Batch, MAX_LATENCY_US, SHARDS,
};
use crate::ws::{Frame, WsConn};

/// Pause between two failed reconnect attempts of a churner.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Duplicate seqs remembered per client and symbol (beyond it they are only counted).
const MAX_DUP_SEQS: usize = 4096;

/// How the churners behave.
#[derive(Debug, Clone, Copy)]
pub struct ChurnPlan {
    /// Period between two drops of one churner.
    pub every: Duration,
    /// Time away between the drop and the new connection.
    pub offline: Duration,
}

/// What the seq-tracking clients of one process report into.
pub struct RecoveryShared {
    /// Churners drop and reconnect only while this is set: from the start of publishing to the end of
    /// the window.
    pub churning: AtomicBool,
    /// The churn settings (`None`: tracking only).
    pub plan: Option<ChurnPlan>,
    /// Reconnects that got their `subscribed` reply.
    pub reconnects: AtomicU64,
    /// Reconnect attempts that failed (connect, upgrade or subscribe).
    pub reconnect_failures: AtomicU64,
    /// Channels the gateway said it recovered.
    pub recovered: AtomicU64,
    /// Items it said it replayed.
    pub replayed: AtomicU64,
    /// Whole run: gap events, items missing in them, duplicates.
    pub gaps: AtomicU64,
    /// Items skipped over by the gaps.
    pub gap_items: AtomicU64,
    /// Items with `seq <= last`.
    pub duplicates: AtomicU64,
    /// Timings and reasons, under one lock (taken once per reconnect).
    pub slow: Mutex<SlowParts>,
    /// Latency of the steady (non-churning) clients' ticks in the window, sharded like the main one.
    pub steady: Vec<Mutex<Histogram<u64>>>,
    /// Every client's seq record, handed in when it ends.
    pub clients: Mutex<Vec<ClientSeqs>>,
}

/// The rarely-updated part of [`RecoveryShared`].
pub struct SlowParts {
    /// `recovered:false` per reason.
    pub reasons: BTreeMap<String, u64>,
    /// Subscribe sent → `subscribed`, µs.
    pub reply: Histogram<u64>,
    /// Subscribe sent → last replayed or snapshot frame, µs.
    pub caught_up: Histogram<u64>,
    /// Subscribe sent → first live item, µs.
    pub first_live: Histogram<u64>,
}

impl RecoveryShared {
    /// Empty tallies; not churning yet.
    pub fn new(plan: Option<ChurnPlan>) -> anyhow::Result<Self> {
        let mut steady = Vec::with_capacity(SHARDS);
        for _ in 0..SHARDS {
            steady.push(Mutex::new(new_histogram()?));
        }
        Ok(Self {
            churning: AtomicBool::new(false),
            plan,
            reconnects: AtomicU64::new(0),
            reconnect_failures: AtomicU64::new(0),
            recovered: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            gap_items: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            slow: Mutex::new(SlowParts {
                reasons: BTreeMap::new(),
                reply: new_histogram()?,
                caught_up: new_histogram()?,
                first_live: new_histogram()?,
            }),
            steady,
            clients: Mutex::new(Vec::new()),
        })
    }
}

/// Which clients churn: `round(fraction × n)` of them, picked by a hash of the index so that they
/// spread over the symbols (evenly spaced indices would all share the same symbols).
pub fn churners(n: usize, fraction: f64) -> Vec<bool> {
    let k = ((n as f64) * fraction.clamp(0.0, 1.0)).round() as usize;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (mix(i as u64), i));
    let mut out = vec![false; n];
    for &i in order.iter().take(k) {
        out[i] = true;
    }
    out
}

/// splitmix64: a cheap, well-spread hash of a client index.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One symbol's seqs as one client received them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SymbolSeqs {
    /// Last seq received (0: none yet).
    pub last: u64,
    /// Runs of consecutive seqs received, `(first, last)`, in order.
    pub runs: Vec<(u64, u64)>,
    /// Seqs received again (`seq <= last`), the first [`MAX_DUP_SEQS`].
    pub dups: Vec<u64>,
    /// Duplicates beyond those.
    pub dups_uncounted: u64,
}

/// What one received seq was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqKind {
    /// The first of the symbol (the subscribe's snapshot).
    First,
    /// `last + 1`.
    Next,
    /// Above `last + 1`: this many items were skipped.
    Gap(u64),
    /// `<= last`.
    Duplicate,
}

impl SymbolSeqs {
    /// Records one received seq.
    pub fn record(&mut self, seq: u64) -> SeqKind {
        if self.last == 0 {
            self.last = seq;
            self.runs.push((seq, seq));
            return SeqKind::First;
        }
        if seq <= self.last {
            if self.dups.len() < MAX_DUP_SEQS {
                self.dups.push(seq);
            } else {
                self.dups_uncounted += 1;
            }
            return SeqKind::Duplicate;
        }
        let kind = if seq == self.last + 1 {
            if let Some(run) = self.runs.last_mut() {
                run.1 = seq;
            }
            SeqKind::Next
        } else {
            self.runs.push((seq, seq));
            SeqKind::Gap(seq - self.last - 1)
        };
        self.last = seq;
        kind
    }

    /// Within seqs `first ..= last`: (received at least once, received exactly once).
    pub fn in_range(&self, first: u64, last: u64) -> (u64, u64) {
        if first > last {
            return (0, 0);
        }
        let received: u64 = self
            .runs
            .iter()
            .map(|&(a, b)| {
                let (lo, hi) = (a.max(first), b.min(last));
                if lo <= hi {
                    hi - lo + 1
                } else {
                    0
                }
            })
            .sum();
        let dup = self
            .dups
            .iter()
            .filter(|&&s| (first..=last).contains(&s))
            .count() as u64
            + self.dups_uncounted;
        (received, received.saturating_sub(dup))
    }
}

/// One client's record: its symbols' indices in the run and their seqs.
#[derive(Debug, Clone)]
pub struct ClientSeqs {
    /// Whether it churned.
    pub churner: bool,
    /// Index of each of its symbols among the run's symbols.
    pub symbols: Vec<usize>,
    /// Per symbol (same order), what it received.
    pub seqs: Vec<SymbolSeqs>,
}

/// Percentiles of one reconnect timing, ms.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timing {
    /// Reconnects timed.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Timing {
    fn of(h: &Histogram<u64>) -> Self {
        Self {
            count: h.len(),
            p50_ms: h.value_at_quantile(0.50) as f64 / 1000.0,
            p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
            max_ms: h.max() as f64 / 1000.0,
        }
    }
}

/// What `--track-seq` / `--churn-fraction` measured; the report's `recovery`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RecoveryReport {
    /// Share of the clients that churned (0: tracking only, the run without churn).
    pub churn_fraction: f64,
    /// Seconds between two drops of one churner.
    pub churn_every_secs: f64,
    /// Seconds a churner stays away before reconnecting.
    pub churn_offline_secs: f64,
    /// Clients that churned.
    pub churning_clients: u64,
    /// Clients that kept their connection.
    pub steady_clients: u64,
    /// Whole run: reconnects that got their `subscribed` reply.
    pub reconnects: u64,
    /// Whole run: reconnect attempts that failed.
    pub reconnect_failures: u64,
    /// Whole run: channels `recovered:true`.
    pub channels_recovered: u64,
    /// Whole run: channels `recovered:false`.
    pub channels_not_recovered: u64,
    /// `recovered:false` per reason.
    pub not_recovered_reasons: BTreeMap<String, u64>,
    /// Whole run: items replayed (as the replies said).
    pub replayed: u64,
    /// Σ over subscribed clients and their symbols of the seqs published in the window.
    pub window_expected: u64,
    /// Of those, seqs the client received exactly once (received, minus received more than once).
    pub window_exactly_once: u64,
    /// Of those, seqs the client never received.
    pub window_missing: u64,
    /// Of those, seqs received more than once.
    pub window_duplicates: u64,
    /// window_exactly_once / window_expected (1.0: every item of the window, once, to every client).
    pub exactly_once_ratio: f64,
    /// The same over the churners only.
    pub churners_exactly_once_ratio: f64,
    /// Whole run: gap events (`seq > last + 1`).
    pub gaps: u64,
    /// Whole run: items skipped by those gaps.
    pub gap_items: u64,
    /// Whole run: items with `seq <= last`.
    pub duplicates: u64,
    /// Reconnect: subscribe sent → `subscribed`.
    pub reply: Timing,
    /// Reconnect: subscribe sent → last replayed (or snapshot) frame: caught up.
    pub caught_up: Timing,
    /// Reconnect: subscribe sent → first live item after the replay.
    pub first_live: Timing,
    /// Latency (receive − tick timestamp) of the steady clients' ticks in the window.
    pub steady_latency: Latency,
}

/// Builds the report from a process's tallies and the publisher's window: per symbol, the first seq
/// sent in the window and how many.
pub fn report(
    shared: &RecoveryShared,
    churn_fraction: f64,
    window_first_seq: &[u64],
    window_count: &[u64],
) -> anyhow::Result<RecoveryReport> {
    let clients = shared.clients.lock().unwrap_or_else(|p| p.into_inner());
    let (mut expected, mut received, mut once) = (0u64, 0u64, 0u64);
    let (mut c_expected, mut c_once) = (0u64, 0u64);
    for c in clients.iter() {
        for (k, &sym) in c.symbols.iter().enumerate() {
            let n = window_count.get(sym).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let first = window_first_seq[sym];
            let (r, o) = c.seqs[k].in_range(first, first + n - 1);
            expected += n;
            received += r;
            once += o;
            if c.churner {
                c_expected += n;
                c_once += o;
            }
        }
    }
    let churning = clients.iter().filter(|c| c.churner).count() as u64;
    let slow = shared.slow.lock().unwrap_or_else(|p| p.into_inner());
    let mut steady = new_histogram()?;
    for h in &shared.steady {
        steady.add(&*h.lock().unwrap_or_else(|p| p.into_inner()))?;
    }
    let ratio = |a: u64, b: u64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
    Ok(RecoveryReport {
        churn_fraction: if shared.plan.is_some() {
            churn_fraction
        } else {
            0.0
        },
        churn_every_secs: shared.plan.map_or(0.0, |p| p.every.as_secs_f64()),
        churn_offline_secs: shared.plan.map_or(0.0, |p| p.offline.as_secs_f64()),
        churning_clients: churning,
        steady_clients: clients.len() as u64 - churning,
        reconnects: shared.reconnects.load(Ordering::Relaxed),
        reconnect_failures: shared.reconnect_failures.load(Ordering::Relaxed),
        channels_recovered: shared.recovered.load(Ordering::Relaxed),
        channels_not_recovered: slow.reasons.values().sum(),
        not_recovered_reasons: slow.reasons.clone(),
        replayed: shared.replayed.load(Ordering::Relaxed),
        window_expected: expected,
        window_exactly_once: once,
        window_missing: expected - received.min(expected),
        window_duplicates: received - once,
        exactly_once_ratio: ratio(once, expected),
        churners_exactly_once_ratio: ratio(c_once, c_expected),
        gaps: shared.gaps.load(Ordering::Relaxed),
        gap_items: shared.gap_items.load(Ordering::Relaxed),
        duplicates: shared.duplicates.load(Ordering::Relaxed),
        reply: Timing::of(&slow.reply),
        caught_up: Timing::of(&slow.caught_up),
        first_live: Timing::of(&slow.first_live),
        steady_latency: Latency::of(&steady),
    })
}

/// What a `subscribed` reply told a client.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subscribed {
    /// `data.epoch`.
    pub epoch: Option<String>,
    /// Frames before the first live one: replayed items of recovered channels, one snapshot for
    /// every other channel not `pending`.
    pub pre_live: u64,
    /// Channels recovered, and items replayed.
    pub recovered: u64,
    /// Items replayed.
    pub replayed: u64,
    /// `recovered:false` reasons, one per channel.
    pub not_recovered: Vec<String>,
}

/// Reads a native `subscribed` frame for the client holding `symbols`.
pub fn parse_subscribed(text: &[u8], symbols: &[String]) -> anyhow::Result<Subscribed> {
    let v: Value = serde_json::from_slice(text)?;
    let data = &v["data"];
    let mut out = Subscribed {
        epoch: data["epoch"].as_str().map(str::to_owned),
        ..Subscribed::default()
    };
    let pending: Vec<&str> = data["pending"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for s in symbols {
        let channel = format!("ticks:{s}");
        let is_pending = pending.iter().any(|p| *p == channel || p == s);
        match data["recovery"].get(&channel) {
            Some(r) if r["recovered"].as_bool() == Some(true) => {
                let n = r["replayed"].as_u64().unwrap_or(0);
                out.recovered += 1;
                out.replayed += n;
                out.pre_live += n;
            }
            Some(r) => {
                out.not_recovered
                    .push(r["reason"].as_str().unwrap_or("unknown").to_owned());
                out.pre_live += u64::from(!is_pending);
            }
            None => out.pre_live += u64::from(!is_pending),
        }
    }
    Ok(out)
}

/// `(symbol, seq)` of a native `price_update` frame, found by literal search.
pub fn tick_symbol_seq(frame: &[u8]) -> Option<(&[u8], u64)> {
    const SYMBOL: &[u8] = br#""symbol":""#;
    const SEQ: &[u8] = br#""seq":"#;
    let at = memmem::find(frame, SYMBOL)? + SYMBOL.len();
    let end = memchr::memchr(b'"', &frame[at..])?;
    let symbol = &frame[at..at + end];
    let s = memmem::rfind(frame, SEQ)? + SEQ.len();
    let digits = frame[s..].iter().take_while(|b| b.is_ascii_digit()).count();
    let seq = std::str::from_utf8(&frame[s..s + digits])
        .ok()?
        .parse()
        .ok()?;
    Some((symbol, seq))
}

/// The subscribe request, with `since` and `epoch` when recovering.
fn subscribe_request(symbols: &[String], seqs: &[SymbolSeqs], epoch: Option<&str>) -> String {
    let list = serde_json::to_string(symbols).unwrap_or_else(|_| "[]".to_owned());
    if seqs.iter().all(|s| s.last == 0) {
        return format!(r#"{{"event":"subscribe","data":{{"symbols":{list}}}}}"#);
    }
    let since: serde_json::Map<String, Value> = symbols
        .iter()
        .zip(seqs)
        .filter(|(_, s)| s.last > 0)
        .map(|(sym, s)| (format!("ticks:{sym}"), Value::from(s.last)))
        .collect();
    let mut data = serde_json::json!({"symbols": symbols, "since": since});
    if let Some(e) = epoch {
        data["epoch"] = Value::from(e);
    }
    serde_json::json!({"event": "subscribe", "data": data}).to_string()
}

/// Connects and subscribes (with `since` when `seqs` has any); returns once `subscribed` is read,
/// the frames after it still buffered, with the reply and the instant the request was sent.
async fn subscribe(
    index: usize,
    ctx: &ClientCtx,
    symbols: &[String],
    seqs: &[SymbolSeqs],
    epoch: Option<&str>,
) -> anyhow::Result<(WsConn, Subscribed, Instant)> {
    let mut conn = client::connect(index, ctx).await?;
    conn.queue_text(&subscribe_request(symbols, seqs, epoch));
    let sent = Instant::now();
    conn.flush().await?;
    loop {
        while let Some(frame) = conn.next_frame()? {
            match frame {
                Frame::Text(p) => {
                    let text = conn.payload(p);
                    if memmem::find(text, br#""event":"subscribed""#).is_some() {
                        let reply = parse_subscribed(text, symbols)?;
                        conn.flush().await?;
                        return Ok((conn, reply, sent));
                    }
                    if classify(ctx.protocol, text) == Event::Error {
                        anyhow::bail!(
                            "server error while subscribing: {}",
                            String::from_utf8_lossy(text)
                        );
                    }
                }
                Frame::Close => anyhow::bail!("server closed while subscribing"),
                _ => {}
            }
        }
        conn.flush().await?;
        if conn.fill().await? == 0 {
            anyhow::bail!("server closed the connection while subscribing");
        }
    }
}

/// A reconnect being timed: frames left before the first live one.
struct Replay {
    sent: Instant,
    left: u64,
    caught_up: bool,
}

/// Runs seq-tracking client `index` (a churner when `churner`) over `symbols` (whose indices in the
/// run are `symbol_ids`) until `stop` turns true.
pub async fn run(
    index: usize,
    ctx: Arc<ClientCtx>,
    symbols: Vec<String>,
    symbol_ids: Vec<usize>,
    churner: bool,
    mut stop: watch::Receiver<bool>,
) -> ClientOutcome {
    let Some(rec) = ctx.recovery.clone() else {
        return ClientOutcome::default();
    };
    let mut outcome = ClientOutcome::default();
    let mut seqs = vec![SymbolSeqs::default(); symbols.len()];
    let permit = ctx.connecting.acquire().await;
    let setup = tokio::time::timeout(
        ctx.subscribe_timeout,
        subscribe(index, &ctx, &symbols, &seqs, None),
    )
    .await;
    drop(permit);
    let (mut conn, first) = match setup {
        Ok(Ok((conn, reply, _))) => (conn, reply),
        Ok(Err(e)) => {
            if index < 3 || ctx.shared.connect_failures.load(Ordering::Relaxed) < 3 {
                eprintln!("loadgen: client {index}: {e}");
            }
            ctx.shared.settle(false);
            return outcome;
        }
        Err(_) => {
            if index < 3 {
                eprintln!("loadgen: client {index}: no `subscribed` in time");
            }
            ctx.shared.settle(false);
            return outcome;
        }
    };
    ctx.shared.settle(true);
    outcome.ready = true;
    let epoch = first.epoch;
    let plan = rec.plan.filter(|_| churner);
    // Each churner's own phase within the period spreads the reconnects evenly over it.
    let mut next_drop = plan.map(|p| {
        tokio::time::Instant::now()
            + p.every
                .mul_f64((mix(index as u64 ^ 0xC0FFEE) % 10_000) as f64 / 10_000.0)
    });
    let shared = &ctx.shared;
    let mut batch = Batch::default();
    let mut steady: Vec<u64> = Vec::new();
    let mut replay: Option<Replay> = None;
    let mut buffered = true;
    // A churner's connection the server ended: nothing more to read until it reconnects.
    let mut lost = false;
    loop {
        let drop_at =
            next_drop.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            () = tokio::time::sleep_until(drop_at), if next_drop.is_some() => {
                let Some(p) = plan else { break };
                if !rec.churning.load(Ordering::Relaxed) {
                    next_drop = Some(drop_at + p.every);
                    if lost {
                        // The server closed it and churning is over: this client is done.
                        return finish(&rec, outcome, churner, symbol_ids, seqs);
                    }
                    continue;
                }
                lost = false;
                // Gone: the TCP connection closes without a WebSocket close (a lost network).
                drop(conn);
                if !p.offline.is_zero() {
                    tokio::select! {
                        _ = stop.changed() => return finish(&rec, outcome, churner, symbol_ids, seqs),
                        () = tokio::time::sleep(p.offline) => {}
                    }
                }
                loop {
                    let attempt = tokio::time::timeout(
                        ctx.subscribe_timeout,
                        subscribe(index, &ctx, &symbols, &seqs, epoch.as_deref()),
                    );
                    let result = tokio::select! {
                        _ = stop.changed() => return finish(&rec, outcome, churner, symbol_ids, seqs),
                        r = attempt => r,
                    };
                    match result {
                        Ok(Ok((c, reply, sent))) => {
                            conn = c;
                            rec.reconnects.fetch_add(1, Ordering::Relaxed);
                            rec.recovered.fetch_add(reply.recovered, Ordering::Relaxed);
                            rec.replayed.fetch_add(reply.replayed, Ordering::Relaxed);
                            let now = Instant::now();
                            let mut slow = rec.slow.lock().unwrap_or_else(|p| p.into_inner());
                            for r in reply.not_recovered {
                                *slow.reasons.entry(r).or_default() += 1;
                            }
                            slow.reply.saturating_record(micros(now - sent));
                            if reply.pre_live == 0 {
                                slow.caught_up.saturating_record(micros(now - sent));
                            }
                            replay = Some(Replay { sent, left: reply.pre_live, caught_up: reply.pre_live == 0 });
                            // The next drop comes a full period after this connection is back, however
                            // long the reconnect took (else a slow one would be dropped before it reads).
                            next_drop = Some(tokio::time::Instant::now() + p.every);
                            break;
                        }
                        Ok(Err(e)) => {
                            if rec.reconnect_failures.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!("loadgen: client {index}: reconnect: {e}");
                            }
                        }
                        Err(_) => {
                            rec.reconnect_failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tokio::select! {
                        _ = stop.changed() => return finish(&rec, outcome, churner, symbol_ids, seqs),
                        () = tokio::time::sleep(RETRY_PAUSE) => {}
                    }
                }
                buffered = true;
                continue;
            }
            read = conn.fill(), if !buffered && !lost => {
                match read {
                    Ok(0) | Err(_) => {
                        if !*stop.borrow() {
                            shared.disconnects.fetch_add(1, Ordering::Relaxed);
                        }
                        if plan.is_some() {
                            // A churner whose connection the server ended comes back at once, like a real client.
                            lost = true;
                            next_drop = Some(tokio::time::Instant::now());
                            continue;
                        }
                        return finish(&rec, outcome, churner, symbol_ids, seqs);
                    }
                    Ok(_) => {}
                }
            }
            () = std::future::ready(()), if buffered => buffered = false,
        }
        let measuring = shared.measuring.load(Ordering::Relaxed);
        let mut closed = false;
        loop {
            match conn.next_frame() {
                Ok(Some(Frame::Text(p))) => {
                    let text = conn.payload(p);
                    match classify(ctx.protocol, text) {
                        Event::Tick => {
                            batch.ticks += 1;
                            match tick_timestamp_micros(text) {
                                Some(ts) if measuring => {
                                    let l = (now_micros() - ts).max(0) as u64;
                                    batch.latencies.push(l);
                                    if !churner {
                                        steady.push(l);
                                    }
                                }
                                Some(_) => {}
                                None => batch.bad += 1,
                            }
                            match tick_symbol_seq(text).and_then(|(s, seq)| {
                                Some((symbols.iter().position(|x| x.as_bytes() == s)?, seq))
                            }) {
                                Some((k, seq)) => match seqs[k].record(seq) {
                                    SeqKind::Gap(n) => {
                                        rec.gaps.fetch_add(1, Ordering::Relaxed);
                                        rec.gap_items.fetch_add(n, Ordering::Relaxed);
                                    }
                                    SeqKind::Duplicate => {
                                        rec.duplicates.fetch_add(1, Ordering::Relaxed);
                                    }
                                    SeqKind::First | SeqKind::Next => {}
                                },
                                None => batch.bad += 1,
                            }
                            if let Some(r) = &mut replay {
                                if r.left > 0 {
                                    r.left -= 1;
                                } else {
                                    let mut slow =
                                        rec.slow.lock().unwrap_or_else(|p| p.into_inner());
                                    slow.first_live.saturating_record(micros(r.sent.elapsed()));
                                    replay = None;
                                }
                                if let Some(r) = &mut replay {
                                    if r.left == 0 && !r.caught_up {
                                        r.caught_up = true;
                                        let mut slow =
                                            rec.slow.lock().unwrap_or_else(|p| p.into_inner());
                                        slow.caught_up.saturating_record(micros(r.sent.elapsed()));
                                    }
                                }
                            }
                        }
                        Event::Error => {
                            shared.errors.fetch_add(1, Ordering::Relaxed);
                        }
                        Event::EioPing | Event::Other => {}
                    }
                }
                Ok(Some(Frame::Close)) => {
                    closed = true;
                    break;
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                    closed = true;
                    break;
                }
            }
        }
        outcome.window_ticks += batch.flush_into(shared, index, measuring);
        if !steady.is_empty() {
            let mut h = rec.steady[index % SHARDS]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for &l in &steady {
                h.saturating_record(l.clamp(1, MAX_LATENCY_US));
            }
            steady.clear();
        }
        let flushed = conn.flush().await;
        if closed || flushed.is_err() {
            if !*stop.borrow() {
                shared.disconnects.fetch_add(1, Ordering::Relaxed);
            }
            if plan.is_some() {
                lost = true;
                next_drop = Some(tokio::time::Instant::now());
                continue;
            }
            return finish(&rec, outcome, churner, symbol_ids, seqs);
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), client::close(&mut conn)).await;
    finish(&rec, outcome, churner, symbol_ids, seqs)
}

/// Hands the client's seq record in and returns its outcome.
fn finish(
    rec: &RecoveryShared,
    outcome: ClientOutcome,
    churner: bool,
    symbols: Vec<usize>,
    seqs: Vec<SymbolSeqs>,
) -> ClientOutcome {
    rec.clients
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(ClientSeqs {
            churner,
            symbols,
            seqs,
        });
    outcome
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_LATENCY_US)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_count_gaps_duplicates_and_the_window_exactly() {
        let mut s = SymbolSeqs::default();
        assert_eq!(s.record(10), SeqKind::First);
        assert_eq!(s.record(11), SeqKind::Next);
        assert_eq!(s.record(12), SeqKind::Next);
        assert_eq!(s.record(15), SeqKind::Gap(2));
        assert_eq!(s.record(15), SeqKind::Duplicate);
        assert_eq!(s.record(13), SeqKind::Duplicate);
        assert_eq!(s.record(16), SeqKind::Next);
        assert_eq!(s.runs, vec![(10, 12), (15, 16)]);
        // Window 11..=16: received 11,12,15,16 (4 of 6); 15 twice, 13 counted as a duplicate too.
        assert_eq!(s.in_range(11, 16), (4, 2));
        assert_eq!(s.in_range(10, 12), (3, 3));
        assert_eq!(s.in_range(20, 30), (0, 0));
    }

    #[test]
    fn churners_are_the_asked_share_spread_over_symbols() {
        let c = churners(1000, 0.1);
        assert_eq!(c.iter().filter(|&&x| x).count(), 100);
        // Clients i and i+10 share symbols (10 of 100 each): the churners must not all sit on one group.
        let groups: std::collections::HashSet<usize> =
            (0..1000).filter(|&i| c[i]).map(|i| i % 10).collect();
        assert!(groups.len() >= 8, "{groups:?}");
        assert!(churners(10, 0.0).iter().all(|&x| !x));
    }

    #[test]
    fn subscribed_reply_says_how_many_frames_come_before_live() {
        let symbols = vec!["A".to_owned(), "B".to_owned(), "C".to_owned()];
        let text = br#"{"event":"subscribed","id":1,"data":{"symbols":["A","B","C"],"channels":[],"pending":["ticks:C"],"epoch":"e1",
            "recovery":{"ticks:A":{"recovered":true,"replayed":4},"ticks:B":{"recovered":false,"reason":"trimmed"},"ticks:C":{"recovered":false,"reason":"no_history"}}}}"#;
        let r = parse_subscribed(text, &symbols).unwrap();
        assert_eq!(r.epoch.as_deref(), Some("e1"));
        // 4 replayed for A, a snapshot for B, nothing for C (pending).
        assert_eq!(r.pre_live, 5);
        assert_eq!((r.recovered, r.replayed), (1, 4));
        assert_eq!(r.not_recovered, vec!["trimmed", "no_history"]);
        let plain =
            br#"{"event":"subscribed","data":{"symbols":["A","B","C"],"pending":[],"epoch":"e1"}}"#;
        assert_eq!(parse_subscribed(plain, &symbols).unwrap().pre_live, 3);
    }

    #[test]
    fn finds_symbol_and_seq_and_builds_since() {
        let f = br#"{"event":"price_update","data":{"symbol":"BENCH0001","price":1.5,"timestamp":"2026-01-01T00:00:00Z","source":"loadgen","seq":1764950000000123}}"#;
        assert_eq!(
            tick_symbol_seq(f),
            Some((&b"BENCH0001"[..], 1_764_950_000_000_123))
        );
        let symbols = vec!["A".to_owned(), "B".to_owned()];
        let mut seqs = vec![SymbolSeqs::default(); 2];
        assert_eq!(
            subscribe_request(&symbols, &seqs, Some("e")),
            r#"{"event":"subscribe","data":{"symbols":["A","B"]}}"#
        );
        seqs[0].record(7);
        let req: Value =
            serde_json::from_str(&subscribe_request(&symbols, &seqs, Some("e"))).unwrap();
        assert_eq!(req["data"]["since"], serde_json::json!({"ticks:A": 7}));
        assert_eq!(req["data"]["epoch"], "e");
        assert_eq!(req["data"]["symbols"], serde_json::json!(["A", "B"]));
    }
}
