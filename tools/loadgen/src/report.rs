//! The result of one run (JSON and a human summary), and the comparison table of many.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::recovery::RecoveryReport;

/// Latency percentiles in milliseconds (receive time − tick `timestamp`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Ticks timed (inside the window).
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest seen.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Latency {
    /// The percentiles of a histogram of µs.
    pub fn of(hist: &hdrhistogram::Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: hist.len(),
            p50_ms: ms(hist.value_at_quantile(0.50)),
            p90_ms: ms(hist.value_at_quantile(0.90)),
            p99_ms: ms(hist.value_at_quantile(0.99)),
            p999_ms: ms(hist.value_at_quantile(0.999)),
            max_ms: ms(hist.max()),
            mean_ms: hist.mean() / 1000.0,
        }
    }
}

/// CPU and memory of one watched process during the window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProcessStats {
    /// What it is (`server`, `redis`, `loadgen`).
    pub name: String,
    /// Its pid (the first, when several are summed).
    pub pid: u32,
    /// Every pid summed under this name (`--watch server=PID1,PID2`, shard processes); absent for one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pids: Vec<u32>,
    /// CPU over the window, percent of one core.
    pub cpu_percent: f64,
    /// RSS before the clients connected, KiB.
    pub rss_before_kib: u64,
    /// Largest RSS seen during the window, KiB.
    pub rss_max_kib: u64,
    /// (rss_max − rss_before) / connected clients, bytes: memory per connection.
    pub rss_per_connection_bytes: f64,
    /// RSS when the window started, KiB (with `rss_end_kib`: whether memory stayed flat).
    #[serde(default)]
    pub rss_start_kib: u64,
    /// RSS when the window ended, KiB.
    #[serde(default)]
    pub rss_end_kib: u64,
    /// RSS every 500 ms through the window, KiB, to see growth that the max alone hides.
    #[serde(default)]
    pub rss_samples_kib: Vec<u64>,
    /// Open file descriptors when the window started (after warm-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fds_start: Option<u64>,
    /// Open file descriptors when the window ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fds_end: Option<u64>,
}

/// How a stalled client's connection ended, as it found out when it finally read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StalledEnd {
    /// The server sent a close frame (for a slow consumer: 1008 `slow consumer`).
    Closed,
    /// The TCP connection ended without a close frame.
    Eof,
    /// The socket failed (reset) or the stream was not valid WebSocket.
    Reset,
    /// Still open when the run ended.
    #[default]
    Open,
    /// It never got to `subscribed`.
    Failed,
}

/// One stalled client (`--stalled`): subscribed to every symbol, never read until the end.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StalledClient {
    /// It got to `subscribed`.
    pub subscribed: bool,
    /// How its connection ended.
    pub ended: StalledEnd,
    /// The close frame's code, if the server sent one.
    pub close_code: Option<u16>,
    /// The close frame's reason, if the server sent one.
    pub close_reason: Option<String>,
    /// Ticks found in its socket when it read at the end.
    pub ticks_drained: u64,
    /// Bytes read from the socket while draining (besides what the subscribe reply left buffered).
    pub bytes_drained: u64,
    /// Seconds from `subscribed` to the end of the run, during which it read nothing.
    pub stalled_secs: f64,
    /// What went wrong, for `failed` and `reset` (or why `open` stopped draining).
    pub error: Option<String>,
}

impl StalledClient {
    /// A client that could not subscribe, with the reason.
    pub fn failed(error: String) -> Self {
        Self {
            ended: StalledEnd::Failed,
            error: Some(error),
            ..Self::default()
        }
    }

    /// `1008 "slow consumer"`, `eof`, `open`, ...: one cell of the table.
    pub fn outcome(&self) -> String {
        match (self.ended, self.close_code) {
            (StalledEnd::Closed, Some(code)) => format!(
                "{code} \"{}\"",
                self.close_reason.as_deref().unwrap_or_default()
            ),
            (end, _) => format!("{end:?}").to_lowercase(),
        }
    }
}

