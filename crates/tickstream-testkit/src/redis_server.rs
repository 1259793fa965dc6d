//! A private `redis-server` process per test.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use tokio::time::Instant;

use crate::port::free_port;
use crate::wait::POLL_INTERVAL;

/// How long a fresh `redis-server` gets to answer; it normally takes a few ms.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How many fresh ports [`RedisServer::start`] tries: the port from
/// [`free_port`] can be taken by someone else before redis binds it.
const START_PORT_ATTEMPTS: usize = 5;

/// How long [`RedisServer::restart`] keeps retrying the same port while
/// something else still holds it.
const RESTART_BIND_RETRY: Duration = Duration::from_secs(5);

/// Pause between two restart attempts on a busy port (a back-off, not a
/// synchronisation: the condition is re-checked after it).
const RESTART_BACKOFF: Duration = Duration::from_millis(100);

/// Bound on one readiness probe, so a half-started server cannot stall a poll.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Response timeout of connections from [`RedisServer::client`]: redis 1.x
/// defaults to 500 ms, too short for a test's blocking reads.
const CLIENT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of redis's own log an error message quotes.
const LOG_TAIL_LINES: usize = 30;

/// What the error says when the binary is not on `PATH`.
const NOT_FOUND: &str = "redis-server not found: run `make test`, which installs it";

/// Makes temp-dir names unique within one test process.
static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A private `redis-server` on a free loopback port, so each test has its own Redis and can crash and restart it.
///
/// By default nothing is persisted (`--save "" --appendonly no`): after
/// [`kill`](Self::kill) and [`restart`](Self::restart) the server is empty,
/// like a cache node that lost its memory. [`start_persistent`](Self::start_persistent)
/// keeps an append-only file written on every command instead, so a restart
/// comes back with everything it had acknowledged. Dropping it kills the
/// process and removes its directory.
#[derive(Debug)]
pub struct RedisServer {
    /// Fixed for the server's life, so clients configured with [`url`](Self::url)
    /// find it again after [`restart`](Self::restart).
    port: u16,
    /// The running process; `None` between [`kill`](Self::kill) and
    /// [`restart`](Self::restart).
    child: Option<Child>,
    /// Owned working directory: redis's `--dir` and its `redis.log`.
    dir: PathBuf,
    /// Whether the server keeps an append-only file (`appendfsync always`) across restarts.
    persistent: bool,
}

