//! Configuration at the process boundary: bad values stop the real binary at
//! start with a message naming the key; a TOML file is honoured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tickstream_testkit::{
    assert_rejected, env_with, free_port, http_get_json, wait_until, Service,
};

/// A config error must stop the process long before this.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ingest-sim"))
}

/// A Redis URL nothing listens on: config errors must fire before any connection.
fn dead_redis() -> String {
    format!("redis://127.0.0.1:{}", free_port())
}

/// A TOML file unique to this test process and `name`.
fn write_toml(name: &str, body: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ingest-sim-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, body).unwrap();
    path
}

/// Runs the binary with only `envs` and `args` (Redis unreachable), and
/// returns whether it succeeded and everything it printed.
async fn run_to_exit(envs: &[(&str, &str)], args: &[&str]) -> (std::process::ExitStatus, String) {
    let redis = dead_redis();
    let envs = env_with(vec![("HOST", "127.0.0.1"), ("REDIS_URL", &redis)], envs);
    tickstream_testkit::run_to_exit(bin(), &envs, args, EXIT_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{envs:?} {args:?}: {e:#}"))
}

/// Environment, CLI arguments, and what the output must mention.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a [&'a str]);

#[tokio::test]
async fn bad_values_exit_nonzero_naming_the_key() {
    let bad_file = write_toml("bad", "[sim]\nrate = -5.0\n");
    let bad_file = bad_file.to_str().unwrap();
    let cases: &[Case] = &[
        (&[("PORT", "abc")], &[], &["`port`", "PORT"]),
        (&[("PORT", "70000")], &[], &["`port`"]),
        (
            &[("SYMBOLS", "BAD SYMBOL")],
            &[],
            &["`sim.symbols`", "SYMBOLS", "BAD SYMBOL"],
        ),
        (&[("SYMBOLS", "AAPL,x*y")], &[], &["`sim.symbols`", "x*y"]),
        (
            &[("SYMBOLS", ",,")],
            &[],
            &["`sim.symbols`", "at least one"],
        ),
        (
            &[("TICKSTREAM_SIM__RATE", "-1")],
            &[],
            &["`sim.rate`", "TICKSTREAM_SIM__RATE"],
        ),
        (
            &[("TICKSTREAM_SIM__RATE", "fast")],
            &[],
            &["sim.rate", "TICKSTREAM_SIM__RATE"],
        ),
        (&[("TICKSTREAM_SIM__RATE", "2000000")], &[], &["`sim.rate`"]),
        (
            &[("TICKSTREAM_SIM__HEARTBEAT_SECS", "0")],
            &[],
            &["`sim.heartbeat_secs`"],
        ),
        (
            &[("TICKSTREAM_SIM__PRICE_TTL_SECS", "0")],
            &[],
            &["`sim.price_ttl_secs`"],
        ),
        (&[("TICKSTREAM_SIM__SEED", "-3")], &[], &["sim.seed"]),
        (
            &[("REDIS_URL", "http://localhost:6379")],
            &[],
            &["`redis_url`", "REDIS_URL"],
        ),
        (&[("LOG_FORMAT", "xml")], &[], &["format"]),
        (&[("LOG_LEVEL", "info,=[")], &[], &["LOG_LEVEL"]),
        (
            &[],
            &["--config", "/nonexistent/ingest-sim.toml"],
            &["/nonexistent/ingest-sim.toml"],
        ),
        (&[], &["--config", bad_file], &["`sim.rate`"]),
        (&[("TICKSTREAM_CONFIG", bad_file)], &[], &["`sim.rate`"]),
    ];
    let redis = dead_redis();
    for (envs, args, needles) in cases {
        let envs = env_with(vec![("HOST", "127.0.0.1"), ("REDIS_URL", &redis)], envs);
        assert_rejected(bin(), &envs, args, needles, EXIT_TIMEOUT).await;
    }
    std::fs::remove_file(bad_file).ok();
}

#[tokio::test]
async fn help_and_version_exit_zero() {
    let (status, output) = run_to_exit(&[], &["--help"]).await;
    assert!(status.success() && output.contains("--config"), "{output}");
    let (status, output) = run_to_exit(&[], &["--version"]).await;
    assert!(
        status.success() && output.contains("ingest-sim"),
        "{output}"
    );
}

#[tokio::test]
async fn toml_file_is_honoured_and_env_overrides_it() {
    let file = write_toml(
        "good",
        "[sim]\nsymbols = [\"aapl\", \"MSFT\", \"GBP/USD\"]\nrate = 3.0\nheartbeat_secs = 5\n",
    );
    let path = file.to_str().unwrap();
    let redis = dead_redis();
    let svc = Service::spawn_path(bin(), &[("TICKSTREAM_CONFIG", path), ("REDIS_URL", &redis)])
        .await
        .unwrap();
    let (_, body) = http_get_json(&svc.http_url("/health")).await.unwrap();
    assert_eq!(
        body["symbols"],
        serde_json::json!(["AAPL", "MSFT", "GBP/USD"]),
        "{body}"
    );
    assert_eq!(body["rate"], 3.0);
    drop(svc);

    let svc = Service::spawn_path(
        bin(),
        &[
            ("TICKSTREAM_CONFIG", path),
            ("REDIS_URL", &redis),
            ("SYMBOLS", "NVDA"),
        ],
    )
    .await
    .unwrap();
    wait_until(EXIT_TIMEOUT, "/health to list NVDA only", || async {
        http_get_json(&svc.http_url("/health"))
            .await
            .is_ok_and(|(_, b)| b["symbols"] == serde_json::json!(["NVDA"]) && b["rate"] == 3.0)
    })
    .await
    .unwrap();
    std::fs::remove_file(&file).ok();
}
