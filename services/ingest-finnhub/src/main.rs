//! The `ingest-finnhub` binary: parse the CLI, load the config, start logging,
//! then stream Finnhub trades until SIGINT/SIGTERM.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tickstream_upstream::main::<ingest_finnhub::FinnhubConfig>(tickstream_runtime::about!()).await
}
