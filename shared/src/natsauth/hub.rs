//! A hub's NATS identity, generated once: the operator, the system account and the FLICK
//! account (each with a signing key), a user per service role, and the server configuration
//! that trusts them.
//!
//! The keys are kept as nkey seeds in files readable by their owner only; everything else
//! (JWTs, `.creds`, the server's `auth.conf`) is derived from them, so generating again from the
//! same seeds reproduces the same identities. The account's signing key signs users (services
//! and enrolled hosts); the operator's signing key signs the account JWT, which the gateway
//! re-issues with new revocations when a host is revoked.

use std::collections::BTreeMap;

use nkeys::KeyPair;

use super::jwt::{self, JwtError, Permissions};
use super::roles::{self, Role};
use crate::Subjects;

/// The name of the account every FLick identity lives in.
pub const ACCOUNT_NAME: &str = "FLICK";

/// The seeds a hub's NATS identity is made of.
#[derive(Clone)]
pub struct HubKeys {
    pub operator: KeyPair,
    pub operator_signing: KeyPair,
    pub system_account: KeyPair,
    pub account: KeyPair,
    pub account_signing: KeyPair,
}

impl std::fmt::Debug for HubKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubKeys")
            .field("operator", &self.operator.public_key())
            .field("account", &self.account.public_key())
            .finish_non_exhaustive()
    }
}

/// One seed by name, as stored (`operator.nk`, …).
pub const SEED_FILES: [&str; 5] = [
    "operator.nk",
    "operator-signing.nk",
    "system-account.nk",
    "account.nk",
    "account-signing.nk",
];

impl HubKeys {
    pub fn generate() -> Self {
        Self {
            operator: KeyPair::new_operator(),
            operator_signing: KeyPair::new_operator(),
            system_account: KeyPair::new_account(),
            account: KeyPair::new_account(),
            account_signing: KeyPair::new_account(),
        }
    }

    /// The seeds in the order of [`SEED_FILES`].
    pub fn seeds(&self) -> Result<[String; 5], JwtError> {
        let seed = |key: &KeyPair| key.seed().map_err(|err| JwtError::Sign(err.to_string()));
        Ok([
            seed(&self.operator)?,
            seed(&self.operator_signing)?,
            seed(&self.system_account)?,
            seed(&self.account)?,
            seed(&self.account_signing)?,
        ])
    }

    /// From seeds in the order of [`SEED_FILES`].
    pub fn from_seeds(seeds: &[String; 5]) -> Result<Self, String> {
        let key = |i: usize| {
            KeyPair::from_seed(seeds[i].trim())
                .map_err(|err| format!("{}: not an nkey seed: {err}", SEED_FILES[i]))
        };
        Ok(Self {
            operator: key(0)?,
            operator_signing: key(1)?,
            system_account: key(2)?,
            account: key(3)?,
            account_signing: key(4)?,
        })
    }

    pub fn operator_jwt(&self, issued_at: i64) -> Result<String, JwtError> {
        jwt::operator(
            &self.operator,
            "flick",
            &[self.operator_signing.public_key()],
            &self.system_account.public_key(),
            issued_at,
        )
    }

    pub fn system_account_jwt(&self, issued_at: i64) -> Result<String, JwtError> {
        jwt::account(
            &self.system_account.public_key(),
            "SYS",
            &[],
            false,
            &BTreeMap::new(),
            issued_at,
            &self.operator_signing,
        )
    }

    /// The FLICK account's JWT with `revocations` (host public key → revoked-before time).
    pub fn account_jwt(
        &self,
        revocations: &BTreeMap<String, i64>,
        issued_at: i64,
    ) -> Result<String, JwtError> {
        account_jwt(
            &self.account.public_key(),
            &self.account_signing.public_key(),
            revocations,
            issued_at,
            &self.operator_signing,
        )
    }

    /// A new user with `permissions` in the FLICK account: its `.creds`.
    pub fn user_creds(
        &self,
        name: &str,
        permissions: &Permissions,
        issued_at: i64,
    ) -> Result<String, JwtError> {
        let user = KeyPair::new_user();
        let token = jwt::user(
            &user.public_key(),
            name,
            &self.account.public_key(),
            permissions,
            issued_at,
            None,
            &self.account_signing,
        )?;
        let seed = user.seed().map_err(|err| JwtError::Sign(err.to_string()))?;
        Ok(jwt::creds(&token, &seed))
    }

    /// The `.creds` of `role`.
    pub fn role_creds(
        &self,
        role: Role,
        subjects: &Subjects,
        issued_at: i64,
    ) -> Result<String, JwtError> {
        self.user_creds(role.name(), &roles::permissions(role, subjects), issued_at)
    }

    /// The gateway's user in the system account (it pushes account updates).
    pub fn registrar_creds(&self, issued_at: i64) -> Result<String, JwtError> {
        let user = KeyPair::new_user();
        let token = jwt::user(
            &user.public_key(),
            "registrar",
            &self.system_account.public_key(),
            &roles::registrar(),
            issued_at,
            None,
            &self.system_account,
        )?;
        let seed = user.seed().map_err(|err| JwtError::Sign(err.to_string()))?;
        Ok(jwt::creds(&token, &seed))
    }
}

/// The FLICK account's JWT (what the gateway re-signs to revoke hosts).
pub fn account_jwt(
    account: &str,
    account_signing: &str,
    revocations: &BTreeMap<String, i64>,
    issued_at: i64,
    operator_signing: &KeyPair,
) -> Result<String, JwtError> {
    jwt::account(
        account,
        ACCOUNT_NAME,
        &[account_signing.to_owned()],
        true,
        revocations,
        issued_at,
        operator_signing,
    )
}

/// Where the NATS server finds what `auth_conf` names.
#[derive(Debug, Clone)]
pub struct ServerPaths {
    /// The directory of the NATS-based account resolver (writable by the server).
    pub resolver_dir: String,
    /// TLS certificate and key of the client port; `None`: no TLS (tests on loopback).
    pub tls: Option<(String, String)>,
}

/// The `auth.conf` that `nats.conf` includes: operator mode, the system account, the
/// NATS-based ("full") account resolver, which accepts the account updates the gateway pushes,
/// preloaded with both accounts, and TLS on the client port.
pub fn auth_conf(keys: &HubKeys, paths: &ServerPaths, issued_at: i64) -> Result<String, JwtError> {
    let operator = keys.operator_jwt(issued_at)?;
    let system = keys.system_account_jwt(issued_at)?;
    let account = keys.account_jwt(&BTreeMap::new(), issued_at)?;
    let tls = match &paths.tls {
        Some((cert, key)) => format!(
            "\n# TLS on the client port: remote collectors verify the hub with the CA of `flick init`.\n\
             tls {{\n  cert_file: \"{cert}\"\n  key_file: \"{key}\"\n  timeout: 5\n}}\n"
        ),
        None => String::new(),
    };
    Ok(format!(
        "# Written by `flick init`: who the server trusts. Do not edit; generate again instead.\n\
         operator: \"{operator}\"\n\
         system_account: {sys}\n\
         resolver: {{\n  type: full\n  dir: \"{dir}\"\n  allow_delete: false\n  interval: \"2m\"\n}}\n\
         resolver_preload: {{\n  {sys}: \"{system}\"\n  {acc}: \"{account}\"\n}}\n{tls}",
        sys = keys.system_account.public_key(),
        acc = keys.account.public_key(),
        dir = paths.resolver_dir,
    ))
}
