//! The command line every service binary shares, and the `main` behind it.
//!
//! Each binary's `main.rs` is one call:
//!
//! ```text
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     tickstream_runtime::cli::main(tickstream_runtime::about!(), |config: Config, file, shutdown| {
//!         my_service::run(config, file, shutdown)
//!     })
//!     .await
//! }
//! ```
//!
//! [`main`] parses `--config PATH` and `--print-env`, prints the environment
//! table or loads defaults < file < environment (exiting with an error that
//! names the key), starts logging, then runs the service until SIGINT/SIGTERM.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use clap::{CommandFactory, FromArgMatches, Parser};

use crate::config::{self, ServiceConfig};

/// What `--help` and `--version` say about one binary; [`crate::about!`] fills it from its `Cargo.toml`.
#[derive(Debug, Clone, Copy)]
pub struct About {
    /// The binary's name, as `--version` and `--help` show it (`ingest-binance`).
    pub name: &'static str,
    /// Its version (`CARGO_PKG_VERSION`).
    pub version: &'static str,
    /// What it does, the first line of `--help` (`CARGO_PKG_DESCRIPTION`).
    pub about: &'static str,
}

/// The calling crate's [`About`] from its `Cargo.toml` (package name, version
/// and description), as clap's `#[command(name, version, about)]` would give it.
#[macro_export]
macro_rules! about {
    () => {
        $crate::cli::About {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            about: env!("CARGO_PKG_DESCRIPTION"),
        }
    };
}

/// The future a service runs until: resolves on SIGINT or SIGTERM ([`crate::shutdown::signal`]).
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The options every service binary takes.
#[derive(Debug, Parser)]
struct Cli {
    /// TOML config file (also `TICKSTREAM_CONFIG`); environment variables override it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print every environment variable the service reads, with its default, and exit.
    #[arg(long)]
    print_env: bool,
}

impl Cli {
    /// Parses the process arguments with `about`'s name, version and description;
    /// `--help`, `--version` and usage errors print and exit as clap does.
    fn parse_for(about: About) -> Self {
        let print_env = format!(
            "Print every environment variable {} reads, with its default, and exit",
            about.name
        );
        let mut command = Self::command()
            .name(about.name)
            .version(about.version)
            .about(about.about)
            .mut_arg("print_env", |arg| arg.help(print_env));
        let mut matches = command.get_matches_mut();
        Self::from_arg_matches_mut(&mut matches)
            .map_err(|e| e.format(&mut command))
            .unwrap_or_else(|e| e.exit())
    }
}

/// The whole `main` of a service binary: `--print-env` prints the variables
/// `C` reads and exits; otherwise loads `C` (from `--config` or
/// `TICKSTREAM_CONFIG`, then the environment), starts logging, and awaits
/// `run(config, file, shutdown)`. `file` is passed on for services that reload it.
pub async fn main<C, F, Fut, E>(about: About, run: F) -> anyhow::Result<()>
where
    C: ServiceConfig,
    F: FnOnce(C, Option<PathBuf>, Shutdown) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    anyhow::Error: From<E>,
{
    let cli = Cli::parse_for(about);
    if cli.print_env {
        config::print_env(&C::default(), C::ALIASES);
        return Ok(());
    }
    let file = config::file_from_env(cli.config);
    let config = C::load(file.as_deref())?;
    crate::telemetry::init(config.log())?;
    run(config, file, Box::pin(crate::shutdown::signal())).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_names_the_binary() {
        let about = About {
            name: "ingest-demo",
            version: "9.9.9",
            about: "Demo ticks.",
        };
        let mut command = Cli::command()
            .name(about.name)
            .version(about.version)
            .about(about.about);
        let help = command.render_help().to_string();
        assert!(help.starts_with("Demo ticks."), "{help}");
        assert!(help.contains("--config <PATH>"), "{help}");
        assert_eq!(command.render_version(), "ingest-demo 9.9.9\n");
    }
}
