//! The `ingest-binance` binary: parse the CLI, load the config, start logging,
//! then stream Binance tickers until SIGINT/SIGTERM; SIGHUP reloads the symbols.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tickstream_runtime::cli::main(tickstream_runtime::about!(), ingest_binance::run).await
}
