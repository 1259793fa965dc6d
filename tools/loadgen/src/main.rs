//! `loadgen` binary: parse the CLI, then run, publish or tabulate.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use loadgen::publisher::Publisher;
use loadgen::report::{markdown_with_baseline, Report};
use loadgen::run::{symbol_names, RunConfig};
use loadgen::shard::ShardSpec;

/// Load generator for tickstream benchmarks (see scripts/bench.sh).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Worker threads of the (single) tokio runtime.
    #[arg(long, global = true, default_value_t = 2)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Clients (and, with --redis-url, the publisher): one measured run.
    Run {
        #[command(flatten)]
        cfg: RunConfig,
        /// Write the JSON report here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Only publish ticks into Redis at a fixed rate (for use with other clients).
    Publish {
        /// Redis URL.
        #[arg(long)]
        redis_url: String,
        /// Total ticks/s.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// Number of symbols.
        #[arg(long, default_value_t = 100)]
        symbols: usize,
        /// Symbol name prefix.
        #[arg(long, default_value = "BENCH")]
        symbol_prefix: String,
        /// Seconds to publish for.
        #[arg(long, default_value_t = 30.0)]
        duration: f64,
    },
    /// Internal: one shard of `run --shards N`, started and steered by that run over stdin/stdout.
    #[command(hide = true)]
    Shard {
        /// What to run, as JSON (`loadgen::shard::ShardSpec`).
        #[arg(long)]
        spec: String,
    },
    /// Combine run reports into a Markdown table (and a JSON array) with ratios.
    Report {
        /// JSON reports written by `run --json`.
        files: Vec<PathBuf>,
        /// The servers being judged (repeatable); default: every server in the reports but the reference.
        #[arg(long)]
        candidate: Vec<String>,
        /// The server it is compared with.
        #[arg(long, default_value = "reference")]
        reference: String,
        /// The naive fan-out baseline each candidate is also set against (CPU per message), where it ran.
        #[arg(long, default_value = loadgen::report::BASELINE)]
        baseline: String,
        /// One line describing the machine.
        #[arg(long, default_value = "unknown machine")]
        machine: String,
        /// Write the Markdown here (else stdout).
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Write all reports as one JSON array here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async_main(cli.command))
}

async fn async_main(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run { cfg, json } => {
            let report = loadgen::run(cfg).await?;
            print!("{}", report.summary());
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&report)?;
                std::fs::write(&path, text + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        Command::Shard { spec } => {
            let spec: ShardSpec = serde_json::from_str(&spec).context("parsing --spec")?;
            loadgen::shard::serve(spec).await
        }
        Command::Publish {
            redis_url,
            rate,
            symbols,
            symbol_prefix,
            duration,
        } => {
            anyhow::ensure!(
                duration.is_finite() && (0.0..=86_400.0).contains(&duration),
                "--duration must be between 0 and 86400 seconds, got {duration}"
            );
            let names = symbol_names(&symbol_prefix, symbols);
            let mut p = Publisher::connect(&redis_url, &names, rate).await?;
            p.seed_prices().await?;
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let task = tokio::spawn(p.run(stop_rx, Arc::new(AtomicBool::new(false))));
            tokio::time::sleep(Duration::from_secs_f64(duration)).await;
            let _ = stop_tx.send(true);
            let published = task.await?;
            println!(
                "published {} ticks over {symbols} symbols in {duration} s ({} failed pipelines)",
                published.total, published.errors
            );
            Ok(())
        }
        Command::Report {
            files,
            candidate,
            reference,
            baseline,
            machine,
            markdown: md_path,
            json,
        } => {
            let mut reports = Vec::with_capacity(files.len());
            for f in &files {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?;
                let r: Report = serde_json::from_str(&text)
                    .with_context(|| format!("parsing {}", f.display()))?;
                reports.push(r);
            }
            // Scenario, then load, then server: each reference row sits under its gateway row,
            // and a run with stalled clients under its twin without.
            reports.sort_by(|a, b| {
                (&a.scenario, a.rate, a.clients, &a.server, a.stalled.len()).cmp(&(
                    &b.scenario,
                    b.rate,
                    b.clients,
                    &b.server,
                    b.stalled.len(),
                ))
            });
            let candidates = if candidate.is_empty() {
                let mut seen: Vec<String> = Vec::new();
                for r in &reports {
                    if r.server != reference && r.server != baseline && !seen.contains(&r.server) {
                        seen.push(r.server.clone());
                    }
                }
                seen
            } else {
                candidate
            };
            let md = markdown_with_baseline(&reports, &candidates, &reference, &baseline, &machine);
            match md_path {
                Some(p) => {
                    std::fs::write(&p, &md).with_context(|| format!("writing {}", p.display()))?
                }
                None => print!("{md}"),
            }
            if let Some(p) = json {
                std::fs::write(&p, serde_json::to_string_pretty(&reports)? + "\n")
                    .with_context(|| format!("writing {}", p.display()))?;
            }
            Ok(())
        }
    }
}
