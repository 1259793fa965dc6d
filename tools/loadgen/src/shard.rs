//! `run --shards N`: one run's clients spread over N processes.
//!
//! One process may hold only as many sockets as its open-file limit allows
//! (20,000 on the benchmark machine), so a 50,000-client run needs several.
//! The parent (`loadgen run`) starts its own binary N times as
//! `loadgen shard --spec JSON`. Child k runs the clients with global indices
//! `k·C/N .. (k+1)·C/N`, the same indices (hence the same symbols) a single
//! process would give them, from its own slice of the 127.0.0.x source
//! addresses ([`shard_sources`]). The parent alone publishes, samples
//! processes and runs stalled clients. It steers the children through the
//! phases of a run over their stdin and reads one JSON [`Reply`] line per
//! phase from their stdout; their stderr is inherited, so their messages
//! land in the same log:
//!
//! | parent → child (stdin) | child → parent (stdout) |
//! |---|---|
//! | (start) | `"ready"`: target resolved, no client yet |
//! | `connect` | `{"settled":{"ready":N,"failed":M}}` once every client subscribed or failed |
//! | `measure`, `end` | (nothing: the window opens and closes) |
//! | `stop` (or EOF) | `{"done":{Tally}}`: the exact counts, per-symbol subscriptions and the latency histogram's buckets |
//!
//! The parent adds the tallies up ([`Tally::merge`]), so every count is exact
//! and the percentiles come from one merged histogram.

use std::net::Ipv4Addr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::client::{ClientCtx, Protocol};
use crate::run::{symbol_names, LocalClients, RunConfig};
use crate::stats::{Shared, Tally};
use crate::ws::Target;

/// How long a child may take to start and say `ready`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Beyond the connect timeout (which each child enforces itself): time for its `settled` to arrive.
const REPLY_GRACE: Duration = Duration::from_secs(30);
/// How long the children get to close their clients and send their tallies (their own stop grace is 5 s).
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a child that sent its tally gets to exit before it is killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// What one child runs: its clients, addresses and limits, passed as `loadgen shard --spec JSON`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardSpec {
    /// Which shard this is (0-based), for messages.
    pub index: usize,
    /// How many shards the run has.
    pub shards: usize,
    /// Server WebSocket URL.
    pub url: String,
    /// Wire protocol.
    pub protocol: Protocol,
    /// Global index of its first client (fixes the clients' symbols).
    pub first_client: usize,
    /// How many clients it runs.
    pub clients: usize,
    /// Symbols per client.
    pub per_client: usize,
    /// Symbols in the run.
    pub symbols: usize,
    /// Symbol name prefix.
    pub symbol_prefix: String,
    /// Its own source addresses.
    pub sources: Vec<Ipv4Addr>,
    /// Its share of the connect concurrency.
    pub connect_concurrency: usize,
    /// Seconds one client may take from connect to `subscribed`.
    pub subscribe_timeout: f64,
    /// Seconds all its clients together may take to connect and subscribe.
    pub connect_timeout: f64,
}

/// One line a child writes on its stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Started, target resolved, waiting for `connect`.
    Ready,
    /// The connect phase is over.
    Settled {
        /// Clients subscribed.
        ready: u64,
        /// Clients that failed.
        failed: u64,
    },
    /// Everything it measured, after `stop`.
    Done(Box<Tally>),
}

/// One line the parent writes on a child's stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Connect,
    Measure,
    End,
    Stop,
}

impl Cmd {
    fn line(self) -> &'static [u8] {
        match self {
            Self::Connect => b"connect\n",
            Self::Measure => b"measure\n",
            Self::End => b"end\n",
            Self::Stop => b"stop\n",
        }
    }

    fn parse(line: &str) -> Option<Self> {
        match line.trim() {
            "connect" => Some(Self::Connect),
            "measure" => Some(Self::Measure),
            "end" => Some(Self::End),
            "stop" => Some(Self::Stop),
            _ => None,
        }
    }
}

/// The specs of `cfg.shards` children: contiguous client ranges, disjoint source addresses, the connect concurrency divided.
pub fn split(cfg: &RunConfig) -> Vec<ShardSpec> {
    let n = cfg.shards.max(1);
    (0..n)
        .map(|k| {
            let first = k * cfg.clients / n;
            let last = (k + 1) * cfg.clients / n;
            ShardSpec {
                index: k,
                shards: n,
                url: cfg.url.clone(),
                protocol: cfg.protocol,
                first_client: first,
                clients: last - first,
                per_client: cfg.per_client,
                symbols: cfg.symbols,
                symbol_prefix: cfg.symbol_prefix.clone(),
                sources: shard_sources(cfg.source_ips, n, k),
                connect_concurrency: cfg.connect_concurrency.div_ceil(n).max(1),
                subscribe_timeout: cfg.subscribe_timeout,
                connect_timeout: cfg.connect_timeout,
            }
        })
        .collect()
}

