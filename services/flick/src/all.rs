//! `flick all`: the four services as tasks of one process, sharing one shutdown signal. A
//! service that fails stops the others, so the process never runs half a pipeline.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use figment::Figment;

use flick_shared::config::{self, LogSettings};
use flick_shared::shutdown::{self, CancellationToken};
use flick_shared::tasks::TaskGroup;
use flick_shared::{service, telemetry};

const NAME: &str = "flick";

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Do not sample this host (only simulated or external collectors report).
    #[arg(long)]
    no_collector: bool,
    /// Also publish synthetic samples for this many virtual servers (a demo fleet).
    #[arg(long, default_value_t = 0)]
    simulate: usize,
    /// Of the simulated servers, this many hold CPU above 90 % (alerts fire).
    #[arg(long, default_value_t = 0)]
    hot: usize,
    /// Where generated development secrets are kept when JWT_SECRET/ENCRYPTION_KEY are unset.
    #[arg(long, default_value_os_t = super::default_secrets_path())]
    secrets: PathBuf,
}

/// Every service's configuration, each loaded from the same file and environment.
struct Configs {
    collector: flick_collector::Config,
    persister: flick_persister::Config,
    alerter: flick_alerter::Config,
    gateway: flick_gateway::Config,
}

fn load(base: &Figment) -> Result<Configs, config::ConfigError> {
    Ok(Configs {
        collector: config::load_over(base.clone())?,
        persister: config::load_over(base.clone())?,
        alerter: config::load_over(base.clone())?,
        gateway: config::load_over(base.clone())?,
    })
}

pub async fn main(options: Options) -> ExitCode {
    let base = match super::dev_secrets::layer(&options.secrets) {
        Ok(base) => base,
        Err(err) => {
            eprintln!("{NAME}: {}", telemetry::one_line(&err));
            return ExitCode::FAILURE;
        }
    };
    let configs = match load(&base) {
        Ok(configs) => configs,
        Err(err) => {
            eprintln!("{NAME}: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&log_settings(&configs));
    let outcome = run(configs, &options, shutdown::on_signal()).await;
    service::finish(NAME, outcome)
}

fn log_settings(configs: &Configs) -> LogSettings {
    configs.gateway.log.clone()
}

/// Runs the services until `stop` is cancelled or one of them fails.
async fn run(configs: Configs, options: &Options, stop: CancellationToken) -> anyhow::Result<()> {
    let mut services = TaskGroup::new(stop.clone());
    let mut start =
        |name: &'static str,
         task: std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>| {
            services.spawn(name, task);
        };
    start(
        "persister",
        Box::pin(flick_persister::run(configs.persister, stop.clone())),
    );
    start(
        "alerter",
        Box::pin(flick_alerter::run(configs.alerter, stop.clone())),
    );
    start(
        "gateway",
        Box::pin(flick_gateway::run(configs.gateway, stop.clone())),
    );
    if !options.no_collector {
        let collector = flick_collector::run(configs.collector.clone(), stop.clone());
        start(
            "collector",
            Box::pin(async move { collector.await.map(|_| ()) }),
        );
    }
    if options.simulate > 0 {
        let simulation = flick_collector::simulate::SimulateOptions {
            servers: options.simulate,
            hot: options.hot.min(options.simulate),
            interval: Duration::from_millis(configs.collector.collector.interval_ms.max(1)),
            backfill: 0,
            duration: None,
            seed: 1,
            max_in_flight: 1_024,
        };
        let simulate = flick_collector::simulate::run(configs.collector, simulation, stop.clone());
        start(
            "simulator",
            Box::pin(async move { simulate.await.map(|_| ()) }),
        );
    }
    tracing::info!("FLick is running: every service in one process");
    // A service that fails, panics or returns by itself stops the others, which finish the
    // work in hand; the process waits for all of them.
    services.join().await
}
