//! Connecting to NATS the way every service should: named, authenticated, reconnecting forever,
//! and failing loudly only when the very first connection cannot be made.

use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event, ServerAddr};

use crate::config::NatsSettings;
use crate::outage::{Outage, Said};

#[derive(Debug, thiserror::Error)]
#[error("cannot connect to NATS at {url} as {who}")]
pub struct NatsConnectError {
    pub url: String,
    pub who: String,
    #[source]
    pub source: async_nats::ConnectError,
}

/// An entry of `nats.url` that is not a NATS server URL.
#[derive(Debug, thiserror::Error)]
#[error("{entry:?} (entry {position} of the list) is not a NATS server URL: {reason}")]
pub struct BadServerUrl {
    /// The entry as written, trimmed.
    pub entry: String,
    /// Its place in the comma-separated list, from 1.
    pub position: usize,
    pub reason: String,
}

/// The servers of a `nats.url` value: one URL or several separated by commas
/// (`tls://a:4222,tls://b:4222`), as NATS clients conventionally take them.
///
/// async-nats parses a `&str` as exactly one URL, so a cluster's list must be split here and
/// handed over as `ServerAddr`s; the client then starts with a random one and fails over to the
/// others. Spaces around entries and empty entries (a trailing comma) are ignored, as the Go
/// client does; an entry without a scheme is taken as `nats://`, as async-nats does.
pub fn server_addrs(list: &str) -> Result<Vec<ServerAddr>, BadServerUrl> {
    let entries: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect();
    if entries.is_empty() {
        return Err(BadServerUrl {
            entry: list.trim().to_owned(),
            position: 1,
            reason: "no server given".to_owned(),
        });
    }
    entries
        .iter()
        .enumerate()
        .map(|(at, entry)| {
            let bad = |reason: String| BadServerUrl {
                entry: (*entry).to_owned(),
                position: at + 1,
                reason,
            };
            let addr: ServerAddr = entry
                .parse()
                .map_err(|err: std::io::Error| bad(err.to_string()))?;
            // `url` accepts `nats://:4222` and `nats:///x`; a server needs a host to dial.
            if addr.host().is_empty() {
                return Err(bad("it names no host".to_owned()));
            }
            Ok(addr)
        })
        .collect()
}

/// The inbox prefix of a role. `nats.conf` lets each role subscribe only to its own inboxes, so
/// one service cannot read the replies (JetStream acks, API answers) meant for another.
pub fn inbox_prefix(role: &str) -> String {
    format!("_INBOX.{role}")
}

/// Connects as `role` (collector, persister, alerter, gateway, …) to the server, or one of the
/// servers, `settings.url` lists (see [`server_addrs`]).
///
/// The connection is named `flick-<role>@<host>` so `nats server report connections` shows who
/// is who. After the first success the client reconnects forever with capped backoff; callers
/// see errors only on the operations they attempt while disconnected.
pub async fn connect(settings: &NatsSettings, role: &str) -> Result<Client, NatsConnectError> {
    let host = sysname();
    let url = settings.url.clone();
    let creds = settings.creds_for(role);
    let mut options = match &creds {
        Some(path) => ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|err| NatsConnectError {
                url: url.clone(),
                who: format!("the credentials {}", path.display()),
                source: async_nats::ConnectError::with_source(
                    async_nats::ConnectErrorKind::Authentication,
                    err,
                ),
            })?,
        None => ConnectOptions::new(),
    };
    if let Some(ca) = &settings.ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    let inbox = settings
        .inbox_prefix
        .clone()
        .unwrap_or_else(|| inbox_prefix(role));
    let mut options = options
        .name(format!("flick-{role}@{host}"))
        .custom_inbox_prefix(inbox)
        .max_reconnects(None)
        .connection_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .request_timeout(Some(Duration::from_millis(settings.request_timeout_ms)))
        .event_callback({
            let outage = std::sync::Arc::new(Outage::new("NATS"));
            move |event| {
                let outage = outage.clone();
                async move { log_event(&outage, &event) }
            }
        });
    let who = match (&settings.user, &settings.password, &creds) {
        (_, _, Some(path)) => format!("the credentials {}", path.display()),
        (Some(user), Some(password), None) => {
            options = options.user_and_password(user.clone(), password.expose().to_owned());
            format!("user {user:?}")
        }
        _ => "anonymous".to_owned(),
    };
    let servers = match server_addrs(&url) {
        Ok(servers) => servers,
        Err(err) => {
            let source = async_nats::ConnectError::with_source(
                async_nats::ConnectErrorKind::ServerParse,
                err,
            );
            return Err(NatsConnectError { url, who, source });
        }
    };
    options
        .connect(servers)
        .await
        .map_err(|source| NatsConnectError { url, who, source })
}

