//! One of the workspace's service binaries, run as a real child process.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::wait::{wait_until, POLL_INTERVAL};

/// How long a service gets to log `Listening.`: generous, because a cold
/// debug binary on a busy 2-core machine can be slow to start.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);

/// How long [`Service::restart`] retries while the old port is still held.
const RESTART_BIND_RETRY: Duration = Duration::from_secs(5);

/// Pause between two restart attempts on a busy port (a back-off; the
/// condition is re-checked after it).
const RESTART_BACKOFF: Duration = Duration::from_millis(100);

/// How long to wait for the log readers to drain a pipe after the process
/// exited (a grandchild holding the pipe open must not hang the test).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Lines kept per process; older lines are dropped first, so a chatty
/// service cannot grow a test's memory without bound.
const LOG_CAPACITY: usize = 2000;

/// How many of the last log lines an error message quotes.
const LOG_TAIL_LINES: usize = 40;

/// The message every service logs once its listener is bound; the line's
/// `addr` field is where to reach it.
const LISTENING_MESSAGE: &str = "Listening.";

/// Environment every service gets unless the caller overrides it: loopback,
/// port 0, JSON logs (which [`Service::spawn`] parses) at `info`.
const DEFAULT_ENV: [(&str, &str); 5] = [
    ("HOST", "127.0.0.1"),
    ("PORT", "0"),
    ("LOG_FORMAT", "json"),
    ("LOG_LEVEL", "info"),
    // A start-up error stays one readable line: with RUST_BACKTRACE=1 inherited (CI
    // shells often set it), anyhow would append ~30 frames and push the error itself
    // out of the tail that failure messages quote. Panics keep their backtraces.
    ("RUST_LIB_BACKTRACE", "0"),
];

/// Variables removed from the inherited environment unless the caller sets
/// them: a developer's `REDIS_URL` must not point a test at the shared Redis,
/// and a `RUST_LOG=warn` would hide the `Listening.` line.
const CLEARED_ENV: [&str; 2] = ["REDIS_URL", "RUST_LOG"];

/// The `<target>/<profile>` directory this test binary was built into, where cargo also puts the workspace's binaries.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe of the test binary");
    let mut dir = exe
        .parent()
        .expect("the test binary lives in a directory")
        .to_path_buf();
    // Integration tests live in <target>/<profile>/deps, examples in
    // <target>/<profile>/examples.
    if dir
        .file_name()
        .is_some_and(|n| n == "deps" || n == "examples")
    {
        dir.pop();
    }
    dir
}

