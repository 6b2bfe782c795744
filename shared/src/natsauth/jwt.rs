//! NATS JWTs (decentralized auth, claims version 2): operator, account and user claims,
//! encoded and signed with nkeys, and the `.creds` file a NATS client connects with.
//!
//! The format is NATS's own: a header `{"typ":"JWT","alg":"ed25519-nkey"}`, the claims
//! (`jti`, `iat`, `iss`, `sub`, `name`, optional `exp`, and the `nats` object), each base64url
//! without padding, and an Ed25519 signature of `header.claims` by the issuer's nkey.

use std::collections::BTreeMap;

use base64::Engine as _;
use nkeys::KeyPair;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Why a JWT could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("not a NATS JWT: {0}")]
    Malformed(String),
    #[error("the signature does not verify")]
    Signature,
}

/// Publish and subscribe permissions of a user (`allow` lists of subjects).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
    /// Subjects refused even if allowed.
    pub deny_publish: Vec<String>,
}

/// Signs `claims` (the JWT body without `jti`) as `issuer`; `jti` is the hash of the body.
fn sign(mut claims: serde_json::Map<String, Value>, issuer: &KeyPair) -> Result<String, JwtError> {
    claims.insert("iss".into(), Value::String(issuer.public_key()));
    let unhashed = serde_json::to_vec(&claims).map_err(|err| JwtError::Sign(err.to_string()))?;
    let jti = data_encoding::BASE32_NOPAD.encode(&Sha256::digest(&unhashed));
    claims.insert("jti".into(), Value::String(jti));
    let body = serde_json::to_vec(&claims).map_err(|err| JwtError::Sign(err.to_string()))?;
    let input = format!("{}.{}", b64(HEADER.as_bytes()), b64(&body));
    let signature = issuer
        .sign(input.as_bytes())
        .map_err(|err| JwtError::Sign(err.to_string()))?;
    Ok(format!("{input}.{}", b64(&signature)))
}

fn base(
    subject: &str,
    name: &str,
    issued_at: i64,
    expires_at: Option<i64>,
) -> serde_json::Map<String, Value> {
    let mut claims = serde_json::Map::new();
    claims.insert("iat".into(), json!(issued_at));
    claims.insert("name".into(), json!(name));
    claims.insert("sub".into(), json!(subject));
    if let Some(exp) = expires_at {
        claims.insert("exp".into(), json!(exp));
    }
    claims
}

/// The operator's JWT, self-signed, naming its signing keys and the system account.
pub fn operator(
    operator: &KeyPair,
    name: &str,
    signing_keys: &[String],
    system_account: &str,
    issued_at: i64,
) -> Result<String, JwtError> {
    let mut claims = base(&operator.public_key(), name, issued_at, None);
    claims.insert(
        "nats".into(),
        json!({
            "type": "operator", "version": 2,
            "signing_keys": signing_keys,
            "system_account": system_account,
        }),
    );
    sign(claims, operator)
}

/// An account's JWT, signed by the operator (or an operator signing key). `jetstream` enables
/// JetStream without limits; `revocations` maps user public keys to the time before which
/// (inclusive) their JWTs are revoked: the server closes their connections when it gets this
/// JWT and refuses them afterwards.
pub fn account(
    account: &str,
    name: &str,
    signing_keys: &[String],
    jetstream: bool,
    revocations: &BTreeMap<String, i64>,
    issued_at: i64,
    signer: &KeyPair,
) -> Result<String, JwtError> {
    let mut limits = json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
    });
    if jetstream {
        for key in ["mem_storage", "disk_storage", "streams", "consumer"] {
            limits[key] = json!(-1);
        }
    }
    let mut nats = json!({
        "type": "account", "version": 2,
        "limits": limits,
        "signing_keys": signing_keys,
        "default_permissions": { "pub": {}, "sub": {} },
    });
    if !revocations.is_empty() {
        nats["revocations"] = json!(revocations);
    }
    let mut claims = base(account, name, issued_at, None);
    claims.insert("nats".into(), nats);
    sign(claims, signer)
}

