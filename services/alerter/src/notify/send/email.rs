//! E-mail over SMTP (`lettre`): subject the summary, plain-text body one line per transition,
//! `Message-ID: <notice-id@flick>` so a retry that did arrive after all is recognisably the
//! same message.
//!
//! The channel URL says how to connect:
//! - `smtp://host[:port]`: STARTTLS, required (port 587 by default). A server that does not
//!   offer it gets nothing, neither credentials nor mail: no silent downgrade.
//! - `smtps://host[:port]`: TLS from the first byte (port 465 by default).
//! - `smtp://host:port?tls=none`: plain text, for a relay on a trusted network only. Credentials
//!   are refused on it: they would cross the network in the clear.
//!
//! Settings: `from` (a mailbox, `FLick <alerts@example.com>`), `to` (a list of mailboxes, or
//! one), `username` (optional; the password is the channel's secret), `tlsCaPem` (optional:
//! PEM certificates trusted besides the system's, for a server with a private CA; the PEM
//! itself rather than a path, so a channel never makes the alerter read its own files).
//!
//! Like an HTTP destination, the SMTP host is resolved and checked with the destinations
//! policy, and the connection goes to the address that passed (the certificate is still
//! checked against the host name): a name cannot re-resolve to loopback in between.
//!
//! A 4xx reply, a refused or broken connection and a timeout are worth retrying; a 5xx reply
//! (`SMTP 550 …`), a certificate that does not verify and settings that cannot work are final.

use std::error::Error as _;
use std::net::IpAddr;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use flick_shared::outbound::{Destinations, Refused, forbidden_kind};

use super::super::notice::{Channel, Failure, Notice};
use super::text;

/// lettre's limit for the TCP connection (its async transport times nothing else).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole conversation, connection to QUIT: a server that stops answering mid-way (or
/// never answers AUTH) is given up on here, and the attempt is worth retrying.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    StartTls,
    Wrapper,
    Plain,
}

#[derive(Debug)]
struct Server {
    host: String,
    port: u16,
    security: Security,
}

fn parse_url(url: &str) -> Result<Server, Failure> {
    let bad = || {
        Failure::permanent(
            "the SMTP URL is not smtp://host[:port], smtps://host[:port] or smtp://host:port?tls=none",
        )
    };
    let parsed = url::Url::parse(url).map_err(|_| bad())?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Failure::permanent(
            "the SMTP URL must not hold credentials: use settings.username and the channel secret",
        ));
    }
    let tls = parsed
        .query_pairs()
        .find(|(name, _)| name == "tls")
        .map(|(_, value)| value.to_ascii_lowercase());
    let security = match (parsed.scheme(), tls.as_deref()) {
        ("smtp", None | Some("required")) => Security::StartTls,
        ("smtp", Some("none")) => Security::Plain,
        ("smtps", None) => Security::Wrapper,
        _ => return Err(bad()),
    };
    let host = match parsed.host() {
        Some(url::Host::Domain(name)) if !name.is_empty() => name.to_owned(),
        Some(url::Host::Ipv4(v4)) => v4.to_string(),
        Some(url::Host::Ipv6(v6)) => v6.to_string(),
        _ => return Err(bad()),
    };
    let port = parsed.port().unwrap_or(match security {
        Security::Wrapper => 465,
        Security::StartTls | Security::Plain => 587,
    });
    Ok(Server {
        host,
        port,
        security,
    })
}

