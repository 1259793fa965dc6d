//! The `ingest-sim` binary: parse the CLI, load the config, start logging,
//! then run the simulator until SIGINT/SIGTERM.
//!
//! A bad configuration value exits non-zero before anything starts, with a
//! message that names the key and the variable that set it.

use std::path::PathBuf;

use clap::Parser;

/// Synthetic market ticks for tickstream: geometric Brownian motion per
/// symbol, published to Redis like any ingestor.
#[derive(Debug, Parser)]
#[command(name = "ingest-sim", version, about)]
struct Cli {
    /// TOML config file (also `TICKSTREAM_CONFIG`); environment variables override it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print every environment variable ingest-sim reads, with its default, and exit.
    #[arg(long)]
    print_env: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.print_env {
        tickstream_runtime::config::print_env(
            &ingest_sim::config::Config::default(),
            ingest_sim::config::ALIASES,
        );
        return Ok(());
    }
    let file = tickstream_runtime::config::file_from_env(cli.config);
    let config = ingest_sim::config::load(file.as_deref())?;
    tickstream_runtime::telemetry::init(&config.log)?;
    ingest_sim::run(config, tickstream_runtime::shutdown::signal()).await?;
    Ok(())
}
