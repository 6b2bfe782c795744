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
    let config = load::<C>(name)?;
    telemetry::init(config.log());
    Ok(config)
}

/// Loads the configuration, or prints the one-line error and gives exit code 2.
fn load<C: ServiceConfig>(name: &str) -> Result<C, ExitCode> {
    config::load::<C>().map_err(|err| {
        eprintln!("{name}: {err}");
        ExitCode::from(2)
    })
}

/// `<binary> check-config`: loads the configuration exactly as a start would (file, aliases,
/// `FLICK_*` variables, validation) and stops there, printing `<name>: configuration ok` and
/// exiting 0, or printing the error and exiting 2. A deployment can thus check a container's
/// settings without NATS or PostgreSQL: a bad value fails, and so does a misspelt key of a
/// section the service has (sections refuse keys they do not know). A section the service does
/// not have is not an error, since one file may configure several services.
#[expect(
    clippy::print_stdout,
    reason = "the verdict is the command's output, for people and scripts"
)]
pub fn check_config<C: ServiceConfig>(name: &str) -> ExitCode {
    match load::<C>(name) {
        Ok(_) => {
            println!("{name}: configuration ok");
            ExitCode::SUCCESS
        }
        Err(code) => code,
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

/// The whole `main` of a service whose `run(config, shutdown)` is all it does; `<binary>
/// healthcheck <url>` probes a running one instead (see [`healthcheck`]), and `<binary>
/// check-config` only checks the configuration (see [`check_config`]).
pub async fn main<C, F, Fut>(name: &str, run: F) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {}
        [command, url] if command == "healthcheck" => return healthcheck(name, url),
        [command] if command == "check-config" => return check_config::<C>(name),
        _ => {
            eprintln!("{name}: usage: {name} [healthcheck <http://host:port/path> | check-config]");
            return ExitCode::from(2);
        }
    }
    match start::<C>(name) {
        Ok(config) => finish(name, run(config, shutdown::on_signal()).await),
        Err(code) => code,
    }
}

/// Probes `url` (`http://host:port/path`) and exits 0 on a 200 answer, 1 otherwise, printing
/// why. Container images have no curl or wget: the service binary is its own health check.
pub fn healthcheck(name: &str, url: &str) -> ExitCode {
    match probe(url, std::time::Duration::from_secs(3)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("{name}: {url}: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// One plain HTTP/1.0 GET, enough for the services' own `/healthz` and `/readyz`.
pub fn probe(url: &str, timeout: std::time::Duration) -> Result<(), String> {
    use std::io::{Read as _, Write as _};
    use std::net::{TcpStream, ToSocketAddrs as _};

    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are probed")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let address = authority
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve {authority}: {err}"))?
        .next()
        .ok_or_else(|| format!("{authority} has no address"))?;
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .map_err(|err| format!("cannot connect: {err}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|err| err.to_string())?;
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {authority}\r\n\r\n")
        .map_err(|err| format!("cannot send: {err}"))?;
    let mut answer = Vec::new();
    stream
        .take(4_096)
        .read_to_end(&mut answer)
        .map_err(|err| format!("no answer: {err}"))?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default().trim();
        Err(format!("{status} {body}").trim().to_owned())
    }
}
