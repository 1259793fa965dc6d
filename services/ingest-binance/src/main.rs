//! The `ingest-binance` binary: parse the CLI, load the config, start logging,
//! then stream Binance tickers until SIGINT/SIGTERM; SIGHUP reloads the symbols.

use std::path::PathBuf;

use clap::Parser;

/// Binance spot 24hr tickers for tickstream, published to Redis.
#[derive(Debug, Parser)]
#[command(name = "ingest-binance", version, about)]
struct Cli {
    /// TOML config file (also `TICKSTREAM_CONFIG`); environment variables override it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print every environment variable ingest-binance reads, with its default, and exit.
    #[arg(long)]
    print_env: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.print_env {
        tickstream_runtime::config::print_env(
            &ingest_binance::config::Config::default(),
            ingest_binance::config::ALIASES,
        );
        return Ok(());
    }
    let file = tickstream_runtime::config::file_from_env(cli.config);
    let config = ingest_binance::config::load(file.as_deref())?;
    tickstream_runtime::telemetry::init(&config.log)?;
    ingest_binance::run(config, file, tickstream_runtime::shutdown::signal()).await?;
    Ok(())
}
