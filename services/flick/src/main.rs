//! `flick`: the whole of FLick in one process, for one host without Docker.
//!
//! `flick all` runs the persister, alerter, gateway and (unless told not to) a collector for
//! this host against NATS and PostgreSQL at their default local addresses. Every service is
//! the same library the separate binaries run; only the process boundary is gone. `flick init`
//! generates a hub's secrets and configuration.

mod all;
mod dev_secrets;
mod init;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "FLick in one process: collector, persister, alerter and gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service in this process until SIGINT/SIGTERM.
    All(all::Options),
    /// Generate a hub's secrets and configuration, once (keeps what exists).
    Init(init::Options),
}

/// Where `flick all` keeps the secrets it generates when none are configured.
fn default_secrets_path() -> PathBuf {
    PathBuf::from("flick-dev-secrets.toml")
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match Cli::parse().command {
        Command::All(options) => all::main(options).await,
        Command::Init(options) => init::main(options),
    }
}
