//! `flick-persister`: see the crate documentation.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    flick_shared::service::main("flick-persister", flick_persister::run).await
}