/// Everything one `loadgen run` measured; the JSON it writes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Scenario name given on the command line (`fanout`, `connections`, ...).
    pub scenario: String,
    /// Which server was measured (`gateway`, `reference`, ...).
    pub server: String,
    /// The URL the clients connected to.
    pub url: String,
    /// `native` or `socketio`.
    pub protocol: String,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// Clients asked for.
    pub clients: u64,
    /// Clients that subscribed successfully.
    pub connected: u64,
    /// Clients that failed to connect or subscribe.
    pub connect_failures: u64,
    /// Server `error` events, protocol errors and ticks without a readable timestamp.
    pub errors: u64,
    /// Connections lost before the end of the run.
    pub disconnects: u64,
    /// Connected clients that received at least one tick inside the window.
    pub clients_receiving: u64,
    /// Symbols published.
    pub symbols: u64,
    /// Symbols per client.
    pub symbols_per_client: u64,
    /// Asked publish rate, ticks/s over all symbols (0: not publishing).
    pub rate: u64,
    /// Warm-up before the window, seconds.
    pub warmup_secs: f64,
    /// Measured window, seconds (actual).
    pub window_secs: f64,
    /// Ticks published inside the window.
    pub published: u64,
    /// Published ticks per second inside the window.
    pub published_per_sec: f64,
    /// Deliveries the window's ticks should cause: Σ per symbol published × subscribed clients.
    pub expected: u64,
    /// Ticks received by clients inside the window.
    pub delivered: u64,
    /// Deliveries per second.
    pub delivered_per_sec: f64,
    /// delivered / expected (1.0 = nothing lost or late).
    pub delivered_ratio: f64,
    /// Latency of the delivered ticks.
    pub latency: Latency,
    /// Ticks received overall (warm-up included).
    pub delivered_total: u64,
    /// Failed publish pipelines.
    pub publish_errors: u64,
    /// Watched processes (the server, Redis) and the load generator itself.
    pub processes: Vec<ProcessStats>,
    /// CPU of the whole machine during the window, percent of one core (200 = both cores of 2).
    #[serde(default)]
    pub machine_cpu_percent: f64,
    /// CPU taken by processes not watched (compilers, other tests): a busy neighbour makes the figures pessimistic.
    #[serde(default)]
    pub other_cpu_percent: f64,
    /// Stalled clients (`--stalled`), kept out of every other figure: they are the slow consumers under test.
    #[serde(default)]
    pub stalled: Vec<StalledClient>,
    /// Seq tracking and churn (`--track-seq`, `--churn-fraction`): exactly-once and recovery figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryReport>,
    /// Transient clients (`--transient-rate`): connected, subscribed and left during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transient: Option<crate::transient::TransientReport>,
}

impl Report {
    /// The process named `name`, if watched.
    pub fn process(&self, name: &str) -> Option<&ProcessStats> {
        self.processes.iter().find(|p| p.name == name)
    }

