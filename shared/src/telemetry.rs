//! One place that sets up logging for every service.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogFormat, LogSettings};

/// Installs the global `tracing` subscriber: the configured filter, text or JSON lines on
/// stderr. Installing twice (tests, the all-in-one runner) keeps the first and is not an error.
///
/// Text is coloured only when stderr is a terminal: `docker compose logs`, journald and log
/// shippers get plain lines (`NO_COLOR` turns colour off on a terminal too).
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = use_colour(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_span_events(FmtSpan::NONE);
    let _already_installed = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Colour on a terminal, unless `NO_COLOR` is set (<https://no-color.org>).
fn use_colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// An error and its causes on one line, each cause once: many errors already repeat their
/// source in their own message, and `{:#}` would print it twice.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn one_line_names_each_cause_once() {
        let io = std::io::Error::other("refused");
        let err = anyhow::Error::new(Repeats(io)).context("start");
        assert_eq!(one_line(&err), "start: outer: refused");
    }
}
