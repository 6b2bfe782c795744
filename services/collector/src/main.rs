//! `flick-collector`: samples this host (default), or `simulate`s a fleet.

use std::time::Duration;

use clap::{Parser, Subcommand};

use flick_collector::{Config, enroll, simulate};
use flick_shared::{service, shutdown};

const NAME: &str = "flick-collector";

#[derive(Debug, Parser)]
#[command(
    version,
    about = "FLick collector: publishes this host's metrics to NATS every second"
)]
struct Cli {
    /// Run as the host enrolled in this directory (`enroll` writes it; the installed service
    /// uses /var/lib/flick-collector). `collector.state_dir` sets it too.
    #[arg(long, global = true)]
    state_dir: Option<std::path::PathBuf>,
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
    /// Join a hub: generate this host's key, present it with an enrolment token, store the
    /// identity the hub issues in the state directory (default /var/lib/flick-collector).
    Enroll {
        /// The hub's URL (https://hub.example.com).
        #[arg(long)]
        gateway: String,
        /// The enrolment token (from "Add server" in the dashboard, or POST /api/v1/enrollments).
        /// Random base64url, so it may begin with `-`: taken as a value whatever it starts with.
        #[arg(long, allow_hyphen_values = true)]
        token: String,
        /// `sha256:<hex>` of the hub's CA: enrol only with the hub holding it.
        #[arg(long)]
        ca_sha256: Option<String>,
    },
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
    let mut config: Config = match service::start(NAME) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let state_dir = cli
        .state_dir
        .clone()
        .or_else(|| config.collector.state_dir.clone().map(Into::into));
    let command = cli.command.unwrap_or(Command::Run);
    if let Command::Healthcheck = command {
        return healthcheck(&config);
    }
    if let Command::Enroll {
        gateway,
        token,
        ca_sha256,
    } = &command
    {
        let options = enroll::EnrollOptions {
            gateway: gateway.clone(),
            token: token.clone(),
            state_dir: state_dir.unwrap_or_else(|| enroll::DEFAULT_STATE_DIR.into()),
            ca_sha256: ca_sha256.clone(),
            hostname: config
                .collector
                .hostname
                .clone()
                .unwrap_or_else(flick_shared::nats::sysname),
        };
        return match enroll::enroll(&options).await {
            Ok(enrolled) => {
                eprintln!(
                    "{NAME}: enrolled as server {} (state in {})",
                    enrolled.server_id,
                    options.state_dir.display()
                );
                std::process::ExitCode::SUCCESS
            }
            Err(err) => service::finish(NAME, Err(err)),
        };
    }
    if let (Command::Run, Some(dir)) = (&command, &state_dir)
        && let Err(err) = enroll::apply(&mut config, dir)
    {
        return service::finish(NAME, Err(err));
    }
    let stop = shutdown::on_signal();
    let outcome = match command {
        Command::Healthcheck | Command::CheckConfig | Command::Enroll { .. } => Ok(()),
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
