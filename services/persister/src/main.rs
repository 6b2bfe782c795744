//! `flick-persister`: stores what flows through NATS.

use std::process::ExitCode;

use flick_shared::{config, shutdown, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config: flick_persister::Config = match config::load() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("flick-persister: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log);
    match flick_persister::run(config, shutdown::on_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let error = telemetry::one_line(&err);
            tracing::error!(%error, "Persister failed");
            eprintln!("flick-persister: {error}");
            ExitCode::FAILURE
        }
    }
}
