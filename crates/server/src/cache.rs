//! A small time-bounded cache for hot lookups (clients, the scope catalog). Entries live at
//! most [`TtlCache::ttl`], so a change made by another process (the CLI, another instance) is
//! seen within that bound; the cache is cleared when it grows past its capacity.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    map: RwLock<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity, map: RwLock::new(HashMap::new()) }
    }

    /// The value for `k` if fresh; looked up by a borrowed form (`&str` for `String` keys), so
    /// a lookup allocates nothing.
    pub fn get<Q: ?Sized + Eq + Hash>(&self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let map = self.map.read().ok()?;
        map.get(k).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    pub fn insert(&self, k: K, v: V) {
        if let Ok(mut map) = self.map.write() {
            if map.len() >= self.capacity {
                map.clear();
            }
            map.insert(k, (Instant::now(), v));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut map) = self.map.write() {
            map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_capacity_is_bounded() {
        let c = TtlCache::new(Duration::from_millis(30), 2);
        c.insert(1, "a");
        assert_eq!(c.get(&1), Some("a"));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get(&1), None, "expired");
        c.insert(1, "a");
        c.insert(2, "b");
        c.insert(3, "c");
        assert_eq!(c.get(&1), None, "cleared at capacity");
        assert_eq!(c.get(&3), Some("c"));
    }
}
