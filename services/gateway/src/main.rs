//! `flick-gateway`: REST, WebSocket and dashboard.

use std::process::ExitCode;

use flick_shared::{config, shutdown, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config: flick_gateway::Config = match config::load() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("flick-gateway: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log);
    match flick_gateway::run(config, shutdown::on_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let error = telemetry::one_line(&err);
            tracing::error!(%error, "Gateway failed");
            eprintln!("flick-gateway: {error}");
            ExitCode::FAILURE
        }
    }
}
