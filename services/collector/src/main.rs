//! `flick-collector`: samples this host (default), or `simulate`s a fleet.

use std::time::Duration;

use clap::{Parser, Subcommand};

use flick_collector::{Config, simulate};
use flick_shared::{service, shutdown};

const NAME: &str = "flick-collector";

#[derive(Debug, Parser)]
#[command(
    version,
    about = "FLick collector: publishes this host's metrics to NATS every second"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sample this host and publish (the default).
    Run,
    /// Exit 0 when the running collector took a sample recently (`collector.heartbeat_path`).
    Healthcheck,
    /// Load the configuration as `run` would, print "configuration ok" and exit 0, or print the
    /// error and exit 2; nothing is sampled or published.
    CheckConfig,
    /// Publish synthetic samples for N virtual servers (load generator and demo).
    Simulate {
        /// Number of virtual servers.
        #[arg(long, default_value_t = 100)]
        servers: usize,
        /// The first N servers hold CPU above 90 % (alerts fire).
        #[arg(long, default_value_t = 0)]
        hot: usize,
        /// Time between two samples of one server.
        #[arg(long, default_value_t = 1_000)]
        interval_ms: u64,
        /// First publish this many past intervals per server, as fast as NATS takes them.
        #[arg(long, default_value_t = 0)]
        backfill: u64,
        /// Then publish live for this long (default: until stopped; 0 after a backfill).
        #[arg(long)]
        duration_secs: Option<u64>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Publishes awaiting acknowledgement at once.
        #[arg(long, default_value_t = 1_024)]
        max_in_flight: usize,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(Command::CheckConfig) = cli.command {
        return service::check_config::<Config>(NAME);
    }
    let config: Config = match service::start(NAME) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let command = cli.command.unwrap_or(Command::Run);
    if let Command::Healthcheck = command {
        return healthcheck(&config);
    }
    let stop = shutdown::on_signal();
    let outcome = match command {
        Command::Healthcheck | Command::CheckConfig => Ok(()),
        Command::Run => flick_collector::run(config, stop).await.map(|_report| ()),
        Command::Simulate {
            servers,
            hot,
            interval_ms,
            backfill,
            duration_secs,
            seed,
            max_in_flight,
        } => {
            let options = simulate::SimulateOptions {
                servers,
                hot,
                interval: Duration::from_millis(interval_ms.max(1)),
                backfill,
                duration: duration_secs.map(Duration::from_secs),
                seed,
                max_in_flight: max_in_flight.clamp(1, 4_096),
            };
            simulate::run(config, options, stop).await.map(|report| {
                tracing::info!(
                    published = report.published,
                    elapsed_secs = report.elapsed.as_secs_f64(),
                    per_second = report.per_second().round(),
                    "Simulation finished"
                );
            })
        }
    };
    service::finish(NAME, outcome)
}

/// Checks the heartbeat file: a sample within three intervals (and at least 5 s) is healthy.
fn healthcheck(config: &Config) -> std::process::ExitCode {
    let Some(path) = &config.collector.heartbeat_path else {
        eprintln!("{NAME}: collector.heartbeat_path is not set: nothing to check");
        return std::process::ExitCode::from(2);
    };
    let max_age = Duration::from_millis((config.collector.interval_ms * 3).max(5_000));
    match flick_collector::heartbeat::check(path, max_age) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("{NAME}: unhealthy: {reason}");
            std::process::ExitCode::FAILURE
        }
    }
}
