//! Which secrets a service refuses to start with: values anyone can read in this repository,
//! and values that are obviously not random.
//!
//! A gateway started with a published `JWT_SECRET` accepts tokens anyone can sign, and an
//! `ENCRYPTION_KEY` copied from a README seals nothing. Such a start is refused with one line
//! naming the setting and how to generate a value; `check-config` reports the same line.
//!
//! "Published" means: the placeholders earlier `.env.example` files carried (a `.env` copied from
//! one may still hold them; `flick init` generates every secret now), the original project's
//! examples, and anything still carrying a `change-me` marker. "Obviously not random"
//! means: one byte repeated, a short pattern repeated, an arithmetic run (`abcdef…`, `0123…`), or
//! fewer distinct bytes than random material of that length would all but certainly have (16 of
//! 32; hex and base64 text is judged by the bytes it decodes to, so `openssl rand -hex 32` passes
//! and `aaaa…` does not). It is a tripwire for placeholders and typing, not a strength meter.

use std::collections::HashSet;

/// Examples published elsewhere: the original project's README (`JWT_SECRET=your-secret-key`,
/// `ENCRYPTION_KEY=your-32-byte-key`, `postgresql://user:password@…`), and the placeholders of
/// earlier `.env.example` files.
pub const PUBLISHED: &[&str] = &[
    "your-secret-key",
    "your-32-byte-key",
    "password",
    "change-me-postgres",
    "change-me-collector",
    "change-me-persister",
    "change-me-alerter",
    "change-me-gateway",
    "change-me-integration",
    "change-me-to-at-least-32-random-bytes",
    "changeMe/openssl+rand+base64+32/changeMe000=",
];

/// How to make a good value for each kind of secret (shown in the refusal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// An HMAC signing key (`JWT_SECRET`).
    SigningKey,
    /// A 32-byte encryption key (`ENCRYPTION_KEY`), judged on its decoded bytes.
    EncryptionKey,
    /// A password (NATS users, the database).
    Password,
}

impl SecretKind {
    fn how_to_generate(self) -> &'static str {
        match self {
            SecretKind::SigningKey => "generate one with `openssl rand -base64 48`",
            SecretKind::EncryptionKey => "generate one with `openssl rand -hex 32`",
            SecretKind::Password => "generate one with `openssl rand -hex 24`",
        }
    }
}

/// Whether `value` is one of the published values, or still carries a placeholder marker.
pub fn is_published(value: &str) -> bool {
    let value = value.trim();
    let lower = value.to_ascii_lowercase();
    lower.contains("change-me") || lower.contains("changeme") || PUBLISHED.contains(&value)
}

/// The bytes a value stands for, and whether they were decoded: hex or base64 text decodes to
/// its bytes (that is what its randomness is in); anything else is its own bytes.
fn material(value: &str) -> (Vec<u8>, bool) {
    use base64::Engine as _;
    let value = value.trim();
    let is_hex = value.len() >= 32
        && value.len().is_multiple_of(2)
        && value.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex && let Ok(bytes) = hex::decode(value) {
        return (bytes, true);
    }
    let looks_base64 = value.len() >= 24
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/-_=".contains(&b));
    if looks_base64 {
        for engine in [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            if let Ok(bytes) = engine.decode(value) {
                return (bytes, true);
            }
        }
    }
    (value.as_bytes().to_vec(), false)
}

/// Why `bytes` are obviously not random, if they are. `binary`: random bytes (a decoded key),
/// rather than text drawn from a smaller alphabet.
pub fn low_entropy(bytes: &[u8], binary: bool) -> Option<&'static str> {
    if bytes.is_empty() {
        return Some("is empty");
    }
    let distinct = bytes.iter().collect::<HashSet<_>>().len();
    if distinct == 1 {
        return Some("is one character repeated");
    }
    let periodic = (1..=bytes.len() / 2).any(|period| {
        bytes.len().is_multiple_of(period)
            && bytes.chunks(period).all(|chunk| chunk == &bytes[..period])
    });
    if periodic {
        return Some("is a short pattern repeated");
    }
    if longest_run(bytes) * 2 >= bytes.len() && bytes.len() > 2 {
        return Some("is mostly a run of consecutive characters");
    }
    // 32 random bytes have about 30 distinct values; fewer than 16 happens with a probability
    // below 1e-15, and shorter material is held to half its length. Text may come from a small
    // alphabet (16 hex digits): a third of its length, which random hex misses once in 10^5.
    let wanted = bytes.len().min(32) / if binary { 2 } else { 3 };
    if distinct < wanted {
        return Some("has too few distinct bytes to be random");
    }
    None
}