/// Source addresses of shard `k` of `n` in a run with `source_ips` (127.0.0.1 ..= 127.0.0.`source_ips`):
/// a disjoint slice of them each; with fewer addresses than shards, one address each (127.0.0.`k+1`).
pub fn shard_sources(source_ips: u8, n: usize, k: usize) -> Vec<Ipv4Addr> {
    let s = usize::from(source_ips);
    let (lo, hi) = if s >= n {
        (1 + k * s / n, 1 + (k + 1) * s / n)
    } else {
        (1 + k, 2 + k)
    };
    (lo..hi)
        .map(|x| Ipv4Addr::new(127, 0, 0, u8::try_from(x).unwrap_or(u8::MAX)))
        .collect()
}

/// The child side (`loadgen shard`): runs `spec`'s clients, steered by the parent over stdin/stdout.
pub async fn serve(spec: ShardSpec) -> anyhow::Result<()> {
    let tag = format!("loadgen shard {}/{}", spec.index + 1, spec.shards);
    let mut commands = read_commands();
    let target = Target::resolve(&spec.url).await?;
    let symbols = symbol_names(&spec.symbol_prefix, spec.symbols);
    let subscribe_timeout = Duration::from_secs_f64(spec.subscribe_timeout);
    let ctx = Arc::new(ClientCtx {
        target,
        protocol: spec.protocol,
        sources: spec.sources.clone(),
        connecting: Semaphore::new(spec.connect_concurrency.max(1)),
        subscribe_timeout,
        recv_buffer: None,
        shared: Arc::new(Shared::new()?),
        recovery: None,
    });
    reply(&Reply::Ready)?;
    if commands.recv().await != Some(Cmd::Connect) {
        return Ok(()); // The parent gave up before the run began.
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let clients = LocalClients::spawn(
        ctx.clone(),
        spec.first_client..spec.first_client + spec.clients,
        spec.per_client,
        &symbols,
        stop_rx,
    );
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(spec.connect_timeout);
    let (ready, failed) = tokio::select! {
        settled = clients.wait_settled(deadline) => settled,
        _ = commands.recv() => {
            // Only `stop` or EOF can come now: the parent is aborting.
            let _ = stop_tx.send(true);
            return Ok(());
        }
    };
    say(&format!(
        "{tag}: {ready} clients subscribed, {failed} failed, in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    reply(&Reply::Settled { ready, failed })?;

    loop {
        match commands.recv().await {
            Some(Cmd::Measure) => clients.set_measuring(true),
            Some(Cmd::End) => clients.set_measuring(false),
            Some(Cmd::Connect) => {}
            Some(Cmd::Stop) | None => break,
        }
    }
    clients.set_measuring(false);
    let _ = stop_tx.send(true);
    let tally = clients.finish().await?;
    reply(&Reply::Done(Box::new(tally)))
}

/// Commands from stdin, read on a plain thread (a tokio stdin read would hold up the runtime's
/// shutdown until the parent closes the pipe); EOF or a read error arrives as `stop`.
fn read_commands() -> mpsc::Receiver<Cmd> {
    let (tx, rx) = mpsc::channel(8);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            line.clear();
            match stdin.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = tx.blocking_send(Cmd::Stop);
                    return;
                }
                Ok(_) => match Cmd::parse(&line) {
                    Some(cmd) => {
                        if tx.blocking_send(cmd).is_err() {
                            return;
                        }
                    }
                    None => say(&format!("loadgen shard: unknown command {:?}", line.trim())),
                },
            }
        }
    });
    rx
}

/// Writes one line to stderr in one write(2), so the shards' lines do not interleave mid-line in the shared log.
fn say(line: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// Writes one reply line to stdout and flushes it. A plain blocking write: the parent reads each
/// reply as soon as it is due, and the largest (the tally) comes when nothing else is left to do.
fn reply(r: &Reply) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut line = serde_json::to_vec(r)?;
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    out.write_all(&line)
        .and_then(|()| out.flush())
        .context("writing to the parent")
}

