//! Encryption at rest of what a destination holds in secret (its credentials and delivery
//! metadata): AES-256-GCM under a key derived from `AES_ENCRYPTION_SECRET` (SHA-256 of it),
//! a random 96-bit nonce per record, and the record's key as associated data, so a sealed blob
//! copied under another destination's key does not open. A short key check value kept in the
//! store's `meta` table tells at open whether the configured secret is the one the file was
//! written with.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::digest::{digest, SHA256};

use super::StoreError;
use crate::model::random::os_random;

/// The `meta` entry holding the key check value of the secret destinations are sealed with.
pub const KEY_CHECK: &str = "encryption_key_check";

/// A sealing key.
pub struct SecretBox {
    key: LessSafeKey,
    check: [u8; 8],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// The key of `secret` (any non-empty text).
    pub fn new(secret: &str) -> Result<SecretBox, StoreError> {
        let hash = digest(&SHA256, secret.as_bytes());
        let unbound =
            UnboundKey::new(&AES_256_GCM, hash.as_ref()).map_err(|_| StoreError::Secrets {
                reason: "cannot make an AES-256-GCM key".into(),
            })?;
        // The check value: the first 8 bytes of SHA-256("outpost key check" ++ key), which
        // names the key without revealing it.
        let mut material = b"outpost key check".to_vec();
        material.extend_from_slice(hash.as_ref());
        let mut check = [0u8; 8];
        check.copy_from_slice(&digest(&SHA256, &material).as_ref()[..8]);
        Ok(SecretBox {
            key: LessSafeKey::new(unbound),
            check,
        })
    }

    /// The key check value kept in `meta`.
    pub fn check(&self) -> [u8; 8] {
        self.check
    }

    /// `nonce ++ ciphertext ++ tag` of `plaintext`, bound to `context`.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        os_random(&mut nonce).map_err(|e| StoreError::Secrets {
            reason: format!("no random nonce: {e}"),
        })?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        sealed.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut body,
            )
            .map_err(|_| StoreError::Secrets {
                reason: "sealing failed".into(),
            })?;
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    /// The plaintext of a blob [`SecretBox::seal`] made for `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let wrong = || StoreError::Secrets {
            reason: "a destination's secrets do not open with AES_ENCRYPTION_SECRET (wrong \
                     secret, or a damaged record)"
                .into(),
        };
        if sealed.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context), &mut body)
            .map_err(|_| wrong())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let a = SecretBox::new("first secret").unwrap();
        let sealed = a.seal(b"dest-1", b"whsec_abc").unwrap();
        assert!(!sealed.windows(9).any(|w| w == b"whsec_abc"));
        assert_eq!(a.open(b"dest-1", &sealed).unwrap(), b"whsec_abc");
        assert!(a.open(b"dest-2", &sealed).is_err(), "bound to its record");
        let b = SecretBox::new("second secret").unwrap();
        assert!(b.open(b"dest-1", &sealed).is_err(), "another key");
        assert_ne!(a.check(), b.check());
        assert_eq!(a.check(), SecretBox::new("first secret").unwrap().check());
    }

    #[test]
    fn every_seal_takes_a_fresh_nonce() {
        let key = SecretBox::new("s").unwrap();
        assert_ne!(key.seal(b"c", b"x").unwrap(), key.seal(b"c", b"x").unwrap());
        assert!(key.open(b"c", b"short").is_err());
    }
}
