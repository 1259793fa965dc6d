//! What the clients measure, shared between thousands of client tasks.
//!
//! Latencies go into one of [`SHARDS`] HDR histograms chosen by client index,
//! each behind its own mutex and locked once per socket read (not per
//! message), so clients on different worker threads rarely meet. Counters
//! that change rarely (failures, disconnects) are plain atomics.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use memchr::memmem;

/// Histogram shards; more than worker threads, so two clients rarely share one at the same instant.
pub const SHARDS: usize = 64;
/// Highest latency tracked exactly (60 s, in µs); larger values are clamped to it.
pub const MAX_LATENCY_US: u64 = 60_000_000;
/// Significant digits of the histograms (0.1 % resolution).
const SIGFIGS: u8 = 3;

/// Per-shard tallies.
pub struct Shard {
    /// Latency (µs) of every tick received inside the measured window.
    pub hist: Histogram<u64>,
    /// Ticks received inside the measured window.
    pub delivered: u64,
    /// Ticks received at any time (warm-up included).
    pub delivered_total: u64,
    /// Ticks without a parsable `timestamp` (counted as errors).
    pub bad_ticks: u64,
}

/// Everything the clients report into.
pub struct Shared {
    /// True only during the measured window.
    pub measuring: AtomicBool,
    /// Latency histograms and delivery counts.
    pub shards: Vec<Mutex<Shard>>,
    /// Clients that never got to `subscribed` (TCP, upgrade or subscribe failed or timed out).
    pub connect_failures: AtomicU64,
    /// `error` events from the server and protocol errors.
    pub errors: AtomicU64,
    /// Connections that ended before the run asked them to.
    pub disconnects: AtomicU64,
    /// Clients that are subscribed and receiving.
    pub ready: AtomicU64,
    /// Clients that are ready or have failed; the run starts publishing when all are.
    pub settled: AtomicU64,
    /// Woken whenever `settled` grows.
    pub settled_notify: tokio::sync::Notify,
}

impl Shared {
    /// Empty tallies.
    pub fn new() -> anyhow::Result<Self> {
        let mut shards = Vec::with_capacity(SHARDS);
        for _ in 0..SHARDS {
            shards.push(Mutex::new(Shard {
                hist: new_histogram()?,
                delivered: 0,
                delivered_total: 0,
                bad_ticks: 0,
            }));
        }
        Ok(Self {
            measuring: AtomicBool::new(false),
            shards,
            connect_failures: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            ready: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            settled_notify: tokio::sync::Notify::new(),
        })
    }

    /// Records one client becoming ready (`ok`) or failing, and wakes the run.
    pub fn settle(&self, ok: bool) {
        if ok {
            self.ready.fetch_add(1, Ordering::Relaxed);
        } else {
            self.connect_failures.fetch_add(1, Ordering::Relaxed);
        }
        self.settled.fetch_add(1, Ordering::AcqRel);
        self.settled_notify.notify_waiters();
    }

    /// Merges every shard: (histogram, delivered in window, delivered in total, bad ticks).
    pub fn merged(&self) -> anyhow::Result<(Histogram<u64>, u64, u64, u64)> {
        let mut hist = new_histogram()?;
        let (mut window, mut total, mut bad) = (0, 0, 0);
        for shard in &self.shards {
            let s = shard.lock().unwrap_or_else(|p| p.into_inner());
            hist.add(&s.hist)?;
            window += s.delivered;
            total += s.delivered_total;
            bad += s.bad_ticks;
        }
        Ok((hist, window, total, bad))
    }
}

/// Everything a set of clients measured, in a form that merges exactly with another process's
/// (`run --shards`): counts add up, and the latency histogram travels as its bucket counts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    /// Clients that got to `subscribed`.
    pub connected: u64,
    /// Connected clients that received at least one tick inside the window.
    pub receiving: u64,
    /// Clients that never got to `subscribed`.
    pub connect_failures: u64,
    /// `error` events, protocol errors and ticks without a readable timestamp.
    pub errors: u64,
    /// Connections that ended before the run asked them to.
    pub disconnects: u64,
    /// Ticks received inside the window.
    pub delivered: u64,
    /// Ticks received at any time.
    pub delivered_total: u64,
    /// Per symbol (in publishing order), connected clients subscribed to it: what `expected` is built from.
    pub subs_per_symbol: Vec<u64>,
    /// Latency (µs) of every tick received inside the window.
    #[serde(with = "hist_buckets")]
    pub latency: Histogram<u64>,
}

impl Tally {
    /// Nothing measured yet, over `symbols` symbols: the start of a merge.
    pub fn empty(symbols: usize) -> anyhow::Result<Self> {
        Ok(Self {
            connected: 0,
            receiving: 0,
            connect_failures: 0,
            errors: 0,
            disconnects: 0,
            delivered: 0,
            delivered_total: 0,
            subs_per_symbol: vec![0; symbols],
            latency: new_histogram()?,
        })
    }

