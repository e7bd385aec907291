//! Per-core cache of SigV4 signing keys: the four-HMAC key chain changes once a
//! day per key pair, so computing it on every request is waste.

use std::collections::HashMap;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::auth::sigv4::derive_signing_key;
use crate::auth::SecretKey;

/// A signing key, with an HMAC under it whose two key blocks are hashed already: a
/// signature check then hashes only the string to sign, not the key again.
#[derive(Clone)]
pub struct SigningKey {
    pub bytes: [u8; 32],
    mac: Hmac<Sha256>,
}

impl SigningKey {
    fn new(bytes: [u8; 32]) -> SigningKey {
        // HMAC accepts keys of any length, so this cannot fail.
        let mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&bytes).unwrap_or_else(|_| unreachable!());
        SigningKey { bytes, mac }
    }

    /// Whether `signature_hex` is the HMAC of `data` under this key, compared in
    /// constant time.
    pub fn signs(&self, data: &[u8], signature_hex: &str) -> bool {
        let mut expected = [0u8; 32];
        if !crate::checksum::hex_decode_into(signature_hex, &mut expected) {
            return false;
        }
        let mut mac = self.mac.clone();
        mac.update(data);
        mac.verify_slice(&expected).is_ok()
    }
}

pub struct SigningKeyCache {
    capacity: usize,
    /// Keyed by a hash of (secret, date, region, service), so secrets are not map keys.
    keys: HashMap<[u8; 32], SigningKey>,
}

impl SigningKeyCache {
    pub fn new(capacity: usize) -> SigningKeyCache {
        SigningKeyCache {
            capacity: capacity.max(1),
            keys: HashMap::new(),
        }
    }

    /// The signing key of (secret, date, region, service), as bytes.
    pub fn get(&mut self, secret: &SecretKey, date: &str, region: &str, service: &str) -> [u8; 32] {
        self.key(secret, date, region, service).bytes
    }

    /// The signing key of (secret, date, region, service), ready to check signatures.
    pub fn key(
        &mut self,
        secret: &SecretKey,
        date: &str,
        region: &str,
        service: &str,
    ) -> SigningKey {
        let mut id = Sha256::new();
        for part in [secret.expose(), date, region, service] {
            id.update(part.as_bytes());
            id.update([0u8]);
        }
        let id: [u8; 32] = id.finalize().into();
        if let Some(key) = self.keys.get(&id) {
            return key.clone();
        }
        if self.keys.len() >= self.capacity {
            // Full: start over. Entries go stale daily anyway, and a rebuild costs one chain each.
            self.keys.clear();
        }
        let key = SigningKey::new(derive_signing_key(secret.expose(), date, region, service));
        self.keys.insert(id, key.clone());
        key
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caches_and_bounds() {
        let mut cache = SigningKeyCache::new(2);
        let secret = SecretKey::new("s".into());
        let key = cache.get(&secret, "20130524", "us-east-1", "s3");
        assert_eq!(key, derive_signing_key("s", "20130524", "us-east-1", "s3"));
        assert_eq!(cache.get(&secret, "20130524", "us-east-1", "s3"), key);
        cache.get(&secret, "20130525", "us-east-1", "s3");
        cache.get(&secret, "20130526", "us-east-1", "s3");
        assert!(cache.len() <= 2);
    }

    #[test]
    fn checks_signatures_as_a_fresh_hmac() {
        let mut cache = SigningKeyCache::new(2);
        let secret = SecretKey::new("s".into());
        let key = cache.key(&secret, "20130524", "us-east-1", "s3");
        let good = crate::checksum::hex_encode(&crate::auth::sigv4::hmac_sha256(&key.bytes, b"x"));
        assert!(key.signs(b"x", &good));
        assert!(key.signs(b"x", &good.to_ascii_uppercase()));
        assert!(!key.signs(b"y", &good));
        assert!(!key.signs(b"x", &good[..62]));
        assert!(!key.signs(b"x", &format!("{good}00")));
        assert!(!key.signs(b"x", ""));
    }
}