/// A user's JWT for the public key `user` in `account`, signed by the account or one of its
/// signing keys (then `issuer_account` names the account).
#[allow(clippy::too_many_arguments)]
pub fn user(
    user: &str,
    name: &str,
    account: &str,
    permissions: &Permissions,
    issued_at: i64,
    expires_at: Option<i64>,
    signer: &KeyPair,
) -> Result<String, JwtError> {
    let mut publish = json!({ "allow": permissions.publish });
    if !permissions.deny_publish.is_empty() {
        publish["deny"] = json!(permissions.deny_publish);
    }
    let mut nats = json!({
        "type": "user", "version": 2,
        "pub": publish,
        "sub": { "allow": permissions.subscribe },
        "subs": -1, "data": -1, "payload": -1,
    });
    if signer.public_key() != account {
        nats["issuer_account"] = json!(account);
    }
    let mut claims = base(user, name, issued_at, expires_at);
    claims.insert("nats".into(), nats);
    sign(claims, signer)
}

/// The claims of `token`, after checking its signature by its `iss`.
pub fn verify(token: &str) -> Result<Value, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(body), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("not three parts".into()));
    };
    let decode = |part: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|err| JwtError::Malformed(err.to_string()))
    };
    let claims: Value = serde_json::from_slice(&decode(body)?)
        .map_err(|err| JwtError::Malformed(err.to_string()))?;
    let issuer = claims["iss"]
        .as_str()
        .ok_or_else(|| JwtError::Malformed("no iss".into()))?;
    let key =
        KeyPair::from_public_key(issuer).map_err(|err| JwtError::Malformed(err.to_string()))?;
    key.verify(format!("{header}.{body}").as_bytes(), &decode(signature)?)
        .map_err(|_| JwtError::Signature)?;
    Ok(claims)
}

/// A `.creds` file: the user JWT and the user's seed, in the layout NATS tools and clients read.
pub fn creds(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

/// The JWT of a `.creds` file.
pub fn jwt_of_creds(creds: &str) -> Option<&str> {
    let start = creds.find("-----BEGIN NATS USER JWT-----")?;
    creds[start..].lines().nth(1).map(str::trim)
}

/// What a decoded user JWT grants, for checks and display.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct UserGrant {
    pub sub: String,
    pub iat: i64,
    pub exp: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_jwts_are_signed_by_the_account_signing_key_and_carry_the_permissions() {
        let account_key = KeyPair::new_account();
        let signing = KeyPair::new_account();
        let host = KeyPair::new_user();
        let permissions = Permissions {
            publish: vec!["flick.metrics.web-01".into()],
            subscribe: vec!["_INBOX.host.web-01.>".into()],
            deny_publish: vec![],
        };
        let token = user(
            &host.public_key(),
            "web-01",
            &account_key.public_key(),
            &permissions,
            1_700_000_000,
            Some(1_700_000_600),
            &signing,
        )
        .expect("sign");
        let claims = verify(&token).expect("verifies");
        assert_eq!(claims["sub"], host.public_key());
        assert_eq!(claims["iss"], signing.public_key());
        assert_eq!(claims["nats"]["issuer_account"], account_key.public_key());
        assert_eq!(claims["nats"]["pub"]["allow"][0], "flick.metrics.web-01");
        assert_eq!(claims["exp"], 1_700_000_600);
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() > 40));
        let mut tampered: Vec<&str> = token.split('.').collect();
        let other = user(
            &host.public_key(),
            "x",
            &account_key.public_key(),
            &Permissions::default(),
            1,
            None,
            &signing,
        )
        .expect("sign");
        tampered[1] = other.split('.').nth(1).expect("body");
        assert!(matches!(
            verify(&tampered.join(".")),
            Err(JwtError::Signature)
        ));
    }

    #[test]
    fn accounts_carry_jetstream_limits_and_revocations() {
        let operator_key = KeyPair::new_operator();
        let account_key = KeyPair::new_account();
        let revoked = BTreeMap::from([(KeyPair::new_user().public_key(), 1_700_000_000)]);
        let token = account(
            &account_key.public_key(),
            "FLICK",
            &[],
            true,
            &revoked,
            1_700_000_001,
            &operator_key,
        )
        .expect("sign");
        let claims = verify(&token).expect("verifies");
        assert_eq!(claims["nats"]["limits"]["disk_storage"], -1);
        assert_eq!(
            claims["nats"]["revocations"].as_object().map(|r| r.len()),
            Some(1)
        );
        let creds = creds("a.b.c", "SUAXXX");
        assert_eq!(jwt_of_creds(&creds), Some("a.b.c"));
    }
}