    /// Adds `other` (another process's clients over the same symbols) into this tally.
    pub fn merge(&mut self, other: &Tally) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.subs_per_symbol.len() == other.subs_per_symbol.len(),
            "cannot merge tallies over {} and {} symbols",
            self.subs_per_symbol.len(),
            other.subs_per_symbol.len()
        );
        self.connected += other.connected;
        self.receiving += other.receiving;
        self.connect_failures += other.connect_failures;
        self.errors += other.errors;
        self.disconnects += other.disconnects;
        self.delivered += other.delivered;
        self.delivered_total += other.delivered_total;
        for (mine, theirs) in self.subs_per_symbol.iter_mut().zip(&other.subs_per_symbol) {
            *mine += theirs;
        }
        self.latency.add(&other.latency)?;
        Ok(())
    }
}

/// A latency histogram as every part of the load generator builds it (same bounds, so any two merge).
pub fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, MAX_LATENCY_US, SIGFIGS)?)
}

/// A histogram as its non-empty buckets, `[[value, count], ...]`: each value is its bucket's highest
/// equivalent value, so recording it again lands in the same bucket and every percentile, the mean
/// and the max read back exactly as they were.
mod hist_buckets {
    use hdrhistogram::Histogram;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes the non-empty buckets.
    pub fn serialize<S: Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        let buckets: Vec<(u64, u64)> = h
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        buckets.serialize(s)
    }

    /// Records the buckets into a fresh histogram of the standard bounds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        use serde::de::Error as _;
        let buckets = Vec::<(u64, u64)>::deserialize(d)?;
        let mut h = super::new_histogram().map_err(D::Error::custom)?;
        for (value, count) in buckets {
            h.record_n(value, count)
                .map_err(|e| D::Error::custom(format!("bucket {value}×{count}: {e:?}")))?;
        }
        Ok(h)
    }
}

/// What one client saw in one socket read, recorded into a shard under one lock.
#[derive(Default)]
pub struct Batch {
    /// Latencies (µs) of ticks in the window.
    pub latencies: Vec<u64>,
    /// Ticks received (any time).
    pub ticks: u64,
    /// Ticks without a parsable timestamp.
    pub bad: u64,
}

impl Batch {
    /// Adds the batch to `shard` and empties it; returns how many ticks counted for the window.
    pub fn flush_into(&mut self, shared: &Shared, shard: usize, measuring: bool) -> u64 {
        if self.ticks == 0 && self.bad == 0 {
            return 0;
        }
        let in_window = if measuring { self.ticks } else { 0 };
        {
            let mut s = shared.shards[shard % SHARDS]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for &l in &self.latencies {
                s.hist.saturating_record(l.clamp(1, MAX_LATENCY_US));
            }
            s.delivered += in_window;
            s.delivered_total += self.ticks;
            s.bad_ticks += self.bad;
        }
        self.latencies.clear();
        self.ticks = 0;
        self.bad = 0;
        in_window
    }
}

