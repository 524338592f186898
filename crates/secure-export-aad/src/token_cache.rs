//! A bounded cache of successful verifications, keyed by a SHA-256 digest of the token.
//!
//! Only the digest is kept, never the token. Entries older than the maximum age are dropped on
//! lookup; when full, the oldest entry is evicted. The verifier re-checks every hit (times, key
//! set), so the cache only saves the signature and claim parsing work.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use sha2::{Digest as _, Sha256};

/// SHA-256 of the exact token bytes.
pub(crate) type TokenDigest = [u8; 32];

/// The digest under which a token is cached.
pub(crate) fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// A bounded map from token digest to `V`, oldest evicted first.
#[derive(Debug)]
pub(crate) struct TokenCache<V> {
    capacity: usize,
    max_age_secs: i64,
    state: Mutex<State<V>>,
}

#[derive(Debug)]
struct State<V> {
    map: HashMap<TokenDigest, Entry<V>>,
    /// Insertion order; an item whose `seq` no longer matches the map entry is stale.
    order: VecDeque<(TokenDigest, u64)>,
    next_seq: u64,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    cached_at: i64,
    seq: u64,
}

impl<V: Clone> TokenCache<V> {
    /// A cache of at most `capacity` entries (at least 1), each kept at most `max_age_secs`.
    pub(crate) fn new(capacity: usize, max_age_secs: i64) -> Self {
        Self {
            capacity: capacity.max(1),
            max_age_secs,
            state: Mutex::new(State {
                map: HashMap::new(),
                order: VecDeque::new(),
                next_seq: 0,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State<V>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value cached for `key`, unless it is older than the maximum age at `now` (Unix
    /// seconds), in which case it is dropped.
    pub(crate) fn get(&self, key: &TokenDigest, now: i64) -> Option<V> {
        let mut s = self.state();
        let entry = s.map.get(key)?;
        if now.saturating_sub(entry.cached_at) >= self.max_age_secs {
            s.map.remove(key);
            return None;
        }
        Some(entry.value.clone())
    }

    /// Caches `value` under `key` at `now`, evicting the oldest entries beyond the capacity.
    pub(crate) fn insert(&self, key: TokenDigest, value: V, now: i64) {
        let mut s = self.state();
        if let Some(existing) = s.map.get_mut(&key) {
            // Same token verified again (e.g. concurrently): refresh in place, keep its slot.
            existing.value = value;
            return;
        }
        while s.map.len() >= self.capacity {
            let Some((old, seq)) = s.order.pop_front() else {
                break;
            };
            if s.map.get(&old).is_some_and(|e| e.seq == seq) {
                s.map.remove(&old);
            }
        }
        let seq = s.next_seq;
        s.next_seq = s.next_seq.wrapping_add(1);
        s.map.insert(
            key,
            Entry {
                value,
                cached_at: now,
                seq,
            },
        );
        s.order.push_back((key, seq));
        // Entries removed on lookup leave stale order items behind: compact now and then.
        if s.order.len() > self.capacity.saturating_mul(2) {
            let State { map, order, .. } = &mut *s;
            order.retain(|(k, seq)| map.get(k).is_some_and(|e| e.seq == *seq));
        }
    }

    /// Drops the entry for `key`, if any.
    pub(crate) fn remove(&self, key: &TokenDigest) {
        self.state().map.remove(key);
    }

    /// Number of entries (including ones past their age, until looked up or evicted).
    pub(crate) fn len(&self) -> usize {
        self.state().map.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn key(n: u8) -> TokenDigest {
        [n; 32]
    }

    #[test]
    fn digest_is_sha256_of_the_token_bytes() {
        assert_eq!(
            hex_of(&digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(digest("a.b.c"), digest("a.b.d"));
    }

    fn hex_of(d: &TokenDigest) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn evicts_the_oldest_entry_when_full() {
        let c = TokenCache::new(3, 300);
        for n in 0..3 {
            c.insert(key(n), n, 0);
        }
        c.insert(key(3), 3, 0);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&key(0), 0), None);
        assert_eq!(c.get(&key(1), 0), Some(1));
        assert_eq!(c.get(&key(3), 0), Some(3));
        // Re-inserting an existing key does not take a second slot.
        c.insert(key(3), 30, 0);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&key(3), 0), Some(30));
        c.insert(key(4), 4, 0);
        assert_eq!(c.get(&key(1), 0), None);
        assert_eq!(c.get(&key(2), 0), Some(2));
    }

    #[test]
    fn entries_expire_after_the_maximum_age() {
        let c = TokenCache::new(10, 300);
        c.insert(key(1), 1, 1000);
        assert_eq!(c.get(&key(1), 1299), Some(1));
        assert_eq!(c.get(&key(1), 1300), None);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn removed_entries_do_not_grow_the_order_queue_unbounded() {
        let c = TokenCache::new(4, 300);
        for round in 0..100u8 {
            c.insert(key(round), round, 0);
            c.remove(&key(round));
        }
        assert_eq!(c.len(), 0);
        assert!(c.state().order.len() <= 8);
        // Stale order items never evict a live entry that reused the key.
        for n in 0..4 {
            c.insert(key(n), n, 0);
        }
        assert_eq!(c.len(), 4);
        for n in 0..4 {
            assert_eq!(c.get(&key(n), 0), Some(n));
        }
    }
}
