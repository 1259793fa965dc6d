//! The `ingest-coinbase` binary: parse the CLI, load the config, start logging,
//! then stream Coinbase tickers until SIGINT/SIGTERM.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tickstream_upstream::main::<ingest_coinbase::CoinbaseConfig>(tickstream_runtime::about!()).await
}