/// One child process, as the parent holds it.
struct ShardProc {
    /// Its index, for messages.
    index: usize,
    /// The process (killed if dropped early).
    child: Child,
    /// Its pid, to watch it.
    pid: u32,
    /// Where commands go.
    stdin: ChildStdin,
    /// Where replies come from, one JSON line each.
    replies: Lines<BufReader<ChildStdout>>,
}

impl ShardProc {
    /// Sends one command.
    async fn send(&mut self, cmd: Cmd) -> anyhow::Result<()> {
        self.stdin.write_all(cmd.line()).await?;
        self.stdin
            .flush()
            .await
            .with_context(|| format!("loadgen shard {}: sending {cmd:?}", self.index))
    }

    /// The next reply, by `deadline`; an error names what was awaited and how the child ended.
    async fn recv(&mut self, deadline: tokio::time::Instant, what: &str) -> anyhow::Result<Reply> {
        let index = self.index;
        match tokio::time::timeout_at(deadline, self.replies.next_line()).await {
            Err(_) => anyhow::bail!("loadgen shard {index}: no {what} in time"),
            Ok(Err(e)) => Err(e).with_context(|| format!("loadgen shard {index}: reading {what}")),
            Ok(Ok(None)) => {
                let status = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
                anyhow::bail!(
                    "loadgen shard {index} ended before its {what} ({}); its messages are above",
                    match status {
                        Ok(Ok(s)) => s.to_string(),
                        _ => "still running".to_owned(),
                    }
                )
            }
            Ok(Ok(Some(line))) => serde_json::from_str(&line)
                .with_context(|| format!("loadgen shard {index}: unreadable {what}: {line:?}")),
        }
    }
}

/// The parent's handle on its shard processes, steered together through the phases of a run.
pub struct ShardSet {
    /// The children, in shard order.
    procs: Vec<ShardProc>,
}