    /// A few lines for a person at a terminal.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} / {} ({}): {} clients × {} of {} symbols, {} ticks/s, {:.1} s window after {:.1} s warm-up",
            self.scenario,
            self.server,
            self.protocol,
            self.clients,
            self.symbols_per_client,
            self.symbols,
            self.rate,
            self.window_secs,
            self.warmup_secs
        );
        let _ = writeln!(
            s,
            "  connected {} (failures {}), receiving {}, errors {}, disconnects {}",
            self.connected,
            self.connect_failures,
            self.clients_receiving,
            self.errors,
            self.disconnects
        );
        let _ = writeln!(
            s,
            "  published {} ({:.0}/s), delivered {} of {} expected ({:.2} %), {:.0} msg/s",
            self.published,
            self.published_per_sec,
            self.delivered,
            self.expected,
            self.delivered_ratio * 100.0,
            self.delivered_per_sec
        );
        let l = &self.latency;
        let _ = writeln!(
            s,
            "  latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  (n={})",
            l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.count
        );
        let _ = writeln!(
            s,
            "  machine CPU {:.0} % (other processes {:.0} %)",
            self.machine_cpu_percent, self.other_cpu_percent
        );
        for p in &self.processes {
            let pids = if p.pids.len() > 1 {
                let list: Vec<String> = p.pids.iter().map(u32::to_string).collect();
                format!("{} processes, pids {}", p.pids.len(), list.join(","))
            } else {
                format!("pid {}", p.pid)
            };
            let _ = writeln!(
                s,
                "  {} ({}): CPU {:.0} %, RSS {:.1} MiB (before {:.1} MiB, window start {:.1}, end {:.1}; {:.0} B/connection)",
                p.name,
                pids,
                p.cpu_percent,
                p.rss_max_kib as f64 / 1024.0,
                p.rss_before_kib as f64 / 1024.0,
                p.rss_start_kib as f64 / 1024.0,
                p.rss_end_kib as f64 / 1024.0,
                p.rss_per_connection_bytes
            );
        }
        if let Some(t) = &self.transient {
            let _ = writeln!(
                s,
                "  transient clients: {}/s, started {}, completed {}, failed {}, skipped {}",
                t.rate, t.started, t.completed, t.failed, t.skipped
            );
        }
        for p in self.processes.iter().filter(|p| p.fds_start.is_some()) {
            let _ = writeln!(
                s,
                "  {} open files: window start {}, end {}",
                p.name,
                p.fds_start.unwrap_or(0),
                p.fds_end.unwrap_or(0)
            );
        }
        if let Some(x) = &self.recovery {
            let _ = writeln!(
                s,
                "  seqs: exactly once {:.3} % of {} (missing {}, duplicates {}{}); whole run: {} gaps ({} items), {} duplicates",
                x.exactly_once_ratio * 100.0,
                x.window_expected,
                x.window_missing,
                x.window_duplicates,
                if x.churning_clients > 0 {
                    format!("; churners {:.3} %", x.churners_exactly_once_ratio * 100.0)
                } else {
                    String::new()
                },
                x.gaps,
                x.gap_items,
                x.duplicates
            );
            let _ = writeln!(
                s,
                "  churn: {} of {} clients, {} reconnects ({} failed), channels recovered {} / not {} {:?}, {} replayed",
                x.churning_clients,
                x.churning_clients + x.steady_clients,
                x.reconnects,
                x.reconnect_failures,
                x.channels_recovered,
                x.channels_not_recovered,
                x.not_recovered_reasons,
                x.replayed
            );
            let _ = writeln!(
                s,
                "  reconnect ms p50/p99: reply {:.2}/{:.2}, caught up {:.2}/{:.2}, first live {:.2}/{:.2}; steady clients' latency p50 {:.2} p99 {:.2} p99.9 {:.2}",
                x.reply.p50_ms,
                x.reply.p99_ms,
                x.caught_up.p50_ms,
                x.caught_up.p99_ms,
                x.first_live.p50_ms,
                x.first_live.p99_ms,
                x.steady_latency.p50_ms,
                x.steady_latency.p99_ms,
                x.steady_latency.p999_ms
            );
        }
        for (i, c) in self.stalled.iter().enumerate() {
            let _ = writeln!(
                s,
                "  stalled client {i}: {} after {:.1} s without reading ({} ticks, {} bytes drained){}",
                c.outcome(),
                c.stalled_secs,
                c.ticks_drained,
                c.bytes_drained,
                c.error
                    .as_deref()
                    .map(|e| format!("; {e}"))
                    .unwrap_or_default()
            );
        }
        s
    }
}

/// Whether a run counts as sustained: at least this share of the expected deliveries arrived.
pub const SUSTAINED: f64 = 0.99;

/// Builds the Markdown comparison of many runs: one row per run, then for each candidate its ratios to the reference.
pub fn markdown(
    reports: &[Report],
    candidates: &[String],
    reference: &str,
    machine: &str,
) -> String {
    markdown_with_baseline(reports, candidates, reference, BASELINE, machine)
}

/// The server name of the naive fan-out baseline (`bench/baseline/naive-fanout`) in bench runs.
pub const BASELINE: &str = "baseline";

/// [`markdown`], naming the baseline server: each candidate is also set against `baseline` where it ran.
pub fn markdown_with_baseline(
    reports: &[Report],
    candidates: &[String],
    reference: &str,
    baseline: &str,
    machine: &str,
) -> String {
    let mut s = table(reports, machine);
    let has_reference = reports.iter().any(|r| r.server == reference);
    for candidate in candidates.iter().filter(|c| *c != baseline) {
        if has_reference || !reports.iter().any(|r| r.server == baseline) {
            s.push_str(&comparison(reports, candidate, reference));
        }
    }
    for candidate in candidates.iter().filter(|c| *c != baseline) {
        s.push_str(&baseline_comparison(reports, candidate, baseline));
    }
    s.push_str(&slow_consumer(reports));
    s.push_str(&recovery_table(reports));
    s.push_str(&soak_table(reports));
    s
}

/// Largest change of the server's RSS or open files from window start to end the soak accepts.
pub const SOAK_DRIFT: f64 = 0.10;
/// Smallest delivered ratio of the steady clients the soak accepts.
pub const SOAK_DELIVERED: f64 = 0.999;

