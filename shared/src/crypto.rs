//! The envelope FLick stores secrets in (server credentials, webhook secrets): AES-256-GCM with
//! a fresh random 96-bit nonce per encryption, the record's id as associated data (a ciphertext
//! copied onto another record does not decrypt), and a key id so keys can rotate.
//!
//! Layout: `[1: format version][4: key id, big-endian][12: nonce][ciphertext + 16-byte tag]`.
//! There is no nonce setting: reusing a nonce under one key would leak plaintexts and the
//! authentication key.

use std::collections::HashMap;
use std::fmt;

use aes_gcm::aead::{Aead, Generate, Nonce, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine as _;

use crate::Secret;

const FORMAT_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
const TAG_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the sealed value is too short to be an envelope ({0} bytes)")]
    Truncated(usize),
    #[error("unknown envelope format version {0}")]
    UnknownVersion(u8),
    #[error("the value was sealed with key id {0}, which is not configured")]
    UnknownKey(u32),
    #[error(
        "decryption failed: the ciphertext was altered, belongs to another record, or the key is wrong (key id {0})"
    )]
    Authentication(u32),
    #[error("the system random number generator failed")]
    Random,
}

/// An encryption key must be exactly 32 bytes, given as 64 hex digits or as base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 32 bytes given as 64 hex digits or base64 (it decodes to {0} bytes)")]
pub struct BadKey(pub usize);

/// Decodes a 32-byte key from hex or base64 (standard or URL-safe, padded or not).
pub fn decode_key(text: &str) -> Result<[u8; 32], BadKey> {
    let text = text.trim();
    let bytes = hex::decode(text).ok().or_else(|| {
        [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
    });
    match bytes {
        Some(bytes) => <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| BadKey(bytes.len())),
        None => Err(BadKey(0)),
    }
}

/// The keys a service can decrypt with, and the one it encrypts with.
#[derive(Clone)]
pub struct KeyRing {
    current: u32,
    keys: HashMap<u32, Aes256Gcm>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<_> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("KeyRing")
            .field("current", &self.current)
            .field("key_ids", &ids)
            .finish()
    }
}

impl KeyRing {
    /// A ring that encrypts with `key` under id `key_id`.
    pub fn new(key_id: u32, key: &[u8; 32]) -> Self {
        Self {
            current: key_id,
            keys: HashMap::from([(key_id, Aes256Gcm::new(key.into()))]),
        }
    }

    /// Adds an older key, still accepted for decryption (key rotation).
    pub fn with_previous(mut self, key_id: u32, key: &[u8; 32]) -> Self {
        self.keys
            .entry(key_id)
            .or_insert_with(|| Aes256Gcm::new(key.into()));
        self
    }

    /// Builds the ring from the configured key (hex or base64) and older ones.
    pub fn from_secrets(
        key_id: u32,
        key: &Secret,
        previous: &HashMap<u32, Secret>,
    ) -> Result<Self, BadKey> {
        let mut ring = Self::new(key_id, &decode_key(key.expose())?);
        for (id, old) in previous {
            ring = ring.with_previous(*id, &decode_key(old.expose())?);
        }
        Ok(ring)
    }

    pub fn current_key_id(&self) -> u32 {
        self.current
    }

    /// Encrypts `plaintext` for the record `record_id` with a fresh random nonce.
    pub fn seal(&self, record_id: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let cipher = self
            .keys
            .get(&self.current)
            .ok_or(CryptoError::UnknownKey(self.current))?;
        let nonce = Nonce::<Aes256Gcm>::try_generate().map_err(|_| CryptoError::Random)?;
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: record_id,
                },
            )
            .map_err(|_| CryptoError::Authentication(self.current))?;
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.current.to_be_bytes());
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what [`KeyRing::seal`] produced for the same record.
    pub fn open(&self, record_id: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < HEADER_LEN + TAG_LEN {
            return Err(CryptoError::Truncated(sealed.len()));
        }
        if sealed[0] != FORMAT_VERSION {
            return Err(CryptoError::UnknownVersion(sealed[0]));
        }
        let key_id = u32::from_be_bytes([sealed[1], sealed[2], sealed[3], sealed[4]]);
        let cipher = self
            .keys
            .get(&key_id)
            .ok_or(CryptoError::UnknownKey(key_id))?;
        let nonce = Nonce::<Aes256Gcm>::try_from(&sealed[5..HEADER_LEN])
            .map_err(|_| CryptoError::Truncated(sealed.len()))?;
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: &sealed[HEADER_LEN..],
                    aad: record_id,
                },
            )
            .map_err(|_| CryptoError::Authentication(key_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::new(1, &[7u8; 32])
    }

    #[test]
    fn seals_and_opens_for_the_same_record_only() {
        let sealed = ring().seal(b"record-1", b"hunter2").expect("seal");
        assert!(
            !sealed.windows(7).any(|w| w == b"hunter2"),
            "no plaintext in the envelope"
        );
        assert_eq!(ring().open(b"record-1", &sealed).expect("open"), b"hunter2");
        assert_eq!(
            ring().open(b"record-2", &sealed),
            Err(CryptoError::Authentication(1))
        );
    }

    #[test]
    fn every_seal_draws_a_fresh_nonce() {
        let a = ring().seal(b"r", b"same").expect("seal");
        let b = ring().seal(b"r", b"same").expect("seal");
        assert_ne!(a[5..HEADER_LEN], b[5..HEADER_LEN]);
        assert_ne!(a, b);
    }

    #[test]
    fn tampering_anywhere_is_detected() {
        let sealed = ring().seal(b"r", b"secret value").expect("seal");
        for i in HEADER_LEN..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                ring().open(b"r", &bad),
                Err(CryptoError::Authentication(1)),
                "byte {i}"
            );
        }
        let mut bad_nonce = sealed.clone();
        bad_nonce[6] ^= 0x80;
        assert!(ring().open(b"r", &bad_nonce).is_err());
        assert_eq!(
            ring().open(b"r", &sealed[..10]),
            Err(CryptoError::Truncated(10))
        );
    }

    #[test]
    fn rotated_keys_still_open_old_values_and_seal_with_the_new_one() {
        let old = ring().seal(b"r", b"v").expect("seal");
        let rotated = KeyRing::new(2, &[9u8; 32]).with_previous(1, &[7u8; 32]);
        assert_eq!(rotated.open(b"r", &old).expect("open"), b"v");
        let new = rotated.seal(b"r", b"v").expect("seal");
        assert_eq!(u32::from_be_bytes([new[1], new[2], new[3], new[4]]), 2);
        assert_eq!(ring().open(b"r", &new), Err(CryptoError::UnknownKey(2)));
    }

    #[test]
    fn keys_decode_from_hex_or_base64_and_must_be_32_bytes() {
        let hex = "07".repeat(32);
        assert_eq!(decode_key(&hex), Ok([7u8; 32]));
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(decode_key(&b64), Ok([7u8; 32]));
        assert_eq!(decode_key("your-32-byte-key"), Err(BadKey(12)));
        assert!(decode_key(&"ab".repeat(16)).is_err());
    }
}