/// The length of the longest stretch whose neighbours all differ by one same step (`abcd`,
/// `0246`, `zyx`).
fn longest_run(bytes: &[u8]) -> usize {
    let mut longest = bytes.len().min(1);
    let mut current = longest;
    let mut step = None;
    for pair in bytes.windows(2) {
        let this = pair[1].wrapping_sub(pair[0]);
        if step == Some(this) {
            current += 1;
        } else {
            current = 2;
            step = Some(this);
        }
        longest = longest.max(current);
    }
    longest
}

/// Why `value` must not be used as the secret `setting`, with how to make a good one; `None`
/// when it may.
pub fn refusal(value: &str, kind: SecretKind) -> Option<String> {
    let reason = if is_published(value) {
        "is a value published in FLick's repository (an example or a placeholder): anyone can use it"
    } else {
        let (bytes, binary) = match kind {
            SecretKind::EncryptionKey => crate::crypto::decode_key(value)
                .map(|key| (key.to_vec(), true))
                .unwrap_or_else(|_| material(value)),
            SecretKind::SigningKey | SecretKind::Password => material(value),
        };
        // Judged as text too: `abcdef…` is a run as text, whatever its base64 decodes to.
        low_entropy(value.trim().as_bytes(), false).or_else(|| low_entropy(&bytes, binary))?
    };
    Some(format!("{reason}; {}", kind.how_to_generate()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_hex(bytes: usize) -> String {
        let mut buffer = vec![0u8; bytes];
        getrandom_fill(&mut buffer);
        hex::encode(buffer)
    }

    fn getrandom_fill(buffer: &mut [u8]) {
        // uuid v4 is random enough for a test and already a dependency.
        for chunk in buffer.chunks_mut(16) {
            let id = uuid::Uuid::new_v4();
            chunk.copy_from_slice(&id.as_bytes()[..chunk.len()]);
        }
    }

    #[test]
    fn every_published_placeholder_is_refused() {
        for value in PUBLISHED.iter().copied() {
            assert!(is_published(value), "{value}");
            for kind in [
                SecretKind::SigningKey,
                SecretKind::EncryptionKey,
                SecretKind::Password,
            ] {
                let refusal = refusal(value, kind).expect("refused");
                assert!(refusal.contains("published"), "{refusal}");
                assert!(refusal.contains("openssl rand"), "{refusal}");
            }
        }
        assert!(is_published("your-secret-key"));
        assert!(is_published("my-Change-Me-secret-of-at-least-32-bytes"));
    }

    #[test]
    fn obviously_non_random_values_are_refused() {
        for value in [
            "a".repeat(40),
            "ab".repeat(20),
            "0f1e2d3c4b5a69788796a5b4c3d2e1f0".repeat(2),
            "abcdefghijklmnopqrstuvwxyzABCDEF".to_owned(),
            "00".repeat(32),
            "aabbaabbccddccddaabbaabbccddccdd1".to_owned(),
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab".to_owned(),
        ] {
            let refusal = refusal(&value, SecretKind::SigningKey).unwrap_or_default();
            assert!(
                ["repeated", "consecutive", "distinct"]
                    .iter()
                    .any(|why| refusal.contains(why)),
                "{value}: {refusal:?}"
            );
        }
        assert!(
            low_entropy(b"one-one-one-", false)
                .unwrap_or_default()
                .contains("pattern")
        );
        assert!(
            low_entropy(b"0123456789", false)
                .unwrap_or_default()
                .contains("consecutive")
        );
        let key = "11".repeat(31) + "12";
        assert!(refusal(&key, SecretKind::EncryptionKey).is_some(), "{key}");
    }

    #[test]
    fn generated_values_pass() {
        for _ in 0..200 {
            assert_eq!(refusal(&random_hex(32), SecretKind::EncryptionKey), None);
            assert_eq!(refusal(&random_hex(32), SecretKind::SigningKey), None);
            assert_eq!(refusal(&random_hex(24), SecretKind::Password), None);
            assert_eq!(refusal(&random_hex(8), SecretKind::Password), None);
        }
        assert_eq!(
            refusal("correct horse battery staple", SecretKind::Password),
            None
        );
    }
}
