//! Deploy files against the real binaries, the real promtool/Prometheus and
//! the vendored Compose Specification schema.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use deploy_checks::{metric_names_in, repo_root, venv_tool, yaml_to_json};
use serde_json::{json, Value};
use tickstream_testkit::{
    bin_path, free_port, http_get_json, http_get_text, wait_until, RedisServer, Service,
};

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// A compose service that runs one of our binaries.
struct Svc {
    name: String,
    bin: String,
    env: BTreeMap<String, String>,
    compose: Value,
}

fn compose() -> Value {
    yaml_to_json(&repo_root().join("docker-compose.yml")).unwrap()
}

fn tickstream_services(compose: &Value) -> Vec<Svc> {
    let mut out = Vec::new();
    for (name, svc) in compose["services"].as_object().unwrap() {
        if svc["image"] != "tickstream:local" {
            continue;
        }
        let bin = svc["command"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: command must name the binary"))
            .to_owned();
        let env = svc["environment"]
            .as_object()
            .unwrap_or_else(|| panic!("{name}: environment must be a map"))
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect();
        out.push(Svc {
            name: name.clone(),
            bin,
            env,
            compose: svc.clone(),
        });
    }
    assert!(
        out.len() >= 2,
        "no tickstream services found in docker-compose.yml"
    );
    out
}

/// `NAME -> default` as the binary itself reports them.
fn env_table(bin: &str) -> BTreeMap<String, String> {
    let path = bin_path(bin);
    assert!(
        path.exists(),
        "{} not built: run `cargo build --bins` (make test does)",
        path.display()
    );
    let text = run_ok(Command::new(path).arg("--print-env"));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `--print-env | head` must not end in a panic: every binary stops quietly
/// when its reader has gone (here: gone before it writes a line).
#[test]
fn print_env_stops_quietly_when_its_reader_goes_away() {
    for svc in tickstream_services(&compose()) {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(bin_path(&svc.bin))
            .arg("--print-env")
            .env("RUST_BACKTRACE", "0")
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{}: {:?}\n{stderr}",
            svc.bin,
            out.status
        );
    }
}

#[test]
fn prometheus_config_and_rules_pass_promtool() {
    let root = repo_root();
    let out = run_ok(Command::new("promtool").current_dir(&root).args([
        "check",
        "config",
        "prometheus.yml",
    ]));
    assert!(out.contains("SUCCESS"), "{out}");
    let out = run_ok(Command::new("promtool").current_dir(&root).args([
        "check",
        "rules",
        "deploy/prometheus/alerts.yml",
    ]));
    assert!(out.contains("SUCCESS: 5 rules found"), "{out}");
}

#[test]
fn compose_file_validates_against_the_compose_spec_schema() {
    let root = repo_root();
    let out = run_ok(
        Command::new(venv_tool("check-jsonschema").unwrap())
            .current_dir(&root)
            .args([
                "--schemafile",
                "deploy/compose/compose-spec.json",
                "docker-compose.yml",
            ]),
    );
    assert!(out.contains("ok"), "{out}");
    // The validator really rejects what the spec forbids.
    let bad = std::env::temp_dir().join(format!("bad-compose-{}.yml", std::process::id()));
    std::fs::write(
        &bad,
        "services:\n  x:\n    image: a\n    restart: sometimes\n    helthcheck: {}\n",
    )
    .unwrap();
    let out = Command::new(venv_tool("check-jsonschema").unwrap())
        .current_dir(&root)
        .args(["--schemafile", "deploy/compose/compose-spec.json"])
        .arg(&bad)
        .output()
        .unwrap();
    std::fs::remove_file(&bad).ok();
    assert!(
        !out.status.success(),
        "schema accepted an invalid compose file"
    );
}

#[test]
fn dockerfile_passes_hadolint() {
    let out = run_ok(
        Command::new(venv_tool("hadolint").unwrap())
            .current_dir(repo_root())
            .arg("deploy/Dockerfile"),
    );
    assert!(!out.contains("DL") && !out.contains("SC"), "{out}");
}

#[test]
fn compose_env_vars_and_ports_are_the_binaries_own() {
    let compose = compose();
    let compose_text = std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap();
    let mut read_by_any: BTreeSet<String> = BTreeSet::new();
    for svc in tickstream_services(&compose) {
        let table = env_table(&svc.bin);
        read_by_any.extend(table.keys().cloned());
        for key in svc.env.keys() {
            assert!(
                table.contains_key(key),
                "{}: compose passes {key}, which {} does not read",
                svc.name,
                svc.bin
            );
        }
        // The port the container listens on is the binary's default, everywhere compose names it.
        let port = table
            .get("PORT")
            .unwrap_or_else(|| panic!("{} reads no PORT", svc.bin))
            .clone();
        assert_eq!(
            svc.env.get("PORT"),
            Some(&port),
            "{}: PORT differs from the binary's default",
            svc.name
        );
        let health = svc.compose["healthcheck"]["test"].to_string();
        assert!(
            health.contains(&format!("127.0.0.1:{port}/health")),
            "{}: healthcheck {health} not on :{port}",
            svc.name
        );
        let exposed: Vec<String> = svc.compose["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(svc.compose["expose"].as_array().into_iter().flatten())
            .map(|p| p.as_str().unwrap().rsplit(':').next().unwrap().to_owned())
            .collect();
        assert!(
            exposed.contains(&port),
            "{}: neither ports nor expose has {port}: {exposed:?}",
            svc.name
        );
    }
    assert!(compose["services"]["gateway"]["ports"][0]
        .as_str()
        .unwrap()
        .ends_with(":5021"));

    // .env.example: every variable is read by a binary or interpolated by compose,
    // and every interpolated variable is documented there.
    let example = std::fs::read_to_string(repo_root().join(".env.example")).unwrap();
    let documented: BTreeSet<String> = example
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k.trim().to_owned())
        .collect();
    for var in &documented {
        let interpolated = compose_text.contains(&format!("${{{var}:"))
            || compose_text.contains(&format!("${{{var}}}"));
        assert!(
            interpolated || read_by_any.contains(var),
            ".env.example has {var}: dead or misspelt"
        );
    }
    let mut rest = compose_text.as_str();
    while let Some(pos) = rest.find("${") {
        let tail = &rest[pos + 2..];
        let end = tail.find([':', '}', '-']).unwrap();
        let var = &tail[..end];
        assert!(
            documented.contains(var),
            "compose interpolates {var}, undocumented in .env.example"
        );
        rest = &tail[end..];
    }
}

/// Env for running a service here: loopback instead of every upstream, dummy keys.
fn local_env(table: &BTreeMap<String, String>, redis_url: &str) -> Vec<(String, String)> {
    let mut env = vec![("REDIS_URL".to_owned(), redis_url.to_owned())];
    for name in table.keys() {
        if name.starts_with("TICKSTREAM_") || name == "REDIS_URL" {
            continue;
        }
        if name.ends_with("_WS_URL") {
            env.push((name.clone(), "ws://127.0.0.1:9".to_owned()));
        } else if name.ends_with("_URL") {
            env.push((name.clone(), "http://127.0.0.1:9".to_owned()));
        } else if name.ends_with("_API_KEY") {
            env.push((name.clone(), "deploy-check-dummy-key".to_owned()));
        }
    }
    env
}

#[tokio::test]
async fn live_services_pass_promtool_expose_every_queried_metric_and_are_scraped_up() {
    let redis = RedisServer::start().await.unwrap();
    let compose = compose();
    let mut running: Vec<(String, Service)> = Vec::new();
    for svc in tickstream_services(&compose) {
        let table = env_table(&svc.bin);
        let env = local_env(&table, &redis.url());
        let env_refs: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let service = Service::spawn(&svc.bin, &env_refs).await.unwrap();
        running.push((svc.name, service));
    }

    // Every service's /metrics passes promtool's linter; collect what exists.
    let mut exposed: BTreeSet<String> = BTreeSet::new();
    for (name, service) in &running {
        let (code, body) = http_get_text(&service.http_url("/metrics")).await.unwrap();
        assert_eq!(code, 200, "{name} /metrics");
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics failed for {name}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for line in body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            exposed.insert(line[..end].to_owned());
        }
    }

    // Every metric the dashboard and the alert rules query exists somewhere.
    let root = repo_root();
    let dashboard =
        std::fs::read_to_string(root.join("deploy/grafana/dashboards/tickstream.json")).unwrap();
    let rules = std::fs::read_to_string(root.join("deploy/prometheus/alerts.yml")).unwrap();
    let queried: Vec<String> = metric_names_in(&dashboard)
        .into_iter()
        .chain(metric_names_in(&rules))
        .collect();
    assert!(
        queried.len() > 10,
        "dashboard queries too few metrics: {queried:?}"
    );
    for name in &queried {
        assert!(
            exposed.contains(name),
            "{name} is queried by the dashboard/alerts but no service exposes it"
        );
    }

    // A real Prometheus with prometheus.yml's jobs, hosts mapped to the live ports.
    let prom_cfg = yaml_to_json(&root.join("prometheus.yml")).unwrap();
    let mut jobs = Vec::new();
    for job in prom_cfg["scrape_configs"].as_array().unwrap() {
        let name = job["job_name"].as_str().unwrap();
        let (_, service) = running
            .iter()
            .find(|(svc, _)| svc == name)
            .unwrap_or_else(|| panic!("prometheus job {name} matches no compose service"));
        jobs.push(json!({"job_name": name, "metrics_path": "/metrics",
            "static_configs": [{"targets": [service.addr().to_string()]}]}));
    }
    assert_eq!(
        jobs.len(),
        running.len(),
        "some compose service is not scraped by prometheus.yml"
    );
    let dir = std::env::temp_dir().join(format!("tickstream-prom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = json!({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [root.join("deploy/prometheus/alerts.yml").canonicalize().unwrap()],
        "scrape_configs": jobs,
    });
    let config_path: PathBuf = dir.join("prometheus.yml");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let port = free_port();
    let mut prometheus = tokio::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let query = format!("http://127.0.0.1:{port}/api/v1/query?query=up");
    let want = running.len();
    wait_until(
        Duration::from_secs(40),
        "every target up == 1 in Prometheus",
        || {
            let query = query.clone();
            async move {
                let Ok((200, v)) = http_get_json(&query).await else {
                    return false;
                };
                let results = v["data"]["result"].as_array().cloned().unwrap_or_default();
                results.len() == want && results.iter().all(|r| r["value"][1] == "1")
            }
        },
    )
    .await
    .unwrap();
    let (_, rules) = http_get_json(&format!("http://127.0.0.1:{port}/api/v1/rules"))
        .await
        .unwrap();
    let loaded = rules["data"]["groups"][0]["rules"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(loaded, 5, "alert rules not loaded: {rules}");
    prometheus.kill().await.ok();
    std::fs::remove_dir_all(&dir).ok();
}

/// Longest `redis-cluster-init` may take (`redis-cli --cluster create` waits for the join without end).
const INIT_LIMIT: Duration = Duration::from_secs(60);

/// Runs `cmd` to success within `limit`, or fails the test with its output. Its output goes to a
/// file, and on time-out its whole process group is killed: a child left behind (`sh` runs
/// `redis-cli`) would otherwise keep a pipe open.
fn run_for(cmd: &mut Command, limit: Duration) {
    use std::os::unix::process::CommandExt;
    let log = std::env::temp_dir().join(format!("run-for-{}.log", std::process::id()));
    let file = std::fs::File::create(&log).unwrap();
    let mut child = cmd
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(
        status.is_some_and(|s| s.success()),
        "{cmd:?} failed or took over {limit:?} ({status:?}):\n{text}"
    );
}

/// Kills the processes it holds when the test ends, however it ends.
struct Children(Vec<std::process::Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The compose `cluster` profile, run without Docker: its six Redis nodes'
/// command on real `redis-server` processes (one loopback address each, as
/// containers have one IP each) and `redis-cluster-init`'s script through
/// `sh`, with only the names compose would resolve put in by the test
/// (`getent hosts` answers, node 1's address, and a free port for 6379).
/// The cluster must form with 3 masters and 3 replicas, and a second run of
/// the script must leave it alone.
#[test]
fn compose_cluster_profile_forms_a_3_master_3_replica_cluster_and_is_idempotent() {
    let compose = compose();
    let services = compose["services"].as_object().unwrap();
    let ips: Vec<String> = (1..=6).map(|n| format!("127.0.0.1{n}")).collect();
    // One port free on all six addresses, with its cluster bus port (+10000).
    let port = (0..200)
        .map(|_| free_port())
        .find(|&p| {
            p < 55_000
                && ips.iter().all(|ip| {
                    std::net::TcpListener::bind((ip.as_str(), p)).is_ok()
                        && std::net::TcpListener::bind((ip.as_str(), p + 10_000)).is_ok()
                })
        })
        .expect("a port free on 127.0.0.11-16");
    let dir = std::env::temp_dir().join(format!("compose-cluster-{}", std::process::id()));
    let mut nodes = Children(Vec::new());
    for (n, ip) in ips.iter().enumerate() {
        let svc = &services[&format!("redis-node-{}", n + 1)];
        assert_eq!(svc["profiles"], json!(["cluster"]), "{svc}");
        let cmd: Vec<&str> = svc["command"]
            .as_array()
            .expect("a node's command is a list")
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(cmd[0], "redis-server", "{cmd:?}");
        assert!(cmd.contains(&"--cluster-enabled"), "{cmd:?}");
        let node_dir = dir.join(format!("node{}", n + 1));
        std::fs::create_dir_all(&node_dir).unwrap();
        let child = Command::new("redis-server")
            .args(&cmd[1..])
            // A container has one address; here the nodes share the host, so each is told its own.
            .args(["--bind", ip, "--cluster-announce-ip", ip])
            .args(["--port", &port.to_string(), "--protected-mode", "no"])
            .arg("--dir")
            .arg(&node_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        nodes.0.push(child);
    }
    let cli = |ip: &str, args: &[&str]| {
        Command::new("redis-cli")
            .args(["-h", ip, "-p", &port.to_string()])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    for ip in &ips {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while cli(ip, &["ping"]).trim() != "PONG" {
            assert!(
                std::time::Instant::now() < deadline,
                "node {ip} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    let init = &services["redis-cluster-init"];
    assert_eq!(init["profiles"], json!(["cluster"]));
    assert_eq!(init["entrypoint"], json!(["sh", "-c"]));
    let script = init["command"][0]
        .as_str()
        .expect("the init script")
        .to_owned();
    // What compose and the containers' network would do.
    let script = script
        .replace("$$", "$")
        .replace("-h redis-node-1", &format!("-h 127.0.0.11 -p {port}"))
        .replace(":6379", &format!(":{port}"));
    let script = format!("getent() {{ echo \"127.0.0.1${{2##*-}} $2\"; }}\n{script}");
    run_for(Command::new("sh").arg("-c").arg(&script), INIT_LIMIT);

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let info = cli("127.0.0.11", &["cluster", "info"]);
        if ips
            .iter()
            .all(|ip| cli(ip, &["cluster", "info"]).contains("cluster_state:ok"))
        {
            assert!(info.contains("cluster_size:3"), "{info}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no cluster_state:ok: {info}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let roles = |text: &str, role: &str| {
        text.lines()
            .filter(|l| {
                l.split_whitespace()
                    .nth(2)
                    .is_some_and(|f| f.split(',').any(|r| r == role))
            })
            .count()
    };
    // Replicas report their role once they have synced with their master.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let nodes_text = loop {
        let t = cli("127.0.0.11", &["cluster", "nodes"]);
        if roles(&t, "master") == 3 && roles(&t, "slave") == 3 {
            break t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not 3 masters + 3 replicas:\n{t}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Run again (a restarted stack): the formed cluster is left as it is.
    run_for(Command::new("sh").arg("-c").arg(&script), INIT_LIMIT);
    let again = cli("127.0.0.11", &["cluster", "nodes"]);
    let ids = |t: &str| {
        let mut v: Vec<String> = t
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        ids(&again),
        ids(&nodes_text),
        "the second run changed the cluster"
    );
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}
