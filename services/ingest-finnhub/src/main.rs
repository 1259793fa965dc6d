//! The `ingest-finnhub` binary: parse the CLI, load the config, start logging,
//! then stream Finnhub trades until SIGINT/SIGTERM.

use std::path::PathBuf;

use clap::Parser;

/// Finnhub trades for tickstream, published to Redis.
#[derive(Debug, Parser)]
#[command(name = "ingest-finnhub", version, about)]
struct Cli {
    /// TOML config file (also `TICKSTREAM_CONFIG`); environment variables override it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print every environment variable ingest-finnhub reads, with its default, and exit.
    #[arg(long)]
    print_env: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.print_env {
        tickstream_runtime::config::print_env(
            &ingest_finnhub::config::Config::default(),
            ingest_finnhub::config::ALIASES,
        );
        return Ok(());
    }
    let file = tickstream_runtime::config::file_from_env(cli.config);
    let config = ingest_finnhub::config::load(file.as_deref())?;
    tickstream_runtime::telemetry::init(&config.log)?;
    ingest_finnhub::run(config, tickstream_runtime::shutdown::signal()).await?;
    Ok(())
}