/// Where cargo puts the workspace binary `name` for this profile, so tests run the binary built from the same tree.
pub fn bin_path(name: &str) -> PathBuf {
    target_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// A workspace service running as a child process on its own port, so tests exercise the real binary end to end.
///
/// Its stdout and stderr are captured line by line (see [`logs`](Self::logs)).
/// Dropping it SIGKILLs the process.
#[derive(Debug)]
pub struct Service {
    /// The binary, kept to run it again in [`restart`](Self::restart).
    path: PathBuf,
    /// The caller's environment overrides, kept for [`restart`](Self::restart).
    envs: Vec<(String, String)>,
    /// The running process (killed on drop).
    child: Child,
    /// Captured at spawn: `Child::id` is gone once the process is reaped.
    pid: u32,
    /// Where the service said it listens.
    addr: SocketAddr,
    /// Shared with the reader tasks that fill it from stdout and stderr.
    logs: Arc<Mutex<LogBuffer>>,
    /// The reader tasks; awaited after exit so [`logs`](Self::logs) is complete.
    readers: Vec<JoinHandle<()>>,
}

impl Service {
    /// Runs the workspace binary `bin` with `envs` over the defaults and returns once it logs `Listening.`, so the test knows its address.
    ///
    /// Defaults: `HOST=127.0.0.1`, `PORT=0`, `LOG_FORMAT=json`,
    /// `LOG_LEVEL=info`; `REDIS_URL` and `RUST_LOG` are cleared unless given.
    pub async fn spawn(bin: &str, envs: &[(&str, &str)]) -> anyhow::Result<Service> {
        let path = bin_path(bin);
        if !path.exists() {
            bail!(
                "binary {bin} not built: run `cargo build --bins` (make test does); looked for {}",
                path.display()
            );
        }
        Self::spawn_path(&path, envs).await
    }

    /// Like [`spawn`](Self::spawn) for a binary outside the workspace's target directory (a mock, an example).
    pub async fn spawn_path(path: &Path, envs: &[(&str, &str)]) -> anyhow::Result<Service> {
        let envs: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match launch(path, &envs).await? {
            Launch::Ready(running) => Ok(Self::from_running(path, envs, *running)),
            Launch::PortBusy(err) => Err(err),
        }
    }

    fn from_running(path: &Path, envs: Vec<(String, String)>, running: Running) -> Self {
        Self {
            path: path.to_path_buf(),
            envs,
            child: running.child,
            pid: running.pid,
            addr: running.addr,
            logs: running.logs,
            readers: running.readers,
        }
    }

    /// The address from the `Listening.` line, to connect to the service.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` + `path` (which starts with `/`), for REST requests.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `ws://ADDR` + `path` (which starts with `/`), for WebSocket clients.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// The process id, to signal or inspect the process from a test.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends SIGTERM, to test graceful shutdown; a no-op if it already exited.
    pub fn terminate(&mut self) -> anyhow::Result<()> {
        // Once reaped the pid may be reused, so never signal after exit.
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .context("running `kill -TERM`")?;
        if !status.success() && self.child.try_wait()?.is_none() {
            bail!("`kill -TERM {}` failed with {status}", self.pid);
        }
        Ok(())
    }

    /// Sends SIGKILL, to simulate a crash; a no-op if it already exited.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        self.child.start_kill().context("sending SIGKILL")
    }

    /// Waits up to `timeout` for the process to exit and returns its status, or `None` if it is still running.
    ///
    /// After it returns `Some`, [`logs`](Self::logs) holds everything the
    /// process printed.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()?
            .ok()?;
        drain(&mut self.readers).await;
        Some(status)
    }

    /// A copy of the last (up to 2000) lines the current process printed on stdout and stderr, for assertions and failure messages.
    pub fn logs(&self) -> Vec<String> {
        lock(&self.logs).lines.iter().cloned().collect()
    }

    /// Waits until some captured line contains `needle`, so tests await a logged event instead of sleeping.
    ///
    /// Lines printed before the call count too. On timeout the error quotes
    /// the last log lines.
    pub async fn wait_for_log(&self, timeout: Duration, needle: &str) -> anyhow::Result<()> {
        let what = format!("a log line containing {needle:?}");
        wait_until(timeout, &what, || {
            let found = lock(&self.logs).lines.iter().any(|l| l.contains(needle));
            async move { found }
        })
        .await
        .map_err(|e| anyhow!("{e}; last log lines:\n{}", lock(&self.logs).tail()))
    }

    /// Stops the process (SIGKILL if still running) and runs the same binary with the same environment on the same port, to test recovery.
    ///
    /// Waits for `Listening.` again; [`logs`](Self::logs) then covers only the
    /// new process.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let port = self.addr.port();
        self.kill()?;
        let _ = self.child.wait().await;
        drain(&mut self.readers).await;

        let mut envs: Vec<(String, String)> = self
            .envs
            .iter()
            .filter(|(k, _)| k != "PORT")
            .cloned()
            .collect();
        envs.push(("PORT".to_string(), port.to_string()));

        let deadline = Instant::now() + RESTART_BIND_RETRY;
        let running = loop {
            match launch(&self.path, &envs).await? {
                Launch::Ready(running) => break *running,
                Launch::PortBusy(err) if Instant::now() >= deadline => {
                    return Err(err.context(format!(
                        "port {port} still busy after {RESTART_BIND_RETRY:?}"
                    )));
                }
                Launch::PortBusy(_) => tokio::time::sleep(RESTART_BACKOFF).await,
            }
        };
        if running.addr.port() != port {
            bail!(
                "{} restarted on port {} instead of {port}: does it honour PORT?",
                self.path.display(),
                running.addr.port()
            );
        }
        let envs = std::mem::take(&mut self.envs);
        *self = Self::from_running(&self.path.clone(), envs, running);
        Ok(())
    }
}