/// Runs with transient clients: the server's RSS and open files after warm-up and at the end, the
/// steady clients' deliveries, and the transient clients' counts.
fn soak_table(reports: &[Report]) -> String {
    let mut s = String::new();
    let runs: Vec<&Report> = reports.iter().filter(|r| r.transient.is_some()).collect();
    if runs.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\n**Churn soak**: steady clients beside transient ones that connect, subscribe and leave. \
         Server RSS and open files after warm-up (window start) and at the end; targets: each within ±{:.0} %, \
         steady clients' delivered ≥ {:.1} %.\n",
        SOAK_DRIFT * 100.0,
        SOAK_DELIVERED * 100.0
    );
    let _ = writeln!(
        s,
        "| server | steady clients | ticks/s | window s | transient/s | transient started / completed / failed | server RSS MiB start → end | RSS change | server open files start → end | files change | steady delivered % | steady p99 ms | verdict |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---|---|---:|---|---:|---:|---:|---|"
    );
    for r in runs {
        let Some(t) = &r.transient else { continue };
        let server = r.process("server");
        let change = |a: f64, b: f64| if a > 0.0 { Some((b - a) / a) } else { None };
        let rss = server.and_then(|p| change(p.rss_start_kib as f64, p.rss_end_kib as f64));
        let fds = server.and_then(|p| match (p.fds_start, p.fds_end) {
            (Some(a), Some(b)) => change(a as f64, b as f64),
            _ => None,
        });
        let pct = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{:+.1} %", v * 100.0));
        let ok = rss.is_some_and(|v| v.abs() <= SOAK_DRIFT)
            && fds.is_some_and(|v| v.abs() <= SOAK_DRIFT)
            && r.delivered_ratio >= SOAK_DELIVERED;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0} | {} | {} / {} / {} | {} | {} | {} | {} | {:.3} | {:.2} | {} |",
            r.server,
            r.connected,
            r.rate,
            r.window_secs,
            t.rate,
            t.started,
            t.completed,
            t.failed,
            server.map_or("–".to_owned(), |p| format!(
                "{:.1} → {:.1}",
                p.rss_start_kib as f64 / 1024.0,
                p.rss_end_kib as f64 / 1024.0
            )),
            pct(rss),
            server.map_or("–".to_owned(), |p| format!(
                "{} → {}",
                p.fds_start.map_or("–".to_owned(), |v| v.to_string()),
                p.fds_end.map_or("–".to_owned(), |v| v.to_string())
            )),
            pct(fds),
            r.delivered_ratio * 100.0,
            r.latency.p99_ms,
            if ok { "ok" } else { "off target" }
        );
    }
    s
}

/// Largest ratio of the steady clients' p99 with churn to without that the recovery scenario accepts.
pub const RECOVERY_P99_RATIO: f64 = 1.20;

/// Runs with seq tracking (`recovery`): exactly-once and reconnect figures, each churn run beside its
/// twin without churn (same scenario, server, rate and clients) with the steady clients' p99 ratio.
fn recovery_table(reports: &[Report]) -> String {
    let mut s = String::new();
    let tracked: Vec<(&Report, &RecoveryReport)> = reports
        .iter()
        .filter_map(|r| r.recovery.as_ref().map(|x| (r, x)))
        .collect();
    if tracked.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\n**Recovery** (native protocol): churners drop their TCP connection every period and reconnect with `since` + `epoch`. \
         Exactly-once = Σ over clients and their symbols of the seqs published in the window that the client received exactly once \
         (no gap, no duplicate; a churner counts as one client throughout) ÷ Σ of the seqs published in the window. \
         Replay latency = from the reconnect's subscribe sent to the last replayed frame received (the `subscribed` reply when nothing was replayed): \
         caught up. Subscribe → first live adds the wait for the next tick of any of the client's symbols (the publisher goes round the symbols, \
         so up to one round, symbols ÷ ticks/s). \
         Steady p99 = the clients that never churned. Targets: steady p99 with churn ≤ {RECOVERY_P99_RATIO:.2}× without, exactly-once 100 %.\n"
    );
    let _ = writeln!(
        s,
        "| server | clients (churning) | ticks/s | churn | reconnects (failed) | recovered:false | replayed | exactly-once % | missing | duplicates | replay: subscribe → replay end p50 / p99 ms | subscribe → first live p50 / p99 ms | steady p99 ms | steady p99 ms without churn | steady p99 ratio |"
    );
    let _ = writeln!(
        s,
        "|---|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (r, x) in &tracked {
        let twin = tracked.iter().find(|(b, y)| {
            y.churn_fraction == 0.0
                && b.scenario == r.scenario
                && b.server == r.server
                && b.rate == r.rate
                && b.clients == r.clients
        });
        let churn = if x.churn_fraction > 0.0 {
            format!(
                "{:.0} % every {} s{}",
                x.churn_fraction * 100.0,
                x.churn_every_secs,
                if x.churn_offline_secs > 0.0 {
                    format!(", {} s away", x.churn_offline_secs)
                } else {
                    String::new()
                }
            )
        } else {
            "none".to_owned()
        };
        let reasons = if x.not_recovered_reasons.is_empty() {
            format!("{}", x.channels_not_recovered)
        } else {
            let list: Vec<String> = x
                .not_recovered_reasons
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            format!("{} ({})", x.channels_not_recovered, list.join(", "))
        };
        let (twin_p99, ratio_cell) = match twin {
            Some((_, y)) if x.churn_fraction > 0.0 => (
                format!("{:.2}", y.steady_latency.p99_ms),
                if y.steady_latency.p99_ms > 0.0 {
                    format!("{:.2}", x.steady_latency.p99_ms / y.steady_latency.p99_ms)
                } else {
                    "–".to_owned()
                },
            ),
            _ => ("–".to_owned(), "–".to_owned()),
        };
        let timing = |t: &crate::recovery::Timing| {
            if t.count > 0 {
                format!("{:.2} / {:.2}", t.p50_ms, t.p99_ms)
            } else {
                "–".to_owned()
            }
        };
        let _ = writeln!(
            s,
            "| {} | {} ({}) | {} | {} | {} ({}) | {} | {} | {:.3} | {} | {} | {} | {} | {:.2} | {} | {} |",
            r.server,
            r.connected,
            x.churning_clients,
            r.rate,
            churn,
            x.reconnects,
            x.reconnect_failures,
            reasons,
            x.replayed,
            x.exactly_once_ratio * 100.0,
            x.window_missing,
            x.window_duplicates,
            timing(&x.caught_up),
            timing(&x.first_live),
            x.steady_latency.p99_ms,
            twin_p99,
            ratio_cell
        );
    }
    s
}

