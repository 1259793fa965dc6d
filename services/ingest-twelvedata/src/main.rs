//! The `ingest-twelvedata` binary: parse the CLI, load the config, start logging,
//! then stream Twelve Data prices until SIGINT/SIGTERM.

use std::path::PathBuf;

use clap::Parser;

/// Twelve Data prices for tickstream, published to Redis.
#[derive(Debug, Parser)]
#[command(name = "ingest-twelvedata", version, about)]
struct Cli {
    /// TOML config file (also `TICKSTREAM_CONFIG`); environment variables override it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print every environment variable ingest-twelvedata reads, with its default, and exit.
    #[arg(long)]
    print_env: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.print_env {
        tickstream_runtime::config::print_env(
            &ingest_twelvedata::config::Config::default(),
            ingest_twelvedata::config::ALIASES,
        );
        return Ok(());
    }
    let file = tickstream_runtime::config::file_from_env(cli.config);
    let config = ingest_twelvedata::config::load(file.as_deref())?;
    tickstream_runtime::telemetry::init(&config.log)?;
    ingest_twelvedata::run(config, tickstream_runtime::shutdown::signal()).await?;
    Ok(())
}
