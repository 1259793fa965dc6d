//! The `analytics` binary: parse the CLI, load the config, start logging,
//! then compute candles, indicators, signals and the market mood until
//! SIGINT/SIGTERM.
//!
//! A bad configuration value exits non-zero before anything starts, with a
//! message that names the key and the variable that set it.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tickstream_runtime::cli::main(
        tickstream_runtime::about!(),
        |config: analytics::Config, _file, shutdown| analytics::run(config, shutdown),
    )
    .await
}
