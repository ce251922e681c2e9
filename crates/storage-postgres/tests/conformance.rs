//! The shared storage suite (`tessera_storage::conformance_tests!`), in full, on the machine's
//! real PostgreSQL: a fresh database per test, dropped afterwards, and the checks only
//! PostgreSQL needs. When PostgreSQL cannot be reached these tests fail; they never skip. They
//! are PostgreSQL tests: compiled with the feature `ci-tier` (which CI always enables).
#![cfg(feature = "ci-tier")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_storage::conformance::Factory;
use tessera_storage::prelude::*;
use tessera_storage::{StoreError, Taken};
use tessera_storage_postgres::PgStore;
use tessera_storage_postgres::testing::TestDatabase;

async fn fresh() -> (TestDatabase, PgStore) {
    let db = TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
    let store = PgStore::open(&db.url, 8).await.unwrap_or_else(|e| panic!("opening {}: {e}", db.url));
    (db, store)
}

/// A fresh database and a pool on it; the second handle is another pool (another instance).
struct Fresh {
    db: TestDatabase,
    store: PgStore,
}

impl Factory for Fresh {
    async fn open() -> Self {
        let (db, store) = fresh().await;
        Self { db, store }
    }
    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }
    async fn second(&self) -> Arc<dyn Store> {
        Arc::new(PgStore::open(&self.db.url, 8).await.unwrap_or_else(|e| panic!("opening {}: {e}", self.db.url)))
    }
}

tessera_storage::conformance_tests!(crate::Fresh);

/// Reopening (as every instance and `tessera migrate` does) migrates nothing and keeps data.
#[tokio::test]
async fn reopening_keeps_the_data() {
    let (db, store) = fresh().await;
    store.create_client(&tessera_storage::conformance::client("c-1")).await.unwrap();
    let again = PgStore::open(&db.url, 2).await.unwrap();
    assert!(again.find_client("c-1").await.unwrap().is_some());
    again.close().await;
    store.close().await;
}

/// Two instances start at once against an empty database: the migrations run once (advisory
/// lock), neither fails.
#[tokio::test]
async fn concurrent_migrations_are_safe() {
    let db = TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
    let (a, b) = tokio::join!(PgStore::open(&db.url, 2), PgStore::open(&db.url, 2));
    let (a, b) = (a.unwrap(), b.unwrap());
    a.create_client(&tessera_storage::conformance::client("c-1")).await.unwrap();
    assert!(b.find_client("c-1").await.unwrap().is_some());
    a.close().await;
    b.close().await;
}

/// Single use holds across separate pools (separate instances): of 50 concurrent takes of one
/// code spread over two pools, exactly one wins; likewise for a refresh token.
#[tokio::test]
async fn single_use_across_two_pools() {
    let (db, a) = fresh().await;
    let b = PgStore::open(&db.url, 8).await.unwrap();
    a.create_code(&tessera_storage::conformance::code("shared")).await.unwrap();
    a.create_refresh_token(&tessera_storage::conformance::refresh("rt", "fam")).await.unwrap();
    let takes = (0..50).map(|i| {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { s.take_code("shared", 20).await.unwrap() }
    });
    let results = futures_util::future::join_all(takes).await;
    assert_eq!(results.iter().filter(|r| matches!(r, Taken::Taken(_))).count(), 1, "exactly one take of the code wins");
    let takes = (0..50).map(|i| {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { s.take_refresh_token("rt", 5, 0).await.unwrap() }
    });
    let results = futures_util::future::join_all(takes).await;
    assert_eq!(results.iter().filter(|r| matches!(r, Taken::Taken(_))).count(), 1, "exactly one rotation wins");
    a.close().await;
    b.close().await;
}

/// A database that is not there is `Unavailable` (→ 503), quickly, never a hang and never
/// `Other`; opening fails the same way.
#[tokio::test]
async fn unreachable_database_is_unavailable() {
    // Nothing listens on port 1.
    let store = PgStore::connect("postgres://postgres@127.0.0.1:1/none", 2).unwrap();
    let started = Instant::now();
    match store.find_client("x").await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10), "gave up after {:?}", started.elapsed());
    assert!(matches!(PgStore::open("postgres://postgres@127.0.0.1:1/none", 1).await, Err(StoreError::Unavailable(_))));
    assert!(matches!(PgStore::connect("mysql://x", 1), Err(StoreError::Other(_))));
}

/// Throttled guesses across separate pools (separate instances), issue 13 finding 1: of 60
/// concurrent attempts for one account over two pools, exactly the burst is allowed; over two
/// keys, the tighter one bounds them, with no deadlock however the keys are ordered.
#[tokio::test]
async fn throttle_attempts_across_two_pools() {
    use tessera_storage::{ThrottleAttempt, ThrottleRule};
    let (db, a) = fresh().await;
    let b = PgStore::open(&db.url, 8).await.unwrap();
    let user = ThrottleRule { burst: 4, max_delay: 900, reset_after: 900 };
    let addr = ThrottleRule { burst: 10, max_delay: 60, reset_after: 900 };
    let attempts = (0..60).map(|i| {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        // Half name the keys in one order, half in the other.
        let keys = if i % 4 < 2 {
            vec![("user:alice".to_string(), user), ("addr:1".to_string(), addr)]
        } else {
            vec![("addr:1".to_string(), addr), ("user:alice".to_string(), user)]
        };
        async move { s.take_throttle_attempt(&keys, 50).await.unwrap() }
    });
    let results = futures_util::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| matches!(r, ThrottleAttempt::Allowed { .. })).count(), 4, "{results:?}");
    let attempts = (0..60).map(|i| {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let keys = vec![(format!("user:u{i}"), user), ("addr:2".to_string(), addr)];
        async move { s.take_throttle_attempt(&keys, 50).await.unwrap() }
    });
    let results = futures_util::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| matches!(r, ThrottleAttempt::Allowed { .. })).count(), 10, "the address's burst bounds sixty users");
    a.close().await;
    b.close().await;
}