/// Microseconds since the Unix epoch now; the receive time of a message.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Finds the tick's `"timestamp":"…"` in a frame without parsing the JSON, and returns it in µs since the epoch.
pub fn tick_timestamp_micros(frame: &[u8]) -> Option<i64> {
    // A literal search is a fraction of the cost of parsing the whole frame.
    const KEY: &[u8] = br#""timestamp":""#;
    let at = memmem::find(frame, KEY)? + KEY.len();
    let rest = &frame[at..];
    let end = memchr::memchr(b'"', rest)?;
    let raw = &rest[..end];
    parse_rfc3339_micros(raw).or_else(|| {
        let s = std::str::from_utf8(raw).ok()?;
        tickstream_model::time::parse(s)
            .ok()
            .map(|t| t.timestamp_micros())
    })
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (the contract's form) into µs since the epoch; `None` for anything else.
pub fn parse_rfc3339_micros(s: &[u8]) -> Option<i64> {
    fn num(s: &[u8]) -> Option<i64> {
        s.iter().try_fold(0i64, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
        })
    }
    if s.len() < 20
        || s[4] != b'-'
        || s[7] != b'-'
        || !matches!(s[10], b'T' | b't')
        || s[13] != b':'
        || s[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(&s[0..4])?, num(&s[5..7])?, num(&s[8..10])?);
    let (hour, min, sec) = (num(&s[11..13])?, num(&s[14..16])?, num(&s[17..19])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if s[i] == b'.' {
        i += 1;
        let mut digits = 0;
        while i < s.len() && s[i].is_ascii_digit() {
            if digits < 6 {
                micros = micros * 10 + i64::from(s[i] - b'0');
                digits += 1;
            }
            i += 1;
        }
        if digits == 0 {
            return None;
        }
        for _ in digits..6 {
            micros *= 10;
        }
    }
    if i + 1 != s.len() || !matches!(s[i], b'Z' | b'z') {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3_600 + min * 60 + sec) * 1_000_000 + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_parse_agrees_with_chrono() {
        for raw in [
            "2025-11-01T10:30:00.123Z",
            "2025-11-01T10:30:00Z",
            "2022-10-19T23:28:22.061769Z",
            "2024-02-29T23:59:59.999999999Z",
            "1970-01-01T00:00:00.000Z",
            "2000-03-01T00:00:00.5Z",
            "2100-12-31T12:00:00.010Z",
        ] {
            let want = tickstream_model::time::parse(raw)
                .unwrap()
                .timestamp_micros();
            assert_eq!(parse_rfc3339_micros(raw.as_bytes()), Some(want), "{raw}");
        }
    }

    #[test]
    fn fast_parse_refuses_other_forms() {
        for raw in [
            "2025-11-01 10:30:00",
            "2025-11-01T10:30:00+02:00",
            "2025-11-01T10:30:00.Z",
            "2025-13-01T10:30:00Z",
            "yesterday at noon, roughly",
            "",
        ] {
            assert_eq!(parse_rfc3339_micros(raw.as_bytes()), None, "{raw}");
        }
    }

    #[test]
    fn finds_timestamp_in_both_protocols() {
        let native = br#"{"event":"price_update","data":{"symbol":"A","price":1.0,"timestamp":"2025-11-01T10:30:00.123Z","source":"sim","seq":1}}"#;
        let sio = br#"42["price_update",{"symbol":"A","price":1.0,"timestamp":"2025-11-01T12:30:00.123+02:00","seq":1}]"#;
        let want = tickstream_model::time::parse("2025-11-01T10:30:00.123Z")
            .unwrap()
            .timestamp_micros();
        assert_eq!(tick_timestamp_micros(native), Some(want));
        // Offsets other than Z fall back to the full parser.
        assert_eq!(tick_timestamp_micros(sio), Some(want));
        assert_eq!(tick_timestamp_micros(br#"{"event":"price_update"}"#), None);
    }

    /// A tally of `connected` clients with these latencies, as one shard would send it.
    fn tally(connected: u64, subs: [u64; 3], latencies: &[u64]) -> Tally {
        let mut t = Tally::empty(3).unwrap();
        t.connected = connected;
        t.receiving = connected - 1;
        t.connect_failures = 2;
        t.errors = 3;
        t.disconnects = 1;
        t.delivered = latencies.len() as u64;
        t.delivered_total = latencies.len() as u64 + 7;
        t.subs_per_symbol = subs.to_vec();
        for &l in latencies {
            t.latency.record(l).unwrap();
        }
        t
    }

    #[test]
    fn tallies_merge_exactly_across_a_json_hop() {
        // Skewed shards: one fast, one slow; averaging their percentiles would be wrong.
        let fast: Vec<u64> = (1..=9_000).map(|i| 100 + i % 400).collect();
        let slow: Vec<u64> = (1..=1_000)
            .map(|i| 20_000 + i * 37)
            .chain([MAX_LATENCY_US])
            .collect();
        let shards = [tally(10, [4, 3, 3], &fast), tally(5, [1, 2, 2], &slow)];
        let mut merged = Tally::empty(3).unwrap();
        for t in &shards {
            // What the parent reads is what the child wrote.
            let back: Tally = serde_json::from_str(&serde_json::to_string(t).unwrap()).unwrap();
            merged.merge(&back).unwrap();
        }
        assert_eq!(merged.connected, 15);
        assert_eq!(merged.receiving, 13);
        assert_eq!(merged.connect_failures, 4);
        assert_eq!(merged.errors, 6);
        assert_eq!(merged.disconnects, 2);
        assert_eq!(merged.delivered, 10_001);
        assert_eq!(merged.delivered_total, 10_015);
        assert_eq!(merged.subs_per_symbol, [5, 5, 5]);

        // The same latencies recorded in one histogram: identical figures.
        let mut one = new_histogram().unwrap();
        for &l in fast.iter().chain(&slow) {
            one.record(l).unwrap();
        }
        let h = &merged.latency;
        assert_eq!(h.len(), one.len());
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(h.value_at_quantile(q), one.value_at_quantile(q), "q={q}");
        }
        assert_eq!(h.max(), one.max());
        assert_eq!(h.min(), one.min());
        assert!((h.mean() - one.mean()).abs() < 1e-9);
        // p99 lands in the slow shard's range, far from the mean of the two shards' p99s.
        assert!(h.value_at_quantile(0.99) > 20_000);

        let mut wrong = Tally::empty(2).unwrap();
        assert!(wrong.merge(&shards[0]).is_err());
    }

    #[test]
    fn batches_count_only_inside_the_window() {
        let shared = Shared::new().unwrap();
        let mut b = Batch {
            ticks: 3,
            ..Batch::default()
        };
        assert_eq!(b.flush_into(&shared, 1, false), 0);
        b.ticks = 2;
        b.latencies.extend([1_000, 2_000]);
        assert_eq!(b.flush_into(&shared, 65, true), 2);
        let (hist, window, total, bad) = shared.merged().unwrap();
        assert_eq!((window, total, bad), (2, 5, 0));
        assert_eq!(hist.len(), 2);
        assert!(b.latencies.is_empty());
    }
}
