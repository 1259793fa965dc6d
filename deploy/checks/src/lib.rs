//! Deploy checks: prove on a machine without a Docker engine that what
//! `docker compose up` would run is consistent with the binaries.
//!
//! The tests in `tests/deploy.rs` validate `docker-compose.yml` against the
//! vendored Compose Specification schema, lint `deploy/Dockerfile` with
//! hadolint, run `promtool` on `prometheus.yml`, the alert rules and every
//! service's live `/metrics`, start a real Prometheus against the running
//! services, and check that every environment variable, port and metric name
//! the deploy files use is one the binaries really have.
//!
//! # Layout
//! - [`repo_root`], [`venv_tool`]: where the files and the pinned tools are.
//! - [`yaml_to_json`]: YAML parsing through the tools venv's ruamel.yaml.
//! - [`metric_names_in`]: the `tickstream_*`/`process_*` names a query text uses.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// The repository root, where `docker-compose.yml` lives.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A tool from the pinned venv that `scripts/ensure-deps.sh tools` creates.
pub fn venv_tool(name: &str) -> anyhow::Result<PathBuf> {
    let path = repo_root().join(".venv-tools/bin").join(name);
    if !path.exists() {
        bail!(
            "{} missing: run `scripts/ensure-deps.sh tools` (make test does)",
            path.display()
        );
    }
    Ok(path)
}

/// Parses a YAML file into JSON with ruamel.yaml (safe loader: anchors and merge keys resolved).
pub fn yaml_to_json(path: &Path) -> anyhow::Result<serde_json::Value> {
    let python = venv_tool("python")?;
    let script = "import json,sys\nfrom ruamel.yaml import YAML\nprint(json.dumps(YAML(typ='safe').load(open(sys.argv[1]))))";
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .context("running python")?;
    if !out.status.success() {
        bail!(
            "cannot parse {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("python printed invalid JSON")
}

/// Every `tickstream_*` and `process_*` metric name mentioned in `text` (PromQL, JSON, YAML).
pub fn metric_names_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in ["tickstream_", "process_"] {
        let mut rest = text;
        while let Some(pos) = rest.find(prefix) {
            let before_ok = pos == 0
                || !rest[..pos]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            let tail = &rest[pos..];
            let len = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            if before_ok {
                out.push(tail[..len].to_owned());
            }
            rest = &tail[len..];
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_metric_names() {
        let q = r#"histogram_quantile(0.99, sum by (le) (rate(tickstream_gateway_tick_latency_seconds_bucket[1m]))) + process_resident_memory_bytes{job="x"} my_tickstream_x"#;
        assert_eq!(
            metric_names_in(q),
            vec![
                "process_resident_memory_bytes",
                "tickstream_gateway_tick_latency_seconds_bucket"
            ]
        );
    }
}
