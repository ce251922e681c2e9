//! A small time-bounded cache for hot lookups (clients, the scope catalog). Entries live at
//! most their time to live, so a change made by another process (the CLI, another instance) is
//! seen within that bound; the cache is cleared when it grows past its capacity. Time is the
//! service's injected [`Clock`]: a test moves it instead of sleeping.

use crate::clock::Clock;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub struct TtlCache<K, V> {
    /// Whole seconds: an entry made at second `t` is fresh while the clock reads less than
    /// `t + ttl`, so it is never older than `ttl`.
    ttl: i64,
    capacity: usize,
    clock: Arc<dyn Clock>,
    map: RwLock<HashMap<K, (i64, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, capacity: usize, clock: Arc<dyn Clock>) -> Self {
        Self { ttl: ttl.as_secs() as i64, capacity, clock, map: RwLock::new(HashMap::new()) }
    }

    /// The value for `k` if fresh; looked up by a borrowed form (`&str` for `String` keys), so
    /// a lookup allocates nothing.
    pub fn get<Q: ?Sized + Eq + Hash>(&self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let map = self.map.read().ok()?;
        let now = self.clock.now();
        map.get(k).filter(|(at, _)| now - at < self.ttl && now >= *at).map(|(_, v)| v.clone())
    }

    pub fn insert(&self, k: K, v: V) {
        if let Ok(mut map) = self.map.write() {
            if map.len() >= self.capacity {
                map.clear();
            }
            map.insert(k, (self.clock.now(), v));
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
        let clock = Arc::new(crate::ManualClock::new());
        let c = TtlCache::new(Duration::from_secs(2), 2, clock.clone());
        c.insert(1, "a");
        clock.advance(1);
        assert_eq!(c.get(&1), Some("a"), "fresh within the bound");
        clock.advance(1);
        assert_eq!(c.get(&1), None, "expired at the bound");
        c.insert(1, "a");
        clock.advance(-1);
        assert_eq!(c.get(&1), None, "a clock set back does not keep an entry alive");
        clock.advance(1);
        c.insert(1, "a");
        c.insert(2, "b");
        c.insert(3, "c");
        assert_eq!(c.get(&1), None, "cleared at capacity");
        assert_eq!(c.get(&3), Some("c"));
    }
}