impl ShardSet {
    /// Starts one child per spec (this executable, `--threads threads shard --spec JSON`) and waits until each is ready.
    pub async fn spawn(specs: Vec<ShardSpec>, threads: usize) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the loadgen binary to start shards")?;
        let mut procs = Vec::with_capacity(specs.len());
        for spec in &specs {
            let mut child = Command::new(&exe)
                .arg("--threads")
                .arg(threads.max(1).to_string())
                .arg("shard")
                .arg("--spec")
                .arg(serde_json::to_string(spec)?)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting shard {} ({})", spec.index, exe.display()))?;
            let pid = child.id().context("a just-started shard has a pid")?;
            let stdin = child.stdin.take().context("shard stdin")?;
            let stdout = child.stdout.take().context("shard stdout")?;
            procs.push(ShardProc {
                index: spec.index,
                child,
                pid,
                stdin,
                replies: BufReader::new(stdout).lines(),
            });
        }
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        for p in &mut procs {
            match p.recv(deadline, "ready").await? {
                Reply::Ready => {}
                other => anyhow::bail!("loadgen shard {}: expected ready, got {other:?}", p.index),
            }
        }
        let clients: Vec<String> = specs
            .iter()
            .map(|s| {
                let ips: Vec<String> = s.sources.iter().map(Ipv4Addr::to_string).collect();
                format!("{} from {}", s.clients, ips.join(","))
            })
            .collect();
        eprintln!(
            "loadgen: {} shard processes ready (clients: {})",
            procs.len(),
            clients.join("; ")
        );
        Ok(Self { procs })
    }

    /// The children's pids, to watch them with this process as `loadgen`.
    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(|p| p.pid).collect()
    }

    async fn send_all(&mut self, cmd: Cmd) -> anyhow::Result<()> {
        for p in &mut self.procs {
            p.send(cmd).await?;
        }
        Ok(())
    }

    /// Starts the connect phase in every child.
    pub async fn connect(&mut self) -> anyhow::Result<()> {
        self.send_all(Cmd::Connect).await
    }

    /// Waits for every child's connect phase to end (each enforces `deadline` itself): (subscribed, failed) summed.
    pub async fn wait_settled(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<(u64, u64)> {
        let (mut ready, mut failed) = (0, 0);
        for p in &mut self.procs {
            match p.recv(deadline + REPLY_GRACE, "settled").await? {
                Reply::Settled {
                    ready: r,
                    failed: f,
                } => {
                    ready += r;
                    failed += f;
                }
                other => {
                    anyhow::bail!("loadgen shard {}: expected settled, got {other:?}", p.index)
                }
            }
        }
        Ok((ready, failed))
    }

    /// Opens or closes the measured window in every child.
    pub async fn set_measuring(&mut self, on: bool) -> anyhow::Result<()> {
        self.send_all(if on { Cmd::Measure } else { Cmd::End })
            .await
    }

    /// Tells every child to close its clients.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.send_all(Cmd::Stop).await
    }

    /// Collects every child's tally (after [`stop`](Self::stop)), merges them and waits for the children to exit.
    pub async fn finish(mut self, symbols: usize) -> anyhow::Result<Tally> {
        let mut total = Tally::empty(symbols)?;
        let deadline = tokio::time::Instant::now() + FINISH_TIMEOUT;
        for p in &mut self.procs {
            match p.recv(deadline, "tally").await? {
                Reply::Done(t) => total
                    .merge(&t)
                    .with_context(|| format!("merging shard {}", p.index))?,
                other => anyhow::bail!("loadgen shard {}: expected done, got {other:?}", p.index),
            }
        }
        for p in &mut self.procs {
            match tokio::time::timeout(EXIT_TIMEOUT, p.child.wait()).await {
                Ok(Ok(status)) if status.success() => {}
                Ok(Ok(status)) => eprintln!("loadgen: shard {} exited with {status}", p.index),
                _ => eprintln!("loadgen: shard {} did not exit; killing it", p.index),
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        cfg: RunConfig,
    }

    fn cfg(args: &[&str]) -> RunConfig {
        let mut all = vec!["loadgen", "--url", "ws://127.0.0.1:1/ws"];
        all.extend_from_slice(args);
        Args::parse_from(all).cfg
    }

    #[test]
    fn split_covers_every_client_once_with_disjoint_sources() {
        let c = cfg(&[
            "--clients",
            "50000",
            "--shards",
            "3",
            "--source-ips",
            "11",
            "--connect-concurrency",
            "500",
        ]);
        let specs = split(&c);
        assert_eq!(specs.len(), 3);
        let mut next = 0;
        let mut sources = Vec::new();
        for (k, s) in specs.iter().enumerate() {
            assert_eq!((s.index, s.shards), (k, 3));
            assert_eq!(s.first_client, next, "contiguous ranges");
            next += s.clients;
            assert_eq!(s.connect_concurrency, 167);
            sources.extend(s.sources.iter().copied());
        }
        assert_eq!(next, 50_000);
        assert_eq!(
            specs.iter().map(|s| s.clients).collect::<Vec<_>>(),
            [16_666, 16_667, 16_667]
        );
        // 127.0.0.1 ..= 127.0.0.11, each in exactly one shard.
        let want: Vec<Ipv4Addr> = (1..=11).map(|x| Ipv4Addr::new(127, 0, 0, x)).collect();
        assert_eq!(sources, want);
    }

    #[test]
    fn fewer_addresses_than_shards_gives_each_its_own() {
        assert_eq!(shard_sources(1, 3, 0), [Ipv4Addr::new(127, 0, 0, 1)]);
        assert_eq!(shard_sources(1, 3, 2), [Ipv4Addr::new(127, 0, 0, 3)]);
        assert_eq!(shard_sources(4, 4, 3), [Ipv4Addr::new(127, 0, 0, 4)]);
    }

    #[test]
    fn specs_and_replies_round_trip_as_json_lines() {
        let spec = &split(&cfg(&["--clients", "10", "--shards", "2"]))[1];
        let back: ShardSpec = serde_json::from_str(&serde_json::to_string(spec).unwrap()).unwrap();
        assert_eq!(&back, spec);
        assert_eq!(serde_json::to_string(&Reply::Ready).unwrap(), r#""ready""#);
        let settled = serde_json::to_string(&Reply::Settled {
            ready: 3,
            failed: 1,
        })
        .unwrap();
        assert_eq!(settled, r#"{"settled":{"ready":3,"failed":1}}"#);
        let mut t = Tally::empty(2).unwrap();
        t.connected = 5;
        t.latency.record(1234).unwrap();
        let line = serde_json::to_string(&Reply::Done(Box::new(t))).unwrap();
        assert!(!line.contains('\n'));
        match serde_json::from_str(&line).unwrap() {
            Reply::Done(t) => {
                assert_eq!(t.connected, 5);
                assert_eq!(t.latency.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        for cmd in [Cmd::Connect, Cmd::Measure, Cmd::End, Cmd::Stop] {
            let line = std::str::from_utf8(cmd.line()).unwrap();
            assert_eq!(Cmd::parse(line), Some(cmd));
        }
        assert_eq!(Cmd::parse("dance"), None);
    }
}
