//! `flick-gateway`: see the crate documentation.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    flick_shared::service::main("flick-gateway", flick_gateway::run).await
}
