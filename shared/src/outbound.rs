//! Where FLick may send requests of its own (webhooks and other notification channels): not
//! into the machine or its link, unless the operator allows a host.
//!
//! A channel's URL is chosen by a user; without this check it reaches `127.0.0.1:5432`, the
//! NATS monitoring port, or the cloud metadata service at `169.254.169.254`, carrying the
//! channel's secret headers. Loopback, link-local, unspecified, broadcast and multicast
//! addresses (and IPv4 ones inside IPv6) are refused by default, checked on the addresses a name
//! resolves to, when a channel is created (the gateway) and at each delivery (the alerter, whose
//! HTTP client also resolves through [`Destinations::filter`], so a name that re-resolves to a
//! forbidden address is caught too). `notify.allow_hosts` lists host names, addresses or CIDR
//! ranges allowed anyway. Private networks (10/8, 192.168/16, fc00::/7) are allowed: internal
//! receivers there are common, and the gateway's own port is what a token already reaches.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Deserialize;

use crate::config::{ConfigError, Validate};

/// `[notify]`: shared by the gateway (which checks a channel when it is created) and the
/// alerter (which checks it at each delivery).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifySettings {
    /// Host names, addresses or CIDR ranges (`hooks.lan`, `127.0.0.1`, `fd00::/8`) receivers
    /// may be at although they are loopback or link-local. A list, or one comma-separated
    /// string (`FLICK_NOTIFY__ALLOW_HOSTS=127.0.0.1,hooks.lan`).
    #[serde(deserialize_with = "crate::config::list_or_commas")]
    pub allow_hosts: Vec<String>,
}

impl NotifySettings {
    pub fn destinations(&self) -> Result<Destinations, ConfigError> {
        Destinations::new(&self.allow_hosts)
            .map_err(|message| ConfigError::new("notify.allow_hosts", message))
    }
}

impl Validate for NotifySettings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.destinations().map(|_| ())
    }
}

/// The destinations policy built from `notify.allow_hosts`.
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    names: Vec<String>,
    networks: Vec<(IpAddr, u8)>,
}

/// Why a request may not go where it would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0} is not an http:// or https:// URL with a host")]
    BadUrl(String),
    #[error(
        "{host} is {address}, a {kind} address; allow it with notify.allow_hosts (FLICK_NOTIFY__ALLOW_HOSTS) if it is meant"
    )]
    Forbidden {
        host: String,
        address: IpAddr,
        kind: &'static str,
    },
    #[error("{host} cannot be resolved: {reason}")]
    Unresolved { host: String, reason: String },
}

/// The kind of address no request goes to by default, if `ip` is one.
pub fn forbidden_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped().or_else(|| embedded_v4(v6)) {
            Some(v4) => forbidden_v4(v4),
            None if v6.is_loopback() => Some("loopback"),
            None if v6.is_unspecified() => Some("unspecified"),
            None if v6.is_multicast() => Some("multicast"),
            None if (v6.segments()[0] & 0xffc0) == 0xfe80 => Some("link-local"),
            None => None,
        },
    }
}

/// The IPv4 address inside an IPv4-compatible (`::a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`)
/// IPv6 address.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0);
    let compatible = s[..6].iter().all(|x| *x == 0) && !v6.is_loopback() && !v6.is_unspecified();
    (nat64 || compatible).then(|| {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    })
}

fn forbidden_v4(v4: Ipv4Addr) -> Option<&'static str> {
    if v4.is_loopback() {
        Some("loopback")
    } else if v4.is_link_local() {
        Some("link-local")
    } else if v4.is_unspecified() || v4.octets()[0] == 0 {
        Some("unspecified")
    } else if v4.is_broadcast() {
        Some("broadcast")
    } else if v4.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

fn parse_network(entry: &str) -> Option<(IpAddr, u8)> {
    let (address, bits) = match entry.split_once('/') {
        Some((address, bits)) => (address, Some(bits.parse::<u8>().ok()?)),
        None => (entry, None),
    };
    let address: IpAddr = address.trim_matches(['[', ']']).parse().ok()?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((address, bits))
}

fn in_network(ip: IpAddr, (network, bits): (IpAddr, u8)) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let mask = |width: u32| {
        if bits == 0 {
            0
        } else {
            u128::MAX << (width - u32::from(bits))
        }
    };
    match (ip, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            (u128::from(u32::from(a)) ^ u128::from(u32::from(n))) & mask(32) & 0xffff_ffff == 0
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a) ^ u128::from(n)) & mask(128) == 0,
        _ => false,
    }
}

