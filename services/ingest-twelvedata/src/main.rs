//! The `ingest-twelvedata` binary: parse the CLI, load the config, start logging,
//! then stream Twelve Data prices until SIGINT/SIGTERM.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tickstream_upstream::main::<ingest_twelvedata::TwelveDataConfig>(tickstream_runtime::about!())
        .await
}