/// The scenario cell: the name, and how many stalled clients ran beside the measured ones.
fn scenario_label(r: &Report) -> String {
    match r.stalled.len() {
        0 => r.scenario.clone(),
        n => format!("{} +{n} stalled", r.scenario),
    }
}

/// Server CPU-seconds over the window per delivered message, µs (`None` without CPU or deliveries).
pub fn cpu_us_per_message(r: &Report) -> Option<f64> {
    let cpu = r.process("server")?.cpu_percent;
    if r.delivered == 0 || cpu <= 0.0 {
        return None;
    }
    Some(cpu / 100.0 * r.window_secs / r.delivered as f64 * 1e6)
}

/// Per scenario and load, `candidate` beside `baseline`: CPU per delivered message (and its ratio),
/// delivered %, p50 / p99 / p99.9.
fn baseline_comparison(reports: &[Report], candidate: &str, baseline: &str) -> String {
    let mut s = String::new();
    let runs = |name: &str| -> Vec<&Report> {
        reports
            .iter()
            .filter(|r| r.server == name && r.stalled.is_empty() && r.recovery.is_none())
            .collect()
    };
    let base = runs(baseline);
    let pairs: Vec<(&Report, &Report)> = runs(candidate)
        .into_iter()
        .filter_map(|c| {
            base.iter()
                .find(|b| b.scenario == c.scenario && b.rate == c.rate && b.clients == c.clients)
                .map(|b| (c, *b))
        })
        .collect();
    if pairs.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\n**{candidate} vs {baseline}** (same run; {baseline} = the naive tokio-tungstenite fan-out, `bench/baseline/naive-fanout`, native protocol). \
         CPU per message = server CPU-seconds over the window ÷ messages delivered in it; ratio = {candidate} ÷ {baseline} (below 1: {candidate} spends less).\n"
    );
    let _ = writeln!(
        s,
        "| scenario | ticks/s | CPU µs/msg {candidate} | CPU µs/msg {baseline} | CPU/msg ratio | delivered % {candidate} / {baseline} | p50 ms {candidate} / {baseline} | p99 ms {candidate} / {baseline} | p99.9 ms {candidate} / {baseline} |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---|---|---|---|");
    let us = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.3}"));
    for (c, b) in pairs {
        let (cc, bc) = (cpu_us_per_message(c), cpu_us_per_message(b));
        let ratio = match (cc, bc) {
            (Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} |",
            c.scenario,
            c.rate,
            us(cc),
            us(bc),
            ratio,
            c.delivered_ratio * 100.0,
            b.delivered_ratio * 100.0,
            c.latency.p50_ms,
            b.latency.p50_ms,
            c.latency.p99_ms,
            b.latency.p99_ms,
            c.latency.p999_ms,
            b.latency.p999_ms
        );
    }
    s
}

