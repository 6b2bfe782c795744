//! `flick-alerter`: see the crate documentation.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    flick_shared::service::main("flick-alerter", flick_alerter::run).await
}