/// The address to connect to: the host's, if the destinations policy allows every address it
/// resolves to (as [`Destinations::check_url`] does for HTTP).
async fn resolve(destinations: &Destinations, server: &Server) -> Result<IpAddr, Failure> {
    let host = server.host.as_str();
    let forbidden = |address: IpAddr| {
        Failure::permanent(
            Refused::Forbidden {
                host: host.to_owned(),
                address,
                kind: forbidden_kind(address).unwrap_or("forbidden"),
            }
            .to_string(),
        )
    };
    if let Ok(address) = host.parse::<IpAddr>() {
        return if destinations.address_allowed(address) || destinations.name_allowed(host) {
            Ok(address)
        } else {
            Err(forbidden(address))
        };
    }
    let unresolved = |reason: String| {
        Failure::transient(
            Refused::Unresolved {
                host: host.to_owned(),
                reason,
            }
            .to_string(),
        )
    };
    let addresses: Vec<IpAddr> = tokio::net::lookup_host((host, server.port))
        .await
        .map_err(|err| unresolved(err.to_string()))?
        .map(|address| address.ip())
        .collect();
    let Some(first) = addresses.first().copied() else {
        return Err(unresolved("no address".into()));
    };
    if !destinations.name_allowed(host)
        && let Some(address) = addresses
            .iter()
            .find(|address| !destinations.address_allowed(**address))
    {
        return Err(forbidden(*address));
    }
    Ok(first)
}

fn setting<'a>(channel: &'a Channel, name: &str) -> Option<&'a str> {
    channel
        .settings
        .get(name)
        .and_then(|value| value.as_str())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

fn mailbox(address: &str, setting: &str) -> Result<Mailbox, Failure> {
    address.parse().map_err(|_| {
        Failure::permanent(format!(
            "settings.{setting} holds {:?}, which is not an e-mail address",
            text::truncate_chars(&text::single_line(address), 80)
        ))
    })
}

fn recipients(channel: &Channel) -> Result<Vec<Mailbox>, Failure> {
    let addresses: Vec<&str> = match channel.settings.get("to") {
        Some(serde_json::Value::String(one)) => vec![one.as_str()],
        Some(serde_json::Value::Array(many)) => many.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    };
    let addresses: Vec<&str> = addresses
        .into_iter()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    if addresses.is_empty() {
        return Err(Failure::permanent(
            "an e-mail channel needs settings.to (one address or a list)",
        ));
    }
    addresses.into_iter().map(|a| mailbox(a, "to")).collect()
}

fn message(channel: &Channel, notice: &Notice) -> Result<Message, Failure> {
    let Some(from) = setting(channel, "from") else {
        return Err(Failure::permanent("an e-mail channel needs settings.from"));
    };
    let mut builder = Message::builder()
        .from(mailbox(from, "from")?)
        .subject(text::summary_for(notice, Some(&channel.name)))
        .message_id(Some(format!("<{}@flick>", notice.id)))
        .header(ContentType::TEXT_PLAIN);
    for to in recipients(channel)? {
        builder = builder.to(to);
    }
    builder
        .body(text::body_text(notice))
        .map_err(|err| Failure::permanent(format!("the e-mail cannot be built: {err}")))
}

fn tls_parameters(channel: &Channel, server: &Server) -> Result<TlsParameters, Failure> {
    let mut builder = TlsParameters::builder(server.host.clone());
    if let Some(pem) = setting(channel, "tlsCaPem") {
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(Failure::permanent(
                "settings.tlsCaPem holds no PEM certificate",
            ));
        }
        let certificate = Certificate::from_pem(pem.as_bytes())
            .map_err(|_| Failure::permanent("settings.tlsCaPem holds no valid PEM certificate"))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|err| Failure::permanent(format!("TLS cannot be set up: {err}")))
}