/// A process that logged `Listening.`.
struct Running {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    logs: Arc<Mutex<LogBuffer>>,
    readers: Vec<JoinHandle<()>>,
}

/// Outcome of one attempt to start a service.
enum Launch {
    Ready(Box<Running>),
    /// It exited before listening and its logs say the address was in use.
    PortBusy(anyhow::Error),
}

/// Spawns `path` with the default environment overridden by `envs` and waits
/// for its `Listening.` line.
async fn launch(path: &Path, envs: &[(String, String)]) -> anyhow::Result<Launch> {
    let mut cmd = Command::new(path);
    for key in CLEARED_ENV {
        cmd.env_remove(key);
    }
    cmd.envs(DEFAULT_ENV);
    cmd.envs(envs.iter().map(|(k, v)| (k, v)));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawning {}", path.display()))?;
    let pid = child.id().context("a just-spawned child has a pid")?;

    let logs = Arc::new(Mutex::new(LogBuffer::default()));
    let mut readers = Vec::with_capacity(2);
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(pump(out, logs.clone())));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(pump(err, logs.clone())));
    }

    let name = path.display();
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    loop {
        let listening = lock(&logs).listening.clone();
        match listening {
            Some(Ok(addr)) => {
                return Ok(Launch::Ready(Box::new(Running {
                    child,
                    pid,
                    addr,
                    logs,
                    readers,
                })))
            }
            Some(Err(line)) => {
                bail!("{name} logged `{LISTENING_MESSAGE}` without a parsable addr field: {line}")
            }
            None => {}
        }
        if let Some(status) = child.try_wait()? {
            drain(&mut readers).await;
            let (tail, busy) = {
                let logs = lock(&logs);
                let busy = logs.lines.iter().any(|l| {
                    l.contains("Address already in use") || l.contains("address already in use")
                });
                (logs.tail(), busy)
            };
            let err = anyhow!(
                "{name} exited with {status} before logging `{LISTENING_MESSAGE}`; last log lines:\n{tail}"
            );
            if busy {
                return Ok(Launch::PortBusy(err));
            }
            return Err(err);
        }
        if Instant::now() >= deadline {
            // kill_on_drop stops the process when `child` goes out of scope.
            bail!(
                "{name} did not log `{LISTENING_MESSAGE}` within {LISTEN_TIMEOUT:?}; last log lines:\n{}",
                lock(&logs).tail()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Copies lines from one of the child's pipes into `logs` until EOF.
///
/// Reads bytes, not `String`s: a line that is not UTF-8 must not stop the
/// reader, or the pipe would fill and block the service.
async fn pump<R: AsyncRead + Unpin>(pipe: R, logs: Arc<Mutex<LogBuffer>>) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                lock(&logs).push(line.trim_end_matches(['\n', '\r']).to_string());
            }
        }
    }
}

/// Waits (briefly) for the reader tasks to reach EOF so no line is lost.
async fn drain(readers: &mut Vec<JoinHandle<()>>) {
    for reader in readers.drain(..) {
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, reader).await;
    }
}

/// Locks the log buffer; a reader that panicked cannot corrupt a `VecDeque`
/// of finished lines, so poisoning is ignored.
fn lock(logs: &Mutex<LogBuffer>) -> std::sync::MutexGuard<'_, LogBuffer> {
    logs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The last [`LOG_CAPACITY`] lines of one process, and its listen address
/// once seen (recorded as lines arrive, so eviction cannot lose it).
#[derive(Debug, Default)]
struct LogBuffer {
    lines: VecDeque<String>,
    /// `Err` holds a `Listening.` line whose `addr` could not be parsed.
    listening: Option<Result<SocketAddr, String>>,
}

