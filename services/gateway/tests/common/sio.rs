//! Running the stock Socket.IO clients (npm `socket.io-client`, PyPI
//! `python-socketio`) as child processes and reading their JSON-line output.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// What to do when the clients are missing.
pub const INSTALL_HINT: &str =
    "run `scripts/ensure-sio-clients.sh` (make test runs it) to install the Socket.IO test clients";

/// `services/gateway/tests/clients`.
pub fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `node`, after checking socket.io-client is installed (fails the test with the install hint otherwise).
pub fn node() -> Command {
    let pkg = clients_dir().join("node_modules/socket.io-client/package.json");
    assert!(
        pkg.exists(),
        "socket.io-client is not installed ({} missing): {INSTALL_HINT}",
        pkg.display()
    );
    let mut cmd = Command::new("node");
    cmd.env("NODE_PATH", clients_dir().join("node_modules"));
    cmd
}

/// The venv's python, after checking python-socketio is installed there.
pub fn python() -> Command {
    let py = workspace_root().join(".venv-sio/bin/python");
    assert!(
        py.exists(),
        "python-socketio venv is not installed ({} missing): {INSTALL_HINT}",
        py.display()
    );
    let mut cmd = Command::new(py);
    cmd.env("PYTHONUNBUFFERED", "1");
    cmd
}

/// A client process: commands on stdin, one line per event on stdout.
pub struct ClientProc {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    /// Every line read so far, for assertions over the whole run.
    pub seen: Vec<String>,
}

impl ClientProc {
    pub fn spawn(name: &str, mut cmd: Command) -> ClientProc {
        cmd.current_dir(clients_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}; {INSTALL_HINT}"));
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        ClientProc {
            name: name.to_owned(),
            child,
            stdin,
            lines,
            stderr,
            seen: Vec::new(),
        }
    }

    fn context(&self) -> String {
        let err = self.stderr.lock().unwrap().clone();
        format!(
            "{}: lines so far:\n{}\nstderr:\n{err}",
            self.name,
            self.seen.join("\n")
        )
    }

    /// Writes one JSON command line.
    pub async fn cmd(&mut self, v: Value) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{v}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// The next raw output line, within `timeout`.
    pub async fn next_line(&mut self, timeout: Duration) -> String {
        let line = match tokio::time::timeout(timeout, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => panic!("{} exited; {}", self.name, self.context()),
            Ok(Err(e)) => panic!("{} stdout error {e}; {}", self.name, self.context()),
            Err(_) => panic!(
                "{} printed nothing for {timeout:?}; {}",
                self.name,
                self.context()
            ),
        };
        self.seen.push(line.clone());
        line
    }

    /// The next output line, or `None` once the process closed its output (exited); panics after `timeout`.
    pub async fn line_or_exit(&mut self, timeout: Duration) -> Option<String> {
        match tokio::time::timeout(timeout, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Ok(Ok(None)) => None,
            Ok(Err(e)) => panic!("{} stdout error {e}; {}", self.name, self.context()),
            Err(_) => panic!(
                "{} printed nothing for {timeout:?}; {}",
                self.name,
                self.context()
            ),
        }
    }

    /// Reads lines until one satisfies `pred` (lines not matching are kept in `seen`).
    pub async fn wait_line(
        &mut self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                panic!("timed out waiting for {what}; {}", self.context());
            }
            let line = tokio::time::timeout(left, self.next_line(left + Duration::from_millis(1)))
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}; {}", self.context()));
            if pred(&line) {
                return line;
            }
        }
    }

    /// Reads JSON events until one named `ev` (and satisfying `pred`) arrives.
    pub async fn wait_event(
        &mut self,
        timeout: Duration,
        ev: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let line = self
            .wait_line(timeout, &format!("event {ev}"), |l| {
                serde_json::from_str::<Value>(l).is_ok_and(|v| v["ev"] == ev && pred(&v))
            })
            .await;
        serde_json::from_str(&line).unwrap()
    }

    /// Every event named `ev` read so far.
    pub fn events(&self, ev: &str) -> Vec<Value> {
        self.seen
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["ev"] == ev)
            .collect()
    }

    /// Asks the client to exit and waits for it.
    pub async fn exit(mut self) {
        self.cmd(serde_json::json!({"exit": true})).await;
        drop(self.stdin.take());
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit", self.name))
            .unwrap();
        assert!(
            status.success(),
            "{} exited with {status}; {}",
            self.name,
            self.context()
        );
    }

    /// Kills a client that never exits by itself (the original service's snippets run forever).
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}
