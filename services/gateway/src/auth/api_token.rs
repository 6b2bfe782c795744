//! API tokens: `flk_<id>_<secret>`, long-lived credentials for scrapers, scripts and CI.
//!
//! The id (a UUID in 32 hex digits) finds the row; only the SHA-256 of the secret (256 random
//! bits, URL-safe base64) is stored, so a leaked table yields no usable token, and the
//! presented secret is compared with it in constant time. The recognisable `flk_` prefix lets
//! secret scanners find a token pasted where it should not be.
//!
//! A token acts as its owner, with the owner's current role and ownership rules, narrowed by
//! its scopes: [`needed`] maps each request to the one scope it takes. A token never manages
//! tokens or the account's sessions: a stolen token cannot mint a longer-lived successor.

use axum::http::Method;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

/// What every API token starts with.
pub const PREFIX: &str = "flk_";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Scope {
    /// Every `GET` the owner may make (and the threshold preview, which only reads).
    #[serde(rename = "read")]
    Read,
    /// Every change the owner may make, but tokens and sessions.
    #[serde(rename = "write")]
    Write,
    /// `POST /logs` only.
    #[serde(rename = "write:logs")]
    WriteLogs,
    /// `GET /prometheus` only.
    #[serde(rename = "metrics:scrape")]
    MetricsScrape,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::Read,
        Scope::Write,
        Scope::WriteLogs,
        Scope::MetricsScrape,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::WriteLogs => "write:logs",
            Scope::MetricsScrape => "metrics:scrape",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A token's scopes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    /// The scopes named in `names`; `None` if one is unknown.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Option<Scopes> {
        names.iter().try_fold(Scopes::default(), |scopes, name| {
            Scope::parse(name.as_ref()).map(|s| Scopes(scopes.0 | s.bit()))
        })
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether a request needing `needed` is allowed: `write` covers `write:logs`, `read`
    /// covers `metrics:scrape` (the same figures, another format).
    pub fn allow(self, needed: Scope) -> bool {
        self.contains(needed)
            || match needed {
                Scope::WriteLogs => self.contains(Scope::Write),
                Scope::MetricsScrape => self.contains(Scope::Read),
                Scope::Read | Scope::Write => false,
            }
    }

    pub fn names(self) -> Vec<&'static str> {
        Scope::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .map(Scope::as_str)
            .collect()
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// What a request takes of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Scope(Scope),
    /// Token and account management: a signed-in session only.
    Session,
}

/// The scope the request `method path` needs (`path` is the route's pattern when known, such
/// as `/api/v1/servers/{id}`, else the request's path).
pub fn needed(method: &Method, path: &str) -> Needs {
    let api = path.strip_prefix("/api/v1").unwrap_or(path);
    if api == "/tokens" || api.starts_with("/tokens/") {
        return Needs::Session;
    }
    if api.starts_with("/auth/") {
        // Who am I is a read; logging in, out and refreshing are the browser's.
        return if api == "/auth/me" && method == Method::GET {
            Needs::Scope(Scope::Read)
        } else {
            Needs::Session
        };
    }
    if api == "/prometheus" {
        return Needs::Scope(Scope::MetricsScrape);
    }
    if api == "/logs" && method == Method::POST {
        return Needs::Scope(Scope::WriteLogs);
    }
    if method == Method::GET || method == Method::HEAD || api.ends_with("/thresholds/preview") {
        return Needs::Scope(Scope::Read);
    }
    Needs::Scope(Scope::Write)
}

/// A token as presented: its id and the SHA-256 of its secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented {
    pub id: Uuid,
    pub secret_hash: [u8; 32],
}

/// `Some` when `text` has the shape of an API token (what a JWT never has).
pub fn parse(text: &str) -> Option<Presented> {
    let rest = text.strip_prefix(PREFIX)?;
    let (id, secret) = (rest.get(..32)?, rest.get(32..)?);
    let secret = secret.strip_prefix('_')?;
    if secret.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(Presented {
        id: Uuid::try_parse(id).ok()?,
        secret_hash: secret_hash(secret),
    })
}

fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A new token: the text shown once, its id and what is stored.
#[derive(Debug)]
pub struct Minted {
    pub id: Uuid,
    pub text: String,
    pub secret_hash: [u8; 32],
}

pub fn mint() -> anyhow::Result<Minted> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|err| anyhow::anyhow!("system random number generator: {err}"))?;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let id = Uuid::new_v4();
    Ok(Minted {
        id,
        text: format!("{PREFIX}{}_{secret}", id.simple()),
        secret_hash: secret_hash(&secret),
    })
}

/// The start of a token, for lists: enough to recognise it, useless to use it.
pub fn hint(id: Uuid) -> String {
    let hex = id.simple().to_string();
    format!("{PREFIX}{}…", &hex[..8])
}

/// Equal, in time that depends only on the length (a stored hash has a fixed one).
pub fn same_hash(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_parses_back_to_its_id_and_stored_hash() {
        let minted = mint().expect("random");
        assert!(minted.text.starts_with("flk_"));
        let presented = parse(&minted.text).expect("a token");
        assert_eq!(presented.id, minted.id);
        assert!(same_hash(&presented.secret_hash, &minted.secret_hash));
        let other = mint().expect("random");
        assert!(!same_hash(&other.secret_hash, &minted.secret_hash));
        // A secret may itself hold `_` and `-` (URL-safe base64).
        let odd = format!("flk_{}_a_b-c", minted.id.simple());
        assert_eq!(parse(&odd).map(|p| p.id), Some(minted.id));
        for bad in [
            "eyJhbGciOiJIUzI1NiJ9.e30.x",
            "flk_",
            "flk_123_abc",
            &format!("flk_{}", minted.id.simple()),
            &format!("flk_{}_", minted.id.simple()),
            &format!("flk_{}x", minted.id.simple()),
            "flk_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz_secret",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        assert_eq!(hint(minted.id).chars().count(), 4 + 8 + 1);
    }

    #[test]
    fn each_route_needs_one_scope_and_tokens_are_managed_only_by_sessions() {
        let get = |path| needed(&Method::GET, path);
        assert_eq!(
            get("/api/v1/servers/{id}/metrics"),
            Needs::Scope(Scope::Read)
        );
        assert_eq!(
            get("/api/v1/prometheus"),
            Needs::Scope(Scope::MetricsScrape)
        );
        assert_eq!(get("/api/v1/tokens"), Needs::Session);
        assert_eq!(
            needed(&Method::DELETE, "/api/v1/tokens/{id}"),
            Needs::Session
        );
        assert_eq!(
            needed(&Method::POST, "/api/v1/auth/refresh"),
            Needs::Session
        );
        assert_eq!(get("/api/v1/auth/me"), Needs::Scope(Scope::Read));
        assert_eq!(
            needed(&Method::POST, "/api/v1/logs"),
            Needs::Scope(Scope::WriteLogs)
        );
        assert_eq!(
            needed(&Method::POST, "/api/v1/servers/{id}/thresholds/preview"),
            Needs::Scope(Scope::Read)
        );
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert_eq!(
                needed(&method, "/api/v1/servers/{id}"),
                Needs::Scope(Scope::Write)
            );
        }
    }

    #[test]
    fn write_covers_log_writing_and_read_covers_scraping_but_not_the_reverse() {
        let scrape = Scopes::parse(&["metrics:scrape"]).expect("known");
        assert!(scrape.allow(Scope::MetricsScrape));
        for scope in [Scope::Read, Scope::Write, Scope::WriteLogs] {
            assert!(!scrape.allow(scope), "{scope:?}");
        }
        let logs = Scopes::parse(&["write:logs"]).expect("known");
        assert!(logs.allow(Scope::WriteLogs) && !logs.allow(Scope::Write));
        let read_write = Scopes::parse(&["read", "write"]).expect("known");
        assert!(Scope::ALL.into_iter().all(|s| read_write.allow(s)));
        assert_eq!(read_write.names(), ["read", "write"]);
        assert!(Scopes::parse(&["admin"]).is_none());
        assert!(Scopes::parse::<&str>(&[]).expect("none").is_empty());
    }
}
