//! `flick-alerter`: evaluates thresholds and publishes alert events.

use std::process::ExitCode;

use flick_shared::{config, shutdown, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config: flick_alerter::Config = match config::load() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("flick-alerter: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log);
    match flick_alerter::run(config, shutdown::on_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let error = telemetry::one_line(&err);
            tracing::error!(%error, "Alerter failed");
            eprintln!("flick-alerter: {error}");
            ExitCode::FAILURE
        }
    }
}