impl RedisServer {
    /// Starts a private server on a free port and returns once it answers, so the test can use it immediately.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(false).await
    }

    /// Like [`start`](Self::start), but the data survives [`kill`](Self::kill) and
    /// [`restart`](Self::restart) (AOF, fsync on every write), to test a Redis that crashes and comes back whole.
    pub async fn start_persistent() -> anyhow::Result<Self> {
        Self::start_with(true).await
    }

    async fn start_with(persistent: bool) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "tickstream-testkit-redis-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        // A directory left by an earlier process with the same pid is stale.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating redis dir {}", dir.display()))?;
        // From here on, Drop cleans up whatever happens.
        let mut server = Self {
            port: 0,
            child: None,
            dir,
            persistent,
        };
        for _ in 0..START_PORT_ATTEMPTS {
            server.port = free_port();
            match server.launch().await? {
                Launch::Ready(child) => {
                    server.child = Some(child);
                    return Ok(server);
                }
                // Someone took the port between free_port and redis's bind.
                Launch::PortBusy(_) => continue,
            }
        }
        bail!(
            "redis-server could not bind any of {START_PORT_ATTEMPTS} free ports; last log:\n{}",
            server.log_tail_from(0)
        )
    }

    /// `redis://127.0.0.1:PORT`, to hand to the code under test (e.g. as `REDIS_URL`).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The TCP port, which stays the same across [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's private directory (holds `redis.log`), for reading its log when a test fails.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// SIGKILLs and reaps the process, to simulate Redis crashing; a no-op if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Errors mean it already exited; wait() then just reaps it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (killing it first if running), to test recovery after a crash.
    ///
    /// Retries for a few seconds while the port is still held by someone
    /// else, then returns once the new process answers.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let deadline = Instant::now() + RESTART_BIND_RETRY;
        loop {
            match self.launch().await? {
                Launch::Ready(child) => {
                    self.child = Some(child);
                    return Ok(());
                }
                Launch::PortBusy(log) => {
                    if Instant::now() >= deadline {
                        bail!(
                            "redis-server could not rebind port {} within {RESTART_BIND_RETRY:?}; log:\n{log}",
                            self.port
                        );
                    }
                    tokio::time::sleep(RESTART_BACKOFF).await;
                }
            }
        }
    }

    /// A fresh connection, so tests can inspect and seed keys directly.
    pub async fn client(&self) -> anyhow::Result<redis::aio::MultiplexedConnection> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(PROBE_TIMEOUT))
            .set_response_timeout(Some(CLIENT_RESPONSE_TIMEOUT));
        redis::Client::open(self.url())?
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .with_context(|| format!("connecting to {}", self.url()))
    }

    /// `PUBSUB NUMSUB channel`: how many connections follow `channel` now (a service's interest, seen from Redis).
    pub async fn numsub(&self, channel: &str) -> anyhow::Result<i64> {
        let mut c = self.client().await?;
        let (_, n): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut c)
            .await?;
        Ok(n)
    }

    /// Whether something on this server's port answers `PING` right now, to assert a crash or a recovery.
    pub async fn ping(&self) -> bool {
        let probe = async {
            let mut con = self.client().await.ok()?;
            redis::cmd("PING")
                .query_async::<String>(&mut con)
                .await
                .ok()
        };
        matches!(
            tokio::time::timeout(PROBE_TIMEOUT, probe).await,
            Ok(Some(reply)) if reply == "PONG"
        )
    }

    /// Spawns `redis-server` on `self.port` and waits until *this* process
    /// answers (checked by pid, so another server that grabbed the port does
    /// not count).
    async fn launch(&self) -> anyhow::Result<Launch> {
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut child = Command::new("redis-server")
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(if self.persistent {
                ["--appendonly", "yes", "--appendfsync", "always"]
            } else {
                ["--appendonly", "no", "--appendfsync", "everysec"]
            })
            .arg("--dir")
            .arg(&self.dir)
            .args(["--protected-mode", "no"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => anyhow!(NOT_FOUND),
                _ => anyhow!(e).context("spawning redis-server"),
            })?;

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                let tail = self.log_tail_from(log_start);
                if tail.contains("Address already in use") {
                    return Ok(Launch::PortBusy(tail));
                }
                bail!(exited_error(self.port, status, &tail));
            }
            if self.answering_pid().await == Some(child.id()) {
                return Ok(Launch::Ready(child));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "redis-server on port {} did not answer within {START_TIMEOUT:?}; log:\n{}",
                    self.port,
                    self.log_tail_from(log_start)
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The pid of the server answering on our port, from `INFO server`.
    async fn answering_pid(&self) -> Option<u32> {
        let probe = async {
            let mut con = self.client().await.ok()?;
            let info: String = redis::cmd("INFO")
                .arg("server")
                .query_async(&mut con)
                .await
                .ok()?;
            info.lines()
                .find_map(|l| l.strip_prefix("process_id:"))
                .and_then(|pid| pid.trim().parse().ok())
        };
        tokio::time::timeout(PROBE_TIMEOUT, probe)
            .await
            .ok()
            .flatten()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    /// The last lines of redis's log written since byte `offset`.
    fn log_tail_from(&self, offset: u64) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(self.log_path()) {
            if file.seek(SeekFrom::Start(offset)).is_ok() {
                let _ = file.read_to_string(&mut text);
            }
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Outcome of one attempt to start the process.
enum Launch {
    /// It answers on the port.
    Ready(Child),
    /// It exited because the port was taken; carries its log.
    PortBusy(String),
}

fn exited_error(port: u16, status: ExitStatus, log: &str) -> String {
    format!("redis-server on port {port} exited with {status} before answering; log:\n{log}")
}