impl LogBuffer {
    fn push(&mut self, line: String) {
        if self.listening.is_none() {
            self.listening = parse_listening(&line);
        }
        if self.lines.len() == LOG_CAPACITY {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    fn tail(&self) -> String {
        let skip = self.lines.len().saturating_sub(LOG_TAIL_LINES);
        let tail: Vec<&str> = self.lines.iter().skip(skip).map(String::as_str).collect();
        tail.join("\n")
    }
}

/// Recognises tracing-subscriber's JSON `Listening.` line and parses its
/// `addr`; `None` for any other line.
///
/// Accepts both the default layout (`{"fields":{"message":..,"addr":..}}`)
/// and `flatten_event(true)` (`{"message":..,"addr":..}`). An unspecified IP
/// (`0.0.0.0`) is replaced by loopback, which is where tests connect.
fn parse_listening(line: &str) -> Option<Result<SocketAddr, String>> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = value.get("fields").unwrap_or(&value);
    if fields.get("message")?.as_str()? != LISTENING_MESSAGE {
        return None;
    }
    let addr = fields
        .get("addr")
        .and_then(serde_json::Value::as_str)
        .and_then(|s| s.parse::<SocketAddr>().ok())
        .map(|mut addr| {
            if addr.ip().is_unspecified() {
                addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
            }
            addr
        });
    Some(addr.ok_or_else(|| line.to_string()))
}

/// `base` with each of `extra`'s keys replaced or added: one test's tweaks over a suite's default environment.
pub fn env_with<'a>(
    mut base: Vec<(&'a str, &'a str)>,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    for (k, v) in extra {
        base.retain(|(key, _)| key != k);
        base.push((k, v));
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_default_json_layout() {
        let line = r#"{"timestamp":"2025-01-01T00:00:00Z","level":"INFO","fields":{"message":"Listening.","addr":"127.0.0.1:40123"},"target":"gateway"}"#;
        assert_eq!(
            parse_listening(line),
            Some(Ok("127.0.0.1:40123".parse().unwrap()))
        );
    }

    #[test]
    fn parses_flattened_layout_and_maps_unspecified_ip() {
        let line = r#"{"level":"INFO","message":"Listening.","addr":"0.0.0.0:8080"}"#;
        assert_eq!(
            parse_listening(line),
            Some(Ok("127.0.0.1:8080".parse().unwrap()))
        );
    }

    #[test]
    fn ignores_other_lines() {
        for line in [
            "not json",
            r#"{"fields":{"message":"Connected to Redis."}}"#,
            r#"{"fields":{"addr":"127.0.0.1:1"}}"#,
            "",
        ] {
            assert_eq!(parse_listening(line), None, "{line}");
        }
    }

    #[test]
    fn reports_listening_line_without_addr() {
        let line = r#"{"fields":{"message":"Listening.","addr":"nowhere"}}"#;
        assert_eq!(parse_listening(line), Some(Err(line.to_string())));
    }

    #[test]
    fn log_buffer_keeps_last_lines_and_first_address() {
        let mut buf = LogBuffer::default();
        buf.push(r#"{"fields":{"message":"Listening.","addr":"127.0.0.1:1"}}"#.to_string());
        buf.push(r#"{"fields":{"message":"Listening.","addr":"127.0.0.1:2"}}"#.to_string());
        for i in 0..LOG_CAPACITY {
            buf.push(format!("line {i}"));
        }
        assert_eq!(buf.lines.len(), LOG_CAPACITY);
        assert_eq!(buf.lines.front().map(String::as_str), Some("line 0"));
        assert_eq!(buf.listening, Some(Ok("127.0.0.1:1".parse().unwrap())));
        assert!(buf.tail().ends_with(&format!("line {}", LOG_CAPACITY - 1)));
    }

    #[test]
    fn env_with_replaces_and_adds() {
        let env = env_with(vec![("A", "1"), ("B", "2")], &[("B", "3"), ("C", "4")]);
        assert_eq!(env, vec![("A", "1"), ("B", "3"), ("C", "4")]);
    }

    #[test]
    fn bin_path_is_next_to_deps() {
        let path = bin_path("gateway");
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some(format!("gateway{}", std::env::consts::EXE_SUFFIX).as_str())
        );
        // Unit tests run from <target>/<profile>/deps; the binary is one up.
        assert_ne!(
            path.parent().and_then(|p| p.file_name()),
            Some(std::ffi::OsStr::new("deps"))
        );
    }

    #[tokio::test]
    async fn spawn_of_unbuilt_binary_says_how_to_build_it() {
        let err = Service::spawn("no-such-service-binary", &[])
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("binary no-such-service-binary not built"),
            "{msg}"
        );
        assert!(msg.contains("cargo build --bins"), "{msg}");
    }
}