/// Largest p99 ratio (with stalled clients / without) that issue 7 accepts.
pub const SLOW_CONSUMER_P99_RATIO: f64 = 1.20;

/// Each run with stalled clients beside its twin without: p99 ratio, deliveries, server RSS, how the stalled clients ended.
fn slow_consumer(reports: &[Report]) -> String {
    let mut s = String::new();
    let with: Vec<&Report> = reports.iter().filter(|r| !r.stalled.is_empty()).collect();
    if with.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\n**Slow consumer**: the same load without and with stalled clients (subscribed to every symbol, never reading); \
         target p99 ratio ≤ {SLOW_CONSUMER_P99_RATIO:.2}, server RSS flat, stalled clients closed with 1008 \"slow consumer\".\n"
    );
    let _ = writeln!(
        s,
        "| server | clients | ticks/s | p99 ms without | p99 ms with | p99 ratio | delivered % without | delivered % with | server RSS MiB with: start / end / max | server RSS max MiB without | stalled clients |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|");
    let mib = |kib: u64| kib as f64 / 1024.0;
    for w in with {
        let base = reports.iter().find(|r| {
            r.stalled.is_empty()
                && r.scenario == w.scenario
                && r.server == w.server
                && r.rate == w.rate
                && r.clients == w.clients
        });
        let server = w.process("server");
        let outcomes: Vec<String> = w.stalled.iter().map(StalledClient::outcome).collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.2} | {} | {} | {:.2} | {} | {} | {} |",
            w.server,
            w.connected,
            w.rate,
            base.map_or("–".to_owned(), |b| format!("{:.2}", b.latency.p99_ms)),
            w.latency.p99_ms,
            base.map_or("–".to_owned(), |b| if b.latency.p99_ms > 0.0 {
                format!("{:.2}", w.latency.p99_ms / b.latency.p99_ms)
            } else {
                "–".to_owned()
            }),
            base.map_or("–".to_owned(), |b| format!(
                "{:.2}",
                b.delivered_ratio * 100.0
            )),
            w.delivered_ratio * 100.0,
            server.map_or("–".to_owned(), |p| format!(
                "{:.1} / {:.1} / {:.1}",
                mib(p.rss_start_kib),
                mib(p.rss_end_kib),
                mib(p.rss_max_kib)
            )),
            base.and_then(|b| b.process("server"))
                .map_or("–".to_owned(), |p| format!("{:.1}", mib(p.rss_max_kib))),
            outcomes.join(", ")
        );
    }
    s
}

/// One row per run.
fn table(reports: &[Report], machine: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Machine: {machine}. Load generator, Redis and server share it.\n"
    );
    let _ = writeln!(
        s,
        "| scenario | server | clients | ticks/s | delivered/s | delivered % | p50 ms | p99 ms | p99.9 ms | max ms | server CPU % | server RSS MiB | RSS/conn | loadgen CPU % | other CPU % | conn fail | errors |"
    );
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in reports {
        let server = r.process("server");
        let loadgen = r.process("loadgen");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} | {} | {} | {:.0} | {} | {} |",
            scenario_label(r),
            r.server,
            r.connected,
            r.rate,
            r.delivered_per_sec,
            r.delivered_ratio * 100.0,
            r.latency.p50_ms,
            r.latency.p99_ms,
            r.latency.p999_ms,
            r.latency.max_ms,
            server.map_or("–".to_owned(), |p| format!("{:.0}", p.cpu_percent)),
            server.map_or("–".to_owned(), |p| format!("{:.1}", p.rss_max_kib as f64 / 1024.0)),
            server.map_or("–".to_owned(), |p| format!("{:.0} B", p.rss_per_connection_bytes)),
            loadgen.map_or("–".to_owned(), |p| format!("{:.0}", p.cpu_percent)),
            r.other_cpu_percent,
            r.connect_failures,
            r.errors
        );
    }

    s
}

