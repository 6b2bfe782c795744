//! What every service's `main` does: load the configuration (exit 2 with one line when it is
//! wrong), set up logging, run until SIGINT/SIGTERM, and turn a failure into one line and exit 1.

use std::future::Future;
use std::process::ExitCode;

use serde::de::DeserializeOwned;

use crate::config::{self, LogSettings, Validate};
use crate::shutdown::{self, CancellationToken};
use crate::telemetry;

/// A service's configuration: loadable, checkable, with a `[log]` section.
pub trait ServiceConfig: DeserializeOwned + Validate {
    fn log(&self) -> &LogSettings;
}

/// Loads the configuration and installs logging, or prints the error and gives the exit code.
pub fn start<C: ServiceConfig>(name: &str) -> Result<C, ExitCode> {
    match config::load::<C>() {
        Ok(config) => {
            telemetry::init(config.log());
            Ok(config)
        }
        Err(err) => {
            eprintln!("{name}: {err}");
            Err(ExitCode::from(2))
        }
    }
}

/// Reports how a run ended: 0, or the error on one line (log and stderr) and 1.
pub fn finish(name: &str, outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let error = telemetry::one_line(&err);
            tracing::error!(%error, service = name, "Service failed");
            eprintln!("{name}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The whole `main` of a service whose `run(config, shutdown)` is all it does.
pub async fn main<C, F, Fut>(name: &str, run: F) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    match start::<C>(name) {
        Ok(config) => finish(name, run(config, shutdown::on_signal()).await),
        Err(code) => code,
    }
}
