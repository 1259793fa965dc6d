//! `gateway` binary: parse the CLI, load config, start logging, run.

use std::path::PathBuf;

use clap::Parser;
use gateway::config::{Config, ALIASES};
use tickstream_runtime::{config, shutdown, telemetry};

/// WebSocket + REST gateway for tickstream (port 5021 by default).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML config file (also TICKSTREAM_CONFIG); environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print every environment variable the gateway reads, with its default, and exit.
    #[arg(long)]
    print_env: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.print_env {
        config::print_env(&Config::default(), ALIASES);
        return Ok(());
    }
    let file = config::file_from_env(cli.config);
    let cfg: Config = config::load(&Config::default(), file.as_deref(), ALIASES)?;
    telemetry::init(&cfg.log)?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "Starting gateway.");
    gateway::run(cfg, shutdown::signal()).await
}