/// Per scenario and load, `candidate` against `reference`, and the highest sustained rate of each.
fn comparison(reports: &[Report], candidate: &str, reference: &str) -> String {
    let mut s = String::new();
    let same_load = |c: &Report, r: &Report| {
        r.stalled.is_empty()
            && r.scenario == c.scenario
            && r.rate == c.rate
            && r.clients == c.clients
    };
    fn runs<'a>(reports: &'a [Report], name: &'a str) -> impl Iterator<Item = &'a Report> {
        reports
            .iter()
            .filter(move |r| r.server == name && r.stalled.is_empty())
    }
    // A candidate with no run at a load the reference also ran (e.g. `gateway×3` at 50,000 clients
    // beside a reference capped at the open-file limit) has nothing to be compared with.
    if runs(reports, reference).next().is_some()
        && !runs(reports, candidate).any(|c| runs(reports, reference).any(|r| same_load(c, r)))
    {
        let _ = writeln!(
            s,
            "\n**{candidate} vs {reference}**: no run of {reference} at the same load (scenario, ticks/s, clients); not compared.\n"
        );
        return s;
    }
    let _ = writeln!(s, "\n**{candidate} vs {reference}** (same run):\n");
    let _ = writeln!(
        s,
        "| scenario | ticks/s | delivered/s ratio | p99 ratio ({reference}/{candidate}) | CPU ratio ({candidate}/{reference}) |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for c in runs(reports, candidate) {
        let Some(r) = runs(reports, reference).find(|r| same_load(c, r)) else {
            continue;
        };
        let cpu = |x: &Report| x.process("server").map(|p| p.cpu_percent).unwrap_or(0.0);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            c.scenario,
            c.rate,
            ratio(c.delivered_per_sec, r.delivered_per_sec),
            ratio(r.latency.p99_ms, c.latency.p99_ms),
            ratio(cpu(c), cpu(r)),
        );
    }
    let best = |name: &str| {
        reports
            .iter()
            .filter(|r| {
                r.server == name
                    && r.stalled.is_empty()
                    && r.delivered_ratio >= SUSTAINED
                    && r.expected > 0
            })
            .map(|r| r.delivered_per_sec)
            .fold(0.0f64, f64::max)
    };
    let (bc, br) = (best(candidate), best(reference));
    let _ = writeln!(
        s,
        "\nHighest sustained deliveries/s (≥ {:.0} % delivered): {candidate} {bc:.0}, {reference} {br:.0}, ratio {}.",
        SUSTAINED * 100.0,
        ratio(bc, br)
    );
    s
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a > 0.0 {
        format!("{:.1}×", a / b)
    } else {
        "–".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(server: &str, rate: u64, per_sec: f64, ratio: f64, cpu: f64) -> Report {
        Report {
            scenario: "fanout".into(),
            server: server.into(),
            clients: 10,
            connected: 10,
            rate,
            expected: 100,
            delivered_per_sec: per_sec,
            delivered_ratio: ratio,
            processes: vec![ProcessStats {
                name: "server".into(),
                cpu_percent: cpu,
                ..ProcessStats::default()
            }],
            ..Report::default()
        }
    }

    #[test]
    fn table_pairs_runs_and_finds_sustained_best() {
        let reports = vec![
            run("gateway", 1000, 100_000.0, 1.0, 10.0),
            run("reference", 1000, 99_000.0, 0.99, 50.0),
            run("gateway", 5000, 500_000.0, 0.999, 30.0),
            run("reference", 5000, 200_000.0, 0.4, 100.0),
        ];
        let md = markdown(&reports, &["gateway".to_owned()], "reference", "test box");
        assert!(md.contains("| fanout | 1000 | 1.0× |"), "{md}");
        assert!(md.contains("| fanout | 5000 | 2.5× |"), "{md}");
        assert!(
            md.contains("gateway 500000, reference 99000, ratio 5.1×"),
            "{md}"
        );
        assert_eq!(md.matches("| fanout | gateway |").count(), 2);
    }

    #[test]
    fn slow_consumer_rows_pair_with_their_twin() {
        let mut base = run("gateway", 10_000, 1e6, 1.0, 90.0);
        base.scenario = "slow-consumer".into();
        base.latency.p99_ms = 40.0;
        base.processes[0].rss_max_kib = 50 * 1024;
        let mut with = base.clone();
        with.latency.p99_ms = 44.0;
        with.delivered_per_sec = 2e6;
        with.processes[0].rss_start_kib = 48 * 1024;
        with.processes[0].rss_end_kib = 49 * 1024;
        with.processes[0].rss_max_kib = 51 * 1024;
        with.stalled = vec![StalledClient {
            subscribed: true,
            ended: StalledEnd::Closed,
            close_code: Some(1008),
            close_reason: Some("slow consumer".into()),
            ..StalledClient::default()
        }];
        let md = markdown(&[base, with], &["gateway".to_owned()], "reference", "box");
        assert!(
            md.contains("| slow-consumer +1 stalled | gateway |"),
            "{md}"
        );
        assert!(
            md.contains("| 40.00 | 44.00 | 1.10 | 100.00 | 100.00 | 48.0 / 49.0 / 51.0 | 50.0 | 1008 \"slow consumer\" |"),
            "{md}"
        );
        // A stalled run is never anyone's best sustained figure.
        assert!(md.contains("gateway 1000000"), "{md}");
    }

    #[test]
    fn replicas_at_a_load_the_reference_never_ran_are_not_compared() {
        let mut replicas = run("gateway×3", 100, 50_000.0, 1.0, 40.0);
        replicas.scenario = "connections".into();
        replicas.clients = 50_000;
        replicas.processes[0].pids = vec![11, 12, 13];
        let mut capped = run("reference", 100, 19_000.0, 1.0, 90.0);
        capped.scenario = "connections".into();
        capped.clients = 19_000;
        let md = markdown(
            &[replicas.clone(), capped],
            &["gateway×3".to_owned()],
            "reference",
            "box",
        );
        assert!(md.contains("| connections | gateway×3 | 10 |"), "{md}");
        assert!(
            md.contains("**gateway×3 vs reference**: no run of reference at the same load"),
            "{md}"
        );
        assert!(!md.contains("Highest sustained"), "{md}");
        // Without any reference run the section stays as it was.
        let md = markdown(&[replicas], &["gateway×3".to_owned()], "reference", "box");
        assert!(md.contains("Highest sustained deliveries/s"), "{md}");
        let back: Report =
            serde_json::from_str(&serde_json::to_string(&run("g", 1, 1.0, 1.0, 1.0)).unwrap())
                .unwrap();
        assert!(back.processes[0].pids.is_empty());
    }

    #[test]
    fn baseline_rows_give_cpu_per_message_side_by_side() {
        let mut g = run("gateway", 1000, 100_000.0, 1.0, 50.0);
        g.window_secs = 20.0;
        g.delivered = 2_000_000;
        g.latency.p99_ms = 2.0;
        let mut b = run("baseline", 1000, 100_000.0, 1.0, 100.0);
        b.window_secs = 20.0;
        b.delivered = 2_000_000;
        b.latency.p99_ms = 3.0;
        // 0.5 core × 20 s / 2M = 5 µs; 1 core × 20 s / 2M = 10 µs.
        assert_eq!(cpu_us_per_message(&g), Some(5.0));
        let md = markdown(
            &[b.clone(), g.clone()],
            &["gateway".to_owned(), "baseline".to_owned()],
            "reference",
            "box",
        );
        assert!(md.contains("**gateway vs baseline**"), "{md}");
        assert!(
            md.contains("| fanout | 1000 | 5.000 | 10.000 | 0.50 | 100.00 / 100.00 | 0.00 / 0.00 | 2.00 / 3.00 |"),
            "{md}"
        );
        // Without a reference run there is no empty comparison with it, and the baseline is never a candidate.
        assert!(!md.contains("vs reference"), "{md}");
        assert!(!md.contains("**baseline vs"), "{md}");
    }

    #[test]
    fn soak_rows_judge_drift_and_deliveries() {
        let mut r = run("gateway", 5000, 5e5, 0.9995, 90.0);
        r.scenario = "soak".into();
        r.window_secs = 300.0;
        r.processes[0].rss_start_kib = 20 * 1024;
        r.processes[0].rss_end_kib = 21 * 1024;
        r.processes[0].fds_start = Some(1030);
        r.processes[0].fds_end = Some(1040);
        r.transient = Some(crate::transient::TransientReport {
            rate: 100.0,
            started: 30_000,
            completed: 29_990,
            failed: 0,
            ..Default::default()
        });
        let md = markdown(&[r.clone()], &["gateway".to_owned()], "reference", "box");
        assert!(md.contains("**Churn soak**"), "{md}");
        assert!(
            md.contains("| 20.0 → 21.0 | +5.0 % | 1030 → 1040 | +1.0 % | 99.950 |"),
            "{md}"
        );
        assert!(md.contains("| ok |"), "{md}");
        r.processes[0].fds_end = Some(1300);
        let md = markdown(&[r], &["gateway".to_owned()], "reference", "box");
        assert!(md.contains("| off target |"), "{md}");
    }

    #[test]
    fn json_round_trips() {
        let r = run("gateway", 1, 2.0, 1.0, 3.0);
        let back: Report = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back.server, "gateway");
        assert!(back.summary().contains("gateway"));
    }
}
