//! A private Redis Cluster (3 masters, 3 replicas) per test.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::port::free_port;
use crate::wait::wait_until;

/// `cluster-node-timeout` of every node: short, so a killed master's replica takes over within seconds.
pub const NODE_TIMEOUT_MS: u64 = 2_000;
/// How long a fresh node gets to answer `PING`.
const NODE_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `--cluster create` plus convergence (`cluster_state:ok` everywhere) may take.
const FORM_TIMEOUT: Duration = Duration::from_secs(60);
/// Masters of the cluster; each gets one replica.
const MASTERS: usize = 3;
/// Fresh port pairs tried per node: a port from [`free_port`] can be taken before redis binds it.
const START_PORT_ATTEMPTS: usize = 5;
/// Bound on one probe of a node, so a half-dead node cannot stall a poll.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Makes temp-dir names unique within one test process.
static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// One `redis-server --cluster-enabled yes` process.
#[derive(Debug)]
struct Node {
    /// Client port.
    port: u16,
    /// Cluster bus port (`--cluster-port`, so it need not be `port + 10000`).
    bus_port: u16,
    /// The process; `None` once killed.
    child: Option<Child>,
    /// Its `--dir` (nodes.conf, redis.log).
    dir: PathBuf,
}

/// A Redis Cluster of 3 masters and 3 replicas on free loopback ports, torn down on drop.
///
/// Built the way an operator builds one (`redis-server --cluster-enabled yes`
/// per node, then `redis-cli --cluster create --cluster-replicas 1`), with a
/// short `cluster-node-timeout` ([`NODE_TIMEOUT_MS`]) so failover tests are
/// quick, and nothing persisted.
#[derive(Debug)]
pub struct RedisCluster {
    /// Every node, masters and replicas as `--cluster create` chose them.
    nodes: Vec<Node>,
    /// Parent of the nodes' directories, removed on drop.
    root: PathBuf,
}