fn transport(
    channel: &Channel,
    server: &Server,
    address: IpAddr,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, Failure> {
    let tls = match server.security {
        Security::StartTls => Tls::Required(tls_parameters(channel, server)?),
        Security::Wrapper => Tls::Wrapper(tls_parameters(channel, server)?),
        Security::Plain => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(address.to_string())
        .port(server.port)
        .timeout(Some(CONNECT_TIMEOUT))
        .tls(tls);
    if let Some(username) = setting(channel, "username") {
        if server.security == Security::Plain {
            return Err(Failure::permanent(
                "SMTP credentials are never sent without TLS (the URL says tls=none)",
            ));
        }
        let Some(password) = channel.secret.as_deref() else {
            return Err(Failure::permanent(
                "settings.username is set but the channel has no password (secret)",
            ));
        };
        builder = builder.credentials(Credentials::new(username.to_owned(), password.to_owned()));
    }
    Ok(builder.build())
}

/// A reply code with its text ("SMTP 550 5.1.1 mailbox unavailable"), else what failed.
fn smtp_failure(err: &lettre::transport::smtp::Error) -> Failure {
    let detail = || {
        let mut cause: &dyn std::error::Error = err;
        while let Some(source) = cause.source() {
            cause = source;
        }
        text::truncate_chars(&text::single_line(&cause.to_string()), 160)
    };
    if let Some(code) = err.status() {
        let message = err
            .source()
            .map(|source| text::truncate_chars(&text::single_line(&source.to_string()), 160))
            .unwrap_or_default();
        let reason = format!("SMTP {code} {message}").trim_end().to_owned();
        return if err.is_transient() {
            Failure::transient(reason)
        } else {
            Failure::permanent(reason)
        };
    }
    // lettre reports a failed handshake as a network error; a certificate that does not
    // verify will not verify on the next try either.
    if err.is_tls() || rustls_error_in(err) {
        return Failure::permanent(format!("SMTP TLS: {}", detail()));
    }
    if err.is_client() {
        return Failure::permanent(format!("SMTP: {}", detail()));
    }
    if err.is_timeout() {
        return Failure::transient("SMTP server timed out");
    }
    Failure::transient(format!("SMTP connection: {}", detail()))
}

/// Whether a rustls error (a certificate rejected, a protocol mismatch) is among the causes,
/// also inside an `io::Error` (whose `source` skips the error it wraps).
fn rustls_error_in(err: &lettre::transport::smtp::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(current) = cause {
        if current.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        cause = current.source();
    }
    false
}

pub async fn send(
    destinations: &Destinations,
    channel: &Channel,
    notice: &Notice,
) -> Result<(), Failure> {
    let server = parse_url(&channel.url)?;
    let message = message(channel, notice)?;
    let address = resolve(destinations, &server).await?;
    let transport = transport(channel, &server, address)?;
    match tokio::time::timeout(TOTAL_TIMEOUT, transport.send(message)).await {
        Ok(Ok(_response)) => Ok(()),
        Ok(Err(err)) => Err(smtp_failure(&err)),
        Err(_elapsed) => Err(Failure::transient(format!(
            "SMTP server did not finish within {} s",
            TOTAL_TIMEOUT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_starttls_tls_or_plain_and_their_default_ports() {
        let s = parse_url("smtp://mail.example.com").expect("valid");
        assert_eq!(
            (s.host.as_str(), s.port, s.security),
            ("mail.example.com", 587, Security::StartTls)
        );
        let s = parse_url("smtps://mail.example.com").expect("valid");
        assert_eq!((s.port, s.security), (465, Security::Wrapper));
        let s = parse_url("smtp://10.0.0.5:25?tls=none").expect("valid");
        assert_eq!(
            (s.host.as_str(), s.port, s.security),
            ("10.0.0.5", 25, Security::Plain)
        );
        let s = parse_url("smtp://[::1]:2525").expect("valid");
        assert_eq!(s.host, "::1");
        for bad in [
            "http://mail.example.com",
            "smtps://mail.example.com?tls=none",
            "smtp://user:pw@mail.example.com",
            "smtp://mail.example.com?tls=maybe",
            "not a url",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_loopback_smtp_host_is_refused_unless_allowed() {
        let server = parse_url("smtp://127.0.0.1:25?tls=none").expect("valid");
        let refused = resolve(&Destinations::default(), &server)
            .await
            .expect_err("loopback is refused");
        assert!(!refused.retry, "{refused:?}");
        let allowed = Destinations::new(&["127.0.0.1".into()]).expect("valid");
        assert_eq!(
            resolve(&allowed, &server).await,
            Ok("127.0.0.1".parse().expect("an address"))
        );
        let named = parse_url("smtp://localhost:25").expect("valid");
        assert!(resolve(&Destinations::default(), &named).await.is_err());
    }
}
