//! The `gateway` binary: parse the CLI, load the config, start logging, then
//! serve clients until SIGINT/SIGTERM.
//!
//! A bad configuration value exits non-zero before anything starts, with a
//! message that names the key and the variable that set it.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tickstream_runtime::cli::main(
        tickstream_runtime::about!(),
        |config: gateway::config::Config, _file, shutdown| gateway::run(config, shutdown),
    )
    .await
}
