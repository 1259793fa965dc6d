//! A binary run to its exit, for what must stop a service before it starts
//! (a bad configuration value) or never start one (`--help`).

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context as _;

use crate::service::env_with;

/// Runs `bin` with only `envs` over `PORT=0` (no inherited environment) and
/// `args`, and returns its exit status and everything it printed (stdout then
/// stderr); an error if it is still running after `timeout` (it is killed).
pub async fn run_to_exit(
    bin: &Path,
    envs: &[(&str, &str)],
    args: &[&str],
    timeout: Duration,
) -> anyhow::Result<(ExitStatus, String)> {
    let envs = env_with(vec![("PORT", "0")], envs);
    let mut cmd = tokio::process::Command::new(bin);
    cmd.env_clear()
        .envs(envs)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .map_err(|_| anyhow::anyhow!("still running after {timeout:?}"))?
        .with_context(|| format!("cannot run {}", bin.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status, text))
}

/// Asserts that `bin` with `envs` and `args` refuses to start: it exits
/// non-zero within `timeout`, never logs `Listening.`, and its output
/// mentions every one of `needles` (the key, the variable that set it).
pub async fn assert_rejected(
    bin: &Path,
    envs: &[(&str, &str)],
    args: &[&str],
    needles: &[&str],
    timeout: Duration,
) {
    let (status, output) = run_to_exit(bin, envs, args, timeout)
        .await
        .unwrap_or_else(|e| panic!("{envs:?} {args:?}: {e:#}"));
    assert!(
        !status.success(),
        "{envs:?} {args:?} exited {status}:\n{output}"
    );
    for needle in needles {
        assert!(
            output.contains(needle),
            "{envs:?} {args:?}: {needle:?} not in:\n{output}"
        );
    }
    assert!(
        !output.contains("Listening."),
        "{envs:?} {args:?} started anyway:\n{output}"
    );
}
