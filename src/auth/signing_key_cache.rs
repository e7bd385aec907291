//! Per-core cache of SigV4 signing keys: the four-HMAC key chain changes once a
//! day per key pair, so computing it on every request is waste.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::auth::sigv4::derive_signing_key;
use crate::auth::SecretKey;

pub struct SigningKeyCache {
    capacity: usize,
    /// Keyed by a hash of (secret, date, region, service), so secrets are not map keys.
    keys: HashMap<[u8; 32], [u8; 32]>,
}

impl SigningKeyCache {
    pub fn new(capacity: usize) -> SigningKeyCache {
        SigningKeyCache {
            capacity: capacity.max(1),
            keys: HashMap::new(),
        }
    }

    pub fn get(&mut self, secret: &SecretKey, date: &str, region: &str, service: &str) -> [u8; 32] {
        let mut id = Sha256::new();
        for part in [secret.expose(), date, region, service] {
            id.update(part.as_bytes());
            id.update([0u8]);
        }
        let id: [u8; 32] = id.finalize().into();
        if let Some(key) = self.keys.get(&id) {
            return *key;
        }
        if self.keys.len() >= self.capacity {
            // Full: start over. Entries go stale daily anyway, and a rebuild costs one chain each.
            self.keys.clear();
        }
        let key = derive_signing_key(secret.expose(), date, region, service);
        self.keys.insert(id, key);
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
}
