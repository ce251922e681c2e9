//! Tessera's storage layer, written once above the backends: the typed records
//! ([`records`]), the contracts per capability and the umbrella [`Store`] ([`contracts`]), the
//! SQL both backends share with its argument encoders ([`sql`]) and the row mapping
//! ([`row`]). A backend (`tessera-storage-sqlite`, `tessera-storage-postgres`) holds only what
//! differs per database: connections, locking, transactions and a few statements. With the
//! feature `conformance`, [`conformance_tests!`] generates the suite every backend must pass.
//!
//! Contracts worth knowing (the suite checks each):
//! - `take_*` is an atomic consume: of any number of concurrent calls for one key, exactly one
//!   returns [`Taken::Taken`]; the others see [`Taken::AlreadyUsed`] with the record.
//! - Secrets (refresh tokens, codes, session ids, client secrets) are stored only as hashes;
//!   the store never sees them in the clear.
//! - Times are Unix seconds, passed in by the caller; the store reads no clock.
#![forbid(unsafe_code)]

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod contracts;
pub mod records;
pub mod row;
pub mod sql;

pub use contracts::*;
pub use records::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

// --- Throttling of guesses: issue 13, findings 1 and 6 (RFC 6749 §10.10, NIST SP 800-63B
// §5.2.2, RFC 8628 §5.1). ---

/// How one throttle key admits guesses: `burst` attempts back to back, then a delay after each
/// failure that doubles (1 s, 2 s, 4 s …) up to `max_delay`; after `reset_after` seconds without
/// a failure past the delay, the key starts over. Refused attempts are not counted, so hammering
/// a refused key does not lengthen its delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    /// Attempts allowed back to back before the first delay (at least 1).
    pub burst: i64,
    /// The longest delay, seconds.
    pub max_delay: i64,
    /// Quiet seconds (after the delay ended) after which the failures are forgotten.
    pub reset_after: i64,
}

/// A key's stored state: consecutive failures (allowed attempts not given back) and the time of
/// the last one counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThrottleState {
    pub failures: i64,
    pub last_at: i64,
}

/// The rule's answer for one key at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleDecision {
    /// Allowed; the state to store (this attempt counted).
    Allow(ThrottleState),
    /// Refused until this many more seconds have passed (≥ 1).
    Refuse(i64),
}

impl ThrottleRule {
    /// The delay that follows `failures` consecutive failures: none within the burst, then
    /// 1, 2, 4 … seconds, capped at `max_delay`.
    pub fn delay(&self, failures: i64) -> i64 {
        let over = failures - self.burst.max(1);
        if over < 0 {
            return 0;
        }
        let doubled = if over >= 62 { i64::MAX } else { 1i64 << over };
        doubled.min(self.max_delay.max(0))
    }

    /// Whether an attempt under this rule is allowed at `now`, given the key's stored state.
    pub fn decide(&self, state: ThrottleState, now: i64) -> ThrottleDecision {
        let until = state.last_at.saturating_add(self.delay(state.failures));
        if now < until {
            return ThrottleDecision::Refuse(until - now);
        }
        let failures = if now >= until.saturating_add(self.reset_after) { 0 } else { state.failures };
        ThrottleDecision::Allow(ThrottleState { failures: failures + 1, last_at: now })
    }
}

/// Outcome of [`ThrottleStore::take_throttle_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThrottleAttempt {
    /// Go ahead and check the guess. `delay_if_wrong`: the seconds the keys are closed for if it
    /// proves wrong (0 within the burst).
    Allowed { delay_if_wrong: i64 },
    /// Not now: `key` (the first refusing key, in the order given) opens in `retry_after`
    /// seconds, the longest wait over the refusing keys.
    Refused { key: String, retry_after: i64 },
}

/// Decide an attempt over several keys from their states (in the order of `keys`): allowed only
/// if every key allows it. Both backends run this inside their transaction, so they agree.
pub fn decide_throttles(keys: &[(String, ThrottleRule)], states: &[ThrottleState], now: i64) -> (ThrottleAttempt, Vec<ThrottleState>) {
    let mut next = Vec::with_capacity(keys.len());
    let mut refused: Option<(String, i64)> = None;
    let mut delay_if_wrong = 0;
    for ((key, rule), state) in keys.iter().zip(states) {
        match rule.decide(*state, now) {
            ThrottleDecision::Allow(s) => {
                delay_if_wrong = delay_if_wrong.max(rule.delay(s.failures));
                next.push(s);
            }
            ThrottleDecision::Refuse(secs) => match &mut refused {
                Some((_, longest)) => *longest = (*longest).max(secs),
                None => refused = Some((key.clone(), secs)),
            },
        }
    }
    match refused {
        Some((key, retry_after)) => (ThrottleAttempt::Refused { key, retry_after }, Vec::new()),
        None => (ThrottleAttempt::Allowed { delay_if_wrong }, next),
    }
}

/// Outcome of an atomic consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken<T> {
    /// This call consumed it.
    Taken(T),
    /// It exists but was consumed (or revoked) before.
    AlreadyUsed(T),
    NotFound,
}

/// Every contract trait, for calling store methods on a concrete backend type
/// (`use tessera_storage::prelude::*;`); on `dyn Store` they are callable without it.
pub mod prelude {
    pub use crate::contracts::{
        ApiStore, AssertionStore, AuditStore, ClientStore, CodeStore, ConsentStore, DeviceCodeStore, DpopStore, FactorStore, GroupStore, KeyStore,
        MaintenanceStore, RefreshTokenStore, RevocationStore, RoleStore, SessionStore, Store, ThrottleStore, UserStore, UserTokenStore,
    };
}