impl RedisCluster {
    /// Starts six nodes, forms the cluster and returns once every node reports `cluster_state:ok`
    /// and agrees that all 16384 slots are served.
    pub async fn start() -> anyhow::Result<Self> {
        let root = std::env::temp_dir().join(format!(
            "tickstream-testkit-cluster-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root)
            .with_context(|| format!("creating cluster dir {}", root.display()))?;
        let mut cluster = Self {
            nodes: Vec::new(),
            root,
        };
        for i in 0..MASTERS * 2 {
            let node = cluster.start_node(i).await?;
            cluster.nodes.push(node);
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for n in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .context("running redis-cli --cluster create (is redis-cli installed?)")?;
        if !out.status.success() {
            bail!(
                "redis-cli --cluster create failed: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        cluster.wait_healthy(FORM_TIMEOUT).await?;
        Ok(cluster)
    }

    async fn start_node(&self, index: usize) -> anyhow::Result<Node> {
        let dir = self.root.join(format!("node{index}"));
        std::fs::create_dir_all(&dir)?;
        for _ in 0..START_PORT_ATTEMPTS {
            let (port, bus_port) = (free_port(), free_port());
            if port == bus_port {
                continue;
            }
            let _ = std::fs::remove_file(dir.join("nodes.conf"));
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string()])
                .args(["--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-port", &bus_port.to_string()])
                .args(["--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
                .args(["--appendonly", "no"])
                .args(["--save", ""])
                // Replicas sync at once instead of after the default 5 s batching delay,
                // so a master killed early in a test already has a replica able to take over.
                .args(["--repl-diskless-sync-delay", "0"])
                .args(["--logfile", "redis.log"])
                .arg("--dir")
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting redis-server (is it installed?)")?;
            let mut node = Node {
                port,
                bus_port,
                child: Some(child),
                dir: dir.clone(),
            };
            let deadline = tokio::time::Instant::now() + NODE_START_TIMEOUT;
            while !node_exited(&mut node) && tokio::time::Instant::now() < deadline {
                if ping(port).await {
                    return Ok(node);
                }
                tokio::time::sleep(crate::wait::POLL_INTERVAL).await;
            }
            // Exited (a port was taken after all) or never answered: try new ports.
            kill_node(&mut node);
        }
        bail!("no cluster node {index} started after {START_PORT_ATTEMPTS} port pairs")
    }

    /// Seed addresses `127.0.0.1:P,...` of every node, as `REDIS_CLUSTER_NODES` takes them.
    pub fn seeds(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Client ports of every node that is still running.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect()
    }

    /// The cluster bus port of the node on `port`.
    pub fn bus_port(&self, port: u16) -> Option<u16> {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .map(|n| n.bus_port)
    }

    /// The client port of the master that serves `slot`, as a running node sees it now.
    pub async fn master_of_slot(&self, slot: u16) -> anyhow::Result<u16> {
        for port in self.ports() {
            if let Ok(map) = slot_map(port).await {
                if let Some((_, _, master)) = map.iter().find(|(a, b, _)| *a <= slot && slot <= *b)
                {
                    return Ok(*master);
                }
            }
        }
        bail!("no running node knows who serves slot {slot}")
    }

    /// The node id (`CLUSTER MYID`) of the node on `port`.
    pub async fn node_id(&self, port: u16) -> anyhow::Result<String> {
        let mut c = conn(port).await?;
        Ok(redis::cmd("CLUSTER")
            .arg("MYID")
            .query_async::<String>(&mut c)
            .await?)
    }

    /// SIGKILLs the node on `port` (a crashed master or replica); the rest of the cluster keeps running.
    pub fn kill(&mut self, port: u16) {
        if let Some(n) = self.nodes.iter_mut().find(|n| n.port == port) {
            kill_node(n);
        }
    }

    /// Waits until every running node reports `cluster_state:ok`, sees all 16384
    /// slots served by running masters, and every replica's link to its master is up
    /// (a replica that never synced cannot take over).
    pub async fn wait_healthy(&self, timeout: Duration) -> anyhow::Result<()> {
        let ports = self.ports();
        wait_until(
            timeout,
            "every cluster node reports cluster_state:ok",
            || {
                let ports = ports.clone();
                async move {
                    for &port in &ports {
                        if !state_ok(port).await {
                            return false;
                        }
                        let Ok(map) = slot_map(port).await else {
                            return false;
                        };
                        let covered: u32 = map.iter().map(|(a, b, _)| u32::from(b - a) + 1).sum();
                        if covered != 16384 || map.iter().any(|(_, _, m)| !ports.contains(m)) {
                            return false;
                        }
                        if !replica_synced(port).await {
                            return false;
                        }
                    }
                    true
                }
            },
        )
        .await
    }

    /// Moves `count` slots from the master on `from` to the master on `to` with
    /// `redis-cli --cluster reshard` (keys migrate too), as an operator would live.
    pub async fn reshard(&self, from: u16, to: u16, count: u16) -> anyhow::Result<()> {
        let from_id = self.node_id(from).await?;
        let to_id = self.node_id(to).await?;
        let out = tokio::process::Command::new("redis-cli")
            .args(["--cluster", "reshard", &format!("127.0.0.1:{from}")])
            .args(["--cluster-from", &from_id, "--cluster-to", &to_id])
            .args(["--cluster-slots", &count.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .await
            .context("running redis-cli --cluster reshard")?;
        if !out.status.success() {
            bail!(
                "redis-cli --cluster reshard failed: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// The tail of a node's `redis.log`, for a failing test's message.
    pub fn log_tail(&self, port: u16) -> String {
        let Some(n) = self.nodes.iter().find(|n| n.port == port) else {
            return String::new();
        };
        let log = std::fs::read_to_string(n.dir.join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            kill_node(n);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The cluster slot of a symbol's hash-tagged names (`ticks:{SYMBOL}`, `price:{SYMBOL}`, ...).
pub fn symbol_slot(symbol: &str) -> u16 {
    let s = redis::cluster_routing::Slot::for_key(format!("ticks:{{{symbol}}}"));
    // `Slot` has no accessor and prints as `Slot(n)`; it is always in 0..16384.
    format!("{s:?}")
        .trim_start_matches("Slot(")
        .trim_end_matches(')')
        .parse()
        .unwrap_or(0)
}

fn kill_node(n: &mut Node) {
    if let Some(mut child) = n.child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn node_exited(n: &mut Node) -> bool {
    matches!(
        n.child.as_mut().map(Child::try_wait),
        Some(Ok(Some(_))) | None
    )
}

async fn conn(port: u16) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(PROBE_TIMEOUT))
        .set_response_timeout(Some(PROBE_TIMEOUT));
    Ok(redis::Client::open(format!("redis://127.0.0.1:{port}"))?
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

async fn ping(port: u16) -> bool {
    let Ok(mut c) = conn(port).await else {
        return false;
    };
    redis::cmd("PING")
        .query_async::<String>(&mut c)
        .await
        .is_ok()
}

async fn state_ok(port: u16) -> bool {
    let Ok(mut c) = conn(port).await else {
        return false;
    };
    redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async::<String>(&mut c)
        .await
        .is_ok_and(|info| info.contains("cluster_state:ok"))
}

/// Whether the node on `port` is a master, or a replica whose link to its master is up.
async fn replica_synced(port: u16) -> bool {
    let Ok(mut c) = conn(port).await else {
        return false;
    };
    let Ok(info) = redis::cmd("INFO")
        .arg("replication")
        .query_async::<String>(&mut c)
        .await
    else {
        return false;
    };
    info.contains("role:master") || info.contains("master_link_status:up")
}

/// `(first slot, last slot, master port)` per range, from `CLUSTER SLOTS` of the node on `port`.
async fn slot_map(port: u16) -> anyhow::Result<Vec<(u16, u16, u16)>> {
    let mut c = conn(port).await?;
    let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut c)
        .await?;
    let mut out = Vec::new();
    for r in ranges {
        let redis::Value::Array(parts) = r else {
            continue;
        };
        let (Some(redis::Value::Int(a)), Some(redis::Value::Int(b)), Some(redis::Value::Array(m))) =
            (parts.first(), parts.get(1), parts.get(2))
        else {
            continue;
        };
        let Some(redis::Value::Int(p)) = m.get(1) else {
            continue;
        };
        out.push((u16::try_from(*a)?, u16::try_from(*b)?, u16::try_from(*p)?));
    }
    Ok(out)
}
