//! The `ingest-sim` binary: parse the CLI, load the config, start logging,
//! then run the simulator until SIGINT/SIGTERM.
//!
//! A bad configuration value exits non-zero before anything starts, with a
//! message that names the key and the variable that set it.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tickstream_runtime::cli::main(
        tickstream_runtime::about!(),
        |config: ingest_sim::Config, _file, shutdown| ingest_sim::run(config, shutdown),
    )
    .await
}
