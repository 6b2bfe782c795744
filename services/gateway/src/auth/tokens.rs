//! Access tokens (JWT, HS256 only, short-lived) and refresh tokens (opaque, stored hashed).

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Role;

/// The claims of an access token. `exp`, `iat`, `sub` and `sid` are required on decoding.
///
/// `role` is what the account had when the token was issued, for clients to read; the gateway
/// itself takes the role from the database on every request (see `auth::access`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    /// The session (login) the token belongs to: logging out ends it.
    pub sid: Uuid,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: i64,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Keys for `secret`; only HS256 tokens with `exp`, `iat` and `sub` are accepted.
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(900),
        }
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    pub fn issue(&self, user: Uuid, session: Uuid, role: Role) -> anyhow::Result<(String, Claims)> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user,
            sid: session,
            role,
            iat: now,
            exp: now + self.ttl_secs,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, claims))
    }

    /// The claims of a valid token; `None` for anything forged, expired or malformed, and for a
    /// token issued in the future or living longer than the configured lifetime (a token signed
    /// with a leaked key for a year is not a token this gateway issued).
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(5);
        let now = chrono::Utc::now().timestamp();
        let plausible = claims.iat <= now + leeway && claims.exp - claims.iat <= self.ttl_secs;
        plausible.then_some(claims)
    }
}

/// A new refresh token: 256 random bits, URL-safe base64.
pub fn new_refresh_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|err| anyhow::anyhow!("system random number generator: {err}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored of a refresh token: its SHA-256 (a database leak yields no usable token).
pub fn refresh_token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_other_secrets_are_refused() {
        let keys = JwtKeys::new(&[1u8; 32], 900);
        let user = Uuid::new_v4();
        let session = Uuid::new_v4();
        let (token, claims) = keys.issue(user, session, Role::Admin).expect("issue");
        assert_eq!(claims.exp - claims.iat, 900);
        let back = keys.verify(&token).expect("valid");
        assert_eq!(
            (back.sub, back.sid, back.role),
            (user, session, Role::Admin)
        );
        assert!(
            JwtKeys::new(&[1u8; 32], 600).verify(&token).is_none(),
            "longer-lived than this gateway issues"
        );
        assert!(JwtKeys::new(&[2u8; 32], 900).verify(&token).is_none());
        assert!(keys.verify("not.a.token").is_none());
    }

    #[test]
    fn refresh_tokens_are_random_and_stored_hashed() {
        let a = new_refresh_token().expect("random");
        let b = new_refresh_token().expect("random");
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(refresh_token_hash(&a).len(), 32);
        assert_ne!(refresh_token_hash(&a), a.as_bytes());
    }
}