impl Destinations {
    /// From `notify.allow_hosts`: each entry a host name, an address or a CIDR range.
    pub fn new(allow: &[String]) -> Result<Self, String> {
        let mut destinations = Self::default();
        for entry in allow.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            if let Some(network) = parse_network(entry) {
                destinations.networks.push(network);
            } else if entry.contains('/')
                || entry.contains(':')
                || entry.contains(char::is_whitespace)
            {
                return Err(format!(
                    "{entry:?} is not a host name, an address or a CIDR range"
                ));
            } else {
                destinations
                    .names
                    .push(entry.trim_end_matches('.').to_ascii_lowercase());
            }
        }
        Ok(destinations)
    }

    /// Whether the host name itself is allowed (whatever it resolves to).
    pub fn name_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.names.contains(&host)
    }

    /// Whether a request may go to `ip`.
    pub fn address_allowed(&self, ip: IpAddr) -> bool {
        forbidden_kind(ip).is_none() || self.networks.iter().any(|n| in_network(ip, *n))
    }

    /// `addresses` of `host` a request may use: all of them if the name is allowed, else the
    /// allowed ones; an error naming the first refused one when none is left.
    pub fn filter(&self, host: &str, addresses: Vec<IpAddr>) -> Result<Vec<IpAddr>, Refused> {
        if self.name_allowed(host) {
            return Ok(addresses);
        }
        let first = addresses.first().copied();
        let allowed: Vec<IpAddr> = addresses
            .into_iter()
            .filter(|ip| self.address_allowed(*ip))
            .collect();
        match (allowed.is_empty(), first) {
            (false, _) => Ok(allowed),
            (true, Some(address)) => Err(Refused::Forbidden {
                host: host.to_owned(),
                address,
                kind: forbidden_kind(address).unwrap_or("forbidden"),
            }),
            (true, None) => Err(Refused::Unresolved {
                host: host.to_owned(),
                reason: "no address".into(),
            }),
        }
    }

    /// Checks `url` as an HTTP client would reach it: its host parsed the way browsers and
    /// `reqwest` parse it (so `0x7f000001` is `127.0.0.1`), then resolved; every address must
    /// be allowed (a name resolving to one good and one forbidden address could be steered to
    /// the forbidden one).
    pub async fn check_url(&self, url: &str) -> Result<(), Refused> {
        let parsed = url::Url::parse(url).map_err(|_| Refused::BadUrl(url.to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Refused::BadUrl(url.to_owned()));
        }
        let port = parsed.port_or_known_default().unwrap_or(80);
        let (host, addresses) = match parsed.host() {
            Some(url::Host::Ipv4(v4)) => (v4.to_string(), vec![IpAddr::V4(v4)]),
            Some(url::Host::Ipv6(v6)) => (v6.to_string(), vec![IpAddr::V6(v6)]),
            Some(url::Host::Domain(name)) => {
                if self.name_allowed(name) {
                    return Ok(());
                }
                let resolved = tokio::net::lookup_host((name, port)).await.map_err(|err| {
                    Refused::Unresolved {
                        host: name.to_owned(),
                        reason: err.to_string(),
                    }
                })?;
                (name.to_owned(), resolved.map(|a| a.ip()).collect())
            }
            None => return Err(Refused::BadUrl(url.to_owned())),
        };
        if addresses.is_empty() {
            return Err(Refused::Unresolved {
                host,
                reason: "no address".into(),
            });
        }
        match addresses.iter().find(|ip| !self.address_allowed(**ip)) {
            Some(address) => Err(Refused::Forbidden {
                host,
                address: *address,
                kind: forbidden_kind(*address).unwrap_or("forbidden"),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str]) -> Destinations {
        Destinations::new(&allow.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("valid")
    }

    #[tokio::test]
    async fn loopback_link_local_unspecified_and_multicast_are_refused_however_written() {
        let none = policy(&[]);
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://127.1/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://017700000001/",
            "http://[::1]:9000/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://0.0.0.0:8222/",
            "http://[::]/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://[fe80::1]/",
            "http://localhost:5432/",
        ] {
            assert!(
                matches!(none.check_url(url).await, Err(Refused::Forbidden { .. })),
                "{url}: {:?}",
                none.check_url(url).await
            );
        }
        for url in [
            "http://10.1.2.3/",
            "https://192.168.1.10/hook",
            "http://[2001:db8::1]/",
        ] {
            assert_eq!(none.check_url(url).await, Ok(()), "{url}");
        }
        assert!(matches!(
            none.check_url("ftp://x/").await,
            Err(Refused::BadUrl(_))
        ));
    }

    #[tokio::test]
    async fn allow_hosts_lets_named_hosts_addresses_and_ranges_through() {
        let allowed = policy(&["127.0.0.1", "fe80::/10", "LocalHost"]);
        assert_eq!(allowed.check_url("http://127.0.0.1:9/").await, Ok(()));
        assert_eq!(allowed.check_url("http://0x7f000001/").await, Ok(()));
        assert_eq!(allowed.check_url("http://[fe80::2]/").await, Ok(()));
        assert_eq!(allowed.check_url("http://localhost/").await, Ok(()));
        assert!(
            allowed.check_url("http://127.0.0.2/").await.is_err(),
            "only that address"
        );
        assert!(allowed.check_url("http://169.254.169.254/").await.is_err());
        assert!(Destinations::new(&["10.0.0.0/33".to_owned()]).is_err());
        assert!(Destinations::new(&["not a host".to_owned()]).is_err());
        assert!(in_network(
            "10.9.8.7".parse().expect("ip"),
            parse_network("10.0.0.0/8").expect("net")
        ));
        assert!(!in_network(
            "11.0.0.1".parse().expect("ip"),
            parse_network("10.0.0.0/8").expect("net")
        ));
    }

    #[test]
    fn resolved_addresses_are_filtered() {
        let none = policy(&[]);
        let mixed = vec![
            "127.0.0.1".parse().expect("ip"),
            "10.0.0.1".parse().expect("ip"),
        ];
        assert_eq!(
            none.filter("x", mixed),
            Ok(vec!["10.0.0.1".parse().expect("ip")])
        );
        assert!(
            none.filter("x", vec!["127.0.0.1".parse().expect("ip")])
                .is_err()
        );
    }
}