/// A reconnect storm is one WARN when the connection drops, a reminder every 30 s and one INFO
/// when it is back (`outage`); each failed attempt is DEBUG. Errors while connected (a
/// permissions violation) stay errors.
fn log_event(outage: &Outage, event: &Event) {
    match event {
        Event::Connected => {
            if outage.recovered() == Said::Nothing {
                tracing::info!("Connected to NATS");
            }
        }
        Event::Disconnected => {
            outage.failed(&"disconnected");
        }
        Event::LameDuckMode => tracing::warn!("NATS server entering lame duck mode"),
        Event::SlowConsumer(sid) => tracing::warn!(sid, "NATS slow consumer: messages dropped"),
        Event::ServerError(err) if outage.is_down() => {
            outage.failed(err);
        }
        Event::ClientError(err) if outage.is_down() => {
            outage.failed(err);
        }
        Event::ServerError(err) => tracing::error!(error = %err, "NATS server error"),
        Event::ClientError(err) => tracing::error!(error = %err, "NATS client error"),
        Event::Draining | Event::Closed => tracing::debug!(event = %event, "NATS connection"),
    }
}

/// This host's name, for connection names and samples; `unknown` when it cannot be read.
pub fn sysname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &str) -> Vec<String> {
        server_addrs(list)
            .unwrap_or_else(|err| panic!("{list:?}: {err}"))
            .iter()
            .map(|addr| format!("{}://{}:{}", addr.scheme(), addr.host(), addr.port()))
            .collect()
    }

    #[test]
    fn one_url_is_one_server() {
        assert_eq!(hosts("nats://127.0.0.1:4222"), ["nats://127.0.0.1:4222"]);
        assert_eq!(
            hosts("tls://hub.example.com"),
            ["tls://hub.example.com:4222"]
        );
        assert_eq!(hosts("localhost:14222"), ["nats://localhost:14222"]);
    }

    #[test]
    fn a_comma_separated_list_is_every_server_in_order() {
        assert_eq!(
            hosts("tls://nats:4222,tls://nats-2:4222, tls://nats-3:4222 ,"),
            ["tls://nats:4222", "tls://nats-2:4222", "tls://nats-3:4222"]
        );
        assert_eq!(
            hosts("nats://[::1]:4222,nats://127.0.0.1:4223"),
            ["nats://::1:4222", "nats://127.0.0.1:4223"]
        );
    }

    #[test]
    fn a_bad_entry_is_named_with_its_place() {
        let err = server_addrs("tls://nats:4222,http://nats-2:4222").expect_err("http");
        assert_eq!(
            (err.entry.as_str(), err.position),
            ("http://nats-2:4222", 2)
        );
        assert!(err.to_string().contains("invalid scheme"), "{err}");
        let err = server_addrs("nats://a:4222,nats://b:99999").expect_err("port");
        assert_eq!((err.entry.as_str(), err.position), ("nats://b:99999", 2));
        let err = server_addrs("nats://a:4222 nats://b:4222").expect_err("a space, no comma");
        assert_eq!(err.position, 1);
        for hostless in ["nats://:4222", "nats:///x"] {
            let err = server_addrs(hostless).expect_err("no host");
            assert!(err.to_string().contains("host"), "{hostless}: {err}");
        }
        for empty in ["", " ", ",", " , "] {
            let err = server_addrs(empty).expect_err("nothing");
            assert!(err.to_string().contains("no server"), "{empty:?}: {err}");
        }
    }
}
