//! Authentication of resource owners: Argon2id password hashes, throttled sign-in, and browser
//! sessions. Kept apart from authorization: this module says *who* the user is, never what a
//! client may do.

use super::{ServiceError, Tessera};
use crate::secret;
use argon2::Argon2;
use tessera_protocol::OAuthError;
use tessera_storage::{SessionRecord, ThrottleAttempt, UserRecord};

/// The Argon2id cost parameters new password hashes are made with (`--argon2-memory-kib`,
/// `--argon2-iterations`, `--argon2-parallelism`). A stored hash made with others is made again
/// with these at the user's next sign-in ([`Tessera::sign_in`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

/// OWASP's Password Storage Cheat Sheet: Argon2id configurations of equal strength, (memory in
/// KiB, iterations), parallelism 1. Less memory needs more iterations.
pub const OWASP_MINIMUMS: [(u32, u32); 5] = [(47_104, 1), (19_456, 2), (12_288, 3), (9_216, 4), (7_168, 5)];
/// Memory below OWASP's smallest configuration is refused, as is more than 4 GiB.
pub const MEMORY_KIB: std::ops::RangeInclusive<u32> = 7_168..=4 * 1024 * 1024;
/// More than 64 passes makes every sign-in take seconds.
pub const ITERATIONS: std::ops::RangeInclusive<u32> = 1..=64;
/// Lanes (computed one after another here: more only costs time).
pub const PARALLELISM: std::ops::RangeInclusive<u32> = 1..=16;

/// Why Argon2id parameters were refused; the message names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Argon2ParamsError(String);

impl Default for Argon2Params {
    /// m = 19 MiB, t = 2, p = 1: OWASP's recommendation, and the argon2 crate's defaults.
    fn default() -> Self {
        Self { memory_kib: argon2::Params::DEFAULT_M_COST, iterations: argon2::Params::DEFAULT_T_COST, parallelism: argon2::Params::DEFAULT_P_COST }
    }
}

impl Argon2Params {
    /// Parameters within OWASP's minimums ([`OWASP_MINIMUMS`]) and sane bounds ([`MEMORY_KIB`],
    /// [`ITERATIONS`], [`PARALLELISM`]).
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, Argon2ParamsError> {
        let refuse = |m: String| Err(Argon2ParamsError(m));
        if !MEMORY_KIB.contains(&memory_kib) {
            return refuse(format!(
                "--argon2-memory-kib must be {} to {} (7 MiB, OWASP's smallest, to 4 GiB); {memory_kib} is not",
                MEMORY_KIB.start(),
                MEMORY_KIB.end()
            ));
        }
        if !ITERATIONS.contains(&iterations) {
            return refuse(format!("--argon2-iterations must be {} to {}; {iterations} is not", ITERATIONS.start(), ITERATIONS.end()));
        }
        if !PARALLELISM.contains(&parallelism) {
            return refuse(format!("--argon2-parallelism must be {} to {}; {parallelism} is not", PARALLELISM.start(), PARALLELISM.end()));
        }
        // The least iterations OWASP allows for this much memory.
        let least = OWASP_MINIMUMS.iter().find(|(m, _)| memory_kib >= *m).map_or(u32::MAX, |(_, t)| *t);
        if iterations < least {
            let table = OWASP_MINIMUMS.iter().map(|(m, t)| format!("m={m} t={t}")).collect::<Vec<_>>().join(", ");
            return refuse(format!(
                "--argon2-iterations {iterations} is too few for --argon2-memory-kib {memory_kib}: OWASP's minimum there is {least} ({table}; more memory allows fewer iterations)"
            ));
        }
        Ok(Self { memory_kib, iterations, parallelism })
    }

    pub fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    pub fn parallelism(&self) -> u32 {
        self.parallelism
    }

    fn params(&self) -> Result<argon2::Params, String> {
        argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, None).map_err(|e| e.to_string())
    }

    /// Hash `password` (a random 16-byte salt) into a PHC string, in this thread's reused
    /// Argon2 memory (see [`verify_password`]). Run it on the hashing threads
    /// ([`on_hashing_thread`]), never on an async worker.
    pub fn hash(&self, password: &str) -> Result<String, String> {
        use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
        let salt: [u8; 16] = rand::random();
        let params = self.params()?;
        let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
        let argon2 = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params.clone());
        with_blocks(params.block_count(), |blocks| {
            argon2.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks).map_err(|e| e.to_string())
        })??;
        let phc = PasswordHash {
            algorithm: argon2::Algorithm::Argon2id.ident(),
            version: Some(argon2::Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
            salt: Some(Salt::new(&salt).map_err(|e| e.to_string())?),
            hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
        };
        Ok(phc.to_string())
    }

    /// Whether `stored` (a PHC string) is Argon2id, version 0x13, with exactly these
    /// parameters and the default output length: if not, a sign-in that verified it hashes the
    /// password again with these.
    pub fn made(&self, stored: &str) -> bool {
        let Ok(parsed) = argon2::PasswordHash::new(stored) else { return false };
        let Ok(params) = argon2::Params::try_from(&parsed) else { return false };
        parsed.algorithm == argon2::Algorithm::Argon2id.ident()
            && parsed.version == Some(argon2::Version::V0x13.into())
            && (params.m_cost(), params.t_cost(), params.p_cost()) == (self.memory_kib, self.iterations, self.parallelism)
            && params.keyid().is_empty()
            && params.data().is_empty()
            && parsed.hash.as_ref().map(|h| h.len()) == Some(argon2::Params::DEFAULT_OUTPUT_LEN)
    }
}

/// Argon2id with the default parameters ([`Argon2Params::default`]): fixtures and tests. A
/// server hashes with its configured ones (`Config::argon2`).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2Params::default().hash(password)
}

/// Run `f` on this thread's Argon2 memory, grown to `n` blocks when smaller. The memory is
/// allocated once per thread and reused, whatever the parameters: a fresh allocation per hash
/// left freed blocks scattered over malloc arenas (≈ 170 MB after a burst of sign-ins, against
/// ≈ 40 MB now for two hashing threads). An error when it is already in use (a re-entrant call).
fn with_blocks<T>(n: usize, f: impl FnOnce(&mut [argon2::Block]) -> T) -> Result<T, String> {
    thread_local! {
        static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BLOCKS.with(|b| {
        let Ok(mut blocks) = b.try_borrow_mut() else { return Err("the Argon2 memory is in use".to_string()) };
        if blocks.len() < n {
            blocks.resize(n, argon2::Block::default());
        }
        Ok(f(&mut blocks[..n]))
    })
}

/// Check `password` against a PHC-format Argon2 hash, any variant and parameters (constant-time
/// comparison of the outputs), in this thread's reused Argon2 memory.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = argon2::PasswordHash::new(hash) else { return false };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else { return false };
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm.as_str()) else { return false };
    let version = match parsed.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = argon2::Params::try_from(&parsed) else { return false };
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else { return false };
    let n = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let hashed = with_blocks(n, |blocks| argon2.hash_password_into_with_memory(password.as_bytes(), salt, out, blocks).is_ok()).unwrap_or(false);
    hashed && bool::from(subtle::ConstantTimeEq::ct_eq(&*out, expected.as_bytes()))
}

/// Argon2id runs on its own threads, one per core, started on first use. It is deliberately
/// slow and holds 19 MiB for its whole run: more at once than cores add only memory, and on
/// tokio's many blocking threads each freed block stayed in that thread's malloc arena
/// (hundreds of MB after a burst of sign-ins). On a fixed set of threads the memory held is
/// bounded by their number.
///
/// The queue in front of them is bounded ([`QUEUE_PER_THREAD`] jobs per thread, ≈ 0.4 s of
/// work): when it is full a sign-in is answered "busy, try again" at once instead of waiting
/// behind a backlog no one will see the end of; and a job whose request has given up (timed out,
/// or the client went away) is skipped, not hashed (issue 13, finding 1: queued hashes kept the
/// CPU busy after their requests were gone).
pub struct HashQueue {
    tx: std::sync::mpsc::SyncSender<HashJob>,
}

/// Jobs that may wait per hashing thread.
pub const QUEUE_PER_THREAD: usize = 16;

/// Why a job was not run on the hashing threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashingError {
    /// The queue is full: at capacity; try again shortly.
    Busy,
    /// The threads are gone (they could not be started).
    Gone,
}

type HashJob = Box<dyn FnOnce() + Send>;

impl HashQueue {
    /// `threads` hashing threads behind a queue of `capacity` waiting jobs; `None` if a thread
    /// cannot be started.
    pub fn start(threads: usize, capacity: usize) -> Option<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<HashJob>(capacity);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
                loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            if spawned.is_err() {
                return None;
            }
        }
        Some(Self { tx })
    }

    /// Run `f` on a hashing thread and wait for its result. Dropping the returned future (the
    /// request timed out) before the job starts means it never runs.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, HashingError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: HashJob = Box::new(move || {
            // Nobody is waiting for the answer any more: skip the work.
            if !tx.is_closed() {
                drop(tx.send(f()));
            }
        });
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(_)) => return Err(HashingError::Busy),
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return Err(HashingError::Gone),
        }
        rx.await.map_err(|_| HashingError::Gone)
    }
}

/// The process's hashing threads: one per core, [`QUEUE_PER_THREAD`] waiting jobs per thread.
fn hashing_threads() -> Option<&'static HashQueue> {
    static POOL: std::sync::OnceLock<Option<HashQueue>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        HashQueue::start(n, n * QUEUE_PER_THREAD)
    })
    .as_ref()
}

/// Run `f` (password hashing) on the hashing threads.
pub async fn on_hashing_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, HashingError> {
    hashing_threads().ok_or(HashingError::Gone)?.run(f).await
}

/// Why a sign-in failed. Messages never reveal whether the username exists.
#[derive(Debug, PartialEq, Eq)]
pub enum SignInError {
    /// Wrong username or password, checked; the next attempt is allowed in `retry_after`
    /// seconds (0: at once).
    InvalidCredentials { retry_after: i64 },
    /// Refused without checking the password: the username's or the address's back-off window
    /// ends in `retry_after` seconds (RFC 6749 §10.10).
    Throttled { retry_after: i64 },
    /// The hashing threads are at capacity: nothing was checked or counted; try again shortly.
    Busy,
    /// The password was right, but an administrator disabled the account (said only after the
    /// password checked, so it reveals nothing to a guesser).
    Disabled,
}

/// How long an anonymous session lives: as long as the pending request it carries
/// (RFC 6819 §4.4.1.11: a cookieless request must not leave a 12-hour row behind). Sign-in
/// replaces it with a session of the full lifetime ([`Tessera::signed_in_session`]).
pub const ANONYMOUS_SESSION_SECS: i64 = super::authorize::PENDING_LIFETIME_SECS;
/// Longest part of a username that names its throttle key (the form allows more).
const THROTTLE_KEY_CHARS: usize = 128;

/// Where a sign-in came from, as the HTTP layer saw it: the browser's `User-Agent` (cut to
/// [`tessera_storage::USER_AGENT_MAX_CHARS`] characters) and the client's address (its
/// throttling bucket, [`crate::net::bucket`]). The session keeps them, for the user's list of
/// where they are signed in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInDevice {
    user_agent: Option<String>,
    address: Option<String>,
}

impl SignInDevice {
    /// An empty or missing `User-Agent` is none; control characters are dropped.
    pub fn new(user_agent: Option<&str>, address: &str) -> Self {
        let user_agent: Option<String> = user_agent
            .map(|ua| ua.chars().filter(|c| !c.is_control()).take(tessera_storage::USER_AGENT_MAX_CHARS).collect::<String>())
            .filter(|ua| !ua.trim().is_empty());
        let address = Some(address.chars().take(64).collect::<String>()).filter(|a| !a.is_empty());
        Self { user_agent, address }
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }

    pub fn address(&self) -> Option<&str> {
        self.address.as_deref()
    }
}

/// How stale a session's `last_used_at` may be: a session in use is written at most this often.
pub const SESSION_TOUCH_SECS: i64 = 60;

/// A browser session and the cookie value that names it (set only when new).
pub struct Session {
    pub record: SessionRecord,
    pub new_cookie: Option<String>,
}

impl Session {
    /// The cookie's `Max-Age`: the session's lifetime.
    pub fn max_age(&self) -> i64 {
        self.record.expires_at - self.record.created_at
    }
}

impl Tessera {
    /// Check a username and password. `address` is the client's throttling bucket
    /// ([`crate::net::bucket`]).
    ///
    /// RFC 6749 §10.10, NIST SP 800-63B §5.2.2: the attempt is first counted as a failure of the
    /// username and of the address, in one atomic store operation that refuses it instead when
    /// either is inside its back-off window ([`tessera_storage::ThrottleStore::take_throttle_attempt`]);
    /// only then is the password checked. So however many attempts arrive at once, on however
    /// many instances, no more are checked than the rules admit; a success gives the count back.
    /// An unknown username goes the same way (its own key, a dummy hash), so nothing tells the
    /// two apart. Each failure and each refusal is an audit event.
    pub async fn sign_in(&self, username: &str, password: &str, address: &str) -> Result<Result<UserRecord, SignInError>, ServiceError> {
        let now = self.now();
        let name: String = username.to_lowercase().chars().take(THROTTLE_KEY_CHARS).collect();
        let user_key = format!("user:{name}");
        let addr_key = format!("addr:{address}");
        let keys = [(user_key.clone(), self.config.sign_in_user_throttle), (addr_key.clone(), self.config.sign_in_address_throttle)];
        let delay_if_wrong = match self.store.take_throttle_attempt(&keys, now).await? {
            ThrottleAttempt::Allowed { delay_if_wrong } => delay_if_wrong,
            ThrottleAttempt::Refused { key, retry_after } => {
                let by = if key == user_key { "username" } else { "address" };
                self.metrics.throttled(key == user_key);
                self.metrics.sign_in(crate::metrics::SignInOutcome::Throttled);
                let detail = serde_json::json!({ "username": name, "address": address, "throttled_by": by, "retry_after": retry_after });
                self.store.create_audit_event("sign_in_throttled", &detail.to_string(), now).await?;
                return Ok(Err(SignInError::Throttled { retry_after }));
            }
        };
        let user = self.store.find_user_by_username(username).await?;
        let hash = match &user {
            Some(u) => Ok(u.password_hash.clone()),
            None => self.dummy_hash().await,
        };
        let pw = password.to_string();
        // Off the async workers, on the hashing threads.
        let verified = match hash {
            Ok(hash) => on_hashing_thread(move || verify_password(&pw, &hash)).await,
            Err(e) => Err(e),
        };
        let ok = match verified {
            Ok(ok) => ok,
            Err(HashingError::Busy) => {
                // Nothing was checked: the attempt is given back.
                self.store.update_throttle_success(&[], &[user_key, addr_key]).await?;
                self.metrics.sign_in(crate::metrics::SignInOutcome::Busy);
                return Ok(Err(SignInError::Busy));
            }
            Err(HashingError::Gone) => return Err(OAuthError::server_error("no hashing threads").into()),
        };
        match user {
            Some(u) if ok && u.disabled_at.is_some() => {
                self.store.update_throttle_success(&[user_key], &[addr_key]).await?;
                self.audit(
                    "sign_in_refused",
                    Some(&u.id),
                    None,
                    &serde_json::json!({ "username": u.username, "address": address, "reason": "disabled" }).to_string(),
                )
                .await?;
                Ok(Err(SignInError::Disabled))
            }
            Some(u) if ok => {
                // The account starts over; the address gets back only this attempt (others
                // behind it may still be guessing).
                self.store.update_throttle_success(&[user_key], &[addr_key]).await?;
                if !self.config.argon2.made(&u.password_hash) {
                    self.rehash(&u, password);
                }
                self.metrics.sign_in(crate::metrics::SignInOutcome::Success);
                self.audit("sign_in", Some(&u.id), None, &serde_json::json!({ "username": u.username, "address": address, "method": "password" }).to_string())
                    .await?;
                Ok(Ok(u))
            }
            _ => {
                let detail = serde_json::json!({ "username": name, "address": address, "retry_after": delay_if_wrong });
                self.store.create_audit_event("sign_in_failed", &detail.to_string(), now).await?;
                self.metrics.sign_in(crate::metrics::SignInOutcome::InvalidCredentials);
                Ok(Err(SignInError::InvalidCredentials { retry_after: delay_if_wrong }))
            }
        }
    }

    /// After a sign-in verified `password` against a hash made with other parameters (or
    /// another Argon2 variant or version) than the configured ones: the same password hashed
    /// again with them, on the hashing threads, and stored only while the user's hash is still
    /// the one checked (`update_user_password_hash`: a password changed meanwhile wins, nothing
    /// ends). Spawned, so the sign-in's answer does not wait for a second Argon2 run; a busy
    /// queue or a store failure leaves the old hash for the next sign-in.
    /// [`Tessera::settle_rehashes`] waits for those under way.
    fn rehash(&self, user: &UserRecord, password: &str) {
        let (store, params) = (self.store.clone(), self.config.argon2);
        let (user_id, old, password) = (user.id.clone(), user.password_hash.clone(), password.to_string());
        let job = async move {
            let new = match on_hashing_thread(move || params.hash(&password)).await {
                Ok(Ok(h)) => h,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "rehashing a password failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("the hashing threads are busy: the password is rehashed at a later sign-in");
                    return;
                }
            };
            if let Err(e) = store.update_user_password_hash(&user_id, &old, &new).await {
                tracing::warn!(error = %e, "storing a rehashed password failed");
            }
        };
        if let Ok(mut set) = self.rehashes.lock() {
            // Finished ones are reaped here, so the set holds only those under way.
            while set.try_join_next().is_some() {}
            set.spawn(job);
        }
    }

    /// Wait until the password rehashes spawned so far ([`Tessera::sign_in`]) are done (tests,
    /// and a shutdown that wants them stored).
    pub async fn settle_rehashes(&self) {
        let mut set = match self.rehashes.lock() {
            Ok(mut set) => std::mem::take(&mut *set),
            Err(_) => return,
        };
        while set.join_next().await.is_some() {}
    }

    /// The hash an unknown username is checked against: made with the configured parameters,
    /// so that its verification costs what a user's does.
    async fn dummy_hash(&self) -> Result<String, HashingError> {
        let params = self.config.argon2;
        let made = self
            .dummy_hash
            .get_or_try_init(|| async {
                match on_hashing_thread(move || params.hash(&secret::random_token())).await {
                    Ok(Ok(h)) => Ok(h),
                    Ok(Err(_)) => Err(HashingError::Gone),
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(made.clone())
    }

    /// A new password for the user `user_id` (`None`: a user being created, who has no second
    /// factor yet), checked by the configured policy for the factors the user has and hashed with
    /// the configured Argon2id parameters on the hashing threads: what the admin API, the
    /// console and the account page store.
    pub async fn new_password_hash(&self, user_id: Option<&str>, password: String) -> Result<String, super::admin::AdminError> {
        let factors = match user_id {
            Some(id) => super::admin::Factors::of(&*self.store, id).await?,
            None => super::admin::Factors::PasswordOnly,
        };
        super::admin::hash_new_password(&self.config.password_policy, &self.config.argon2, password, factors).await
    }

    /// The session named by the cookie, if it is live. A signed-in session's use is recorded
    /// (`last_used_at`) when the one recorded is more than [`SESSION_TOUCH_SECS`] old: one
    /// write a minute at most; a failed write is logged, never the request's failure.
    pub async fn find_session(&self, cookie: Option<&str>) -> Result<Option<SessionRecord>, ServiceError> {
        let c = match cookie {
            Some(c) if !c.is_empty() && c.len() <= 128 => c,
            _ => return Ok(None),
        };
        let now = self.now();
        let mut found = self.store.find_session(&secret::hash(c), now).await?;
        if let Some(s) = found.as_mut().filter(|s| s.user_id.is_some() && s.last_used_at < now - SESSION_TOUCH_SECS) {
            match self.store.update_session_last_used(&s.id_hash, now).await {
                Ok(_) => s.last_used_at = now,
                Err(e) => tracing::warn!(error = %e, "recording a session's use failed"),
            }
        }
        Ok(found)
    }

    /// Start a new session (at sign-in the old one is replaced, against session fixation).
    pub async fn create_session(&self, user: Option<&UserRecord>) -> Result<Session, ServiceError> {
        let pwd = [super::mfa::amr::PWD.to_string()];
        let unknown = SignInDevice::default();
        let session = self.new_session(user.map(|u| (u, &pwd[..], &unknown)));
        self.store.create_session(&session.record).await?;
        Ok(session)
    }

    /// After a sign-in from `device`: a new session for `user` replaces `old` (a new id, so a
    /// cookie planted before the sign-in does not ride it), and `pending` moves to it, in one
    /// transaction.
    pub async fn signed_in_session(
        &self,
        user: &UserRecord,
        old: &SessionRecord,
        pending: &super::authorize::PendingAuthorization,
        amr: &[String],
        device: &SignInDevice,
    ) -> Result<Session, ServiceError> {
        let session = self.new_session(Some((user, amr, device)));
        let moved = self.pending_record(pending, &session.record)?;
        self.store.replace_session(&old.id_hash, &session.record, &moved).await?;
        Ok(session)
    }

    /// After a sign-in on one of Tessera's own pages (the admin console), with no
    /// authorization request to carry: a new session for `user`, and the session the sign-in
    /// form came from ended (a new id, as at [`Tessera::signed_in_session`]).
    pub async fn signed_in_session_alone(
        &self,
        user: &UserRecord,
        old: &SessionRecord,
        amr: &[String],
        device: &SignInDevice,
    ) -> Result<Session, ServiceError> {
        let session = self.new_session(Some((user, amr, device)));
        self.store.create_session(&session.record).await?;
        self.store.delete_session(&old.id_hash).await?;
        Ok(session)
    }

    /// A new session, signed in as the user with these RFC 8176 `amr` values from this device,
    /// or anonymous.
    fn new_session(&self, user: Option<(&UserRecord, &[String], &SignInDevice)>) -> Session {
        let now = self.now();
        let cookie = self.random.token();
        let record = SessionRecord {
            id_hash: secret::hash(&cookie),
            sid: self.random.id(),
            user_id: user.map(|(u, _, _)| u.id.clone()),
            amr: user.map(|(_, amr, _)| amr.join(" ")),
            csrf_token: self.random.token(),
            auth_time: user.map(|_| now),
            created_at: now,
            expires_at: now + if user.is_some() { self.config.session_lifetime } else { ANONYMOUS_SESSION_SECS },
            user_agent: user.and_then(|(_, _, d)| d.user_agent.clone()),
            address: user.and_then(|(_, _, d)| d.address.clone()),
            last_used_at: now,
        };
        Session { record, new_cookie: Some(cookie) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Passwords are stored as Argon2id PHC strings and verify only with the right password.
    #[test]
    fn argon2id_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
        // Hashes made elsewhere (argon2's own verifier agrees), other parameters, and the
        // memory reused across calls with different sizes.
        use argon2::{PasswordHasher, PasswordVerifier};
        assert!(Argon2::default().verify_password(b"correct horse", h.as_str()).is_ok(), "ours verify elsewhere");
        let small = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon2::Params::new(8, 1, 1, None).unwrap());
        let h2 = small.hash_password_with_salt(b"pw", b"saltsaltsaltsalt").unwrap().to_string();
        assert!(Argon2::default().verify_password(b"pw", h2.as_str()).is_ok());
        assert!(verify_password("pw", &h2));
        assert!(!verify_password("pw2", &h2));
        assert!(verify_password("correct horse", &h));
        let argon2i = Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x13, argon2::Params::new(8, 1, 1, None).unwrap());
        let h3 = argon2i.hash_password_with_salt(b"pw", b"saltsaltsaltsalt").unwrap().to_string();
        assert!(h3.starts_with("$argon2i$") && verify_password("pw", &h3));
    }

    /// The settings' bounds: OWASP's minimums (less memory needs more passes), at most 4 GiB,
    /// 64 passes and 16 lanes; each refusal names its setting.
    #[test]
    fn argon2_parameters_are_checked() {
        assert_eq!(Argon2Params::new(19_456, 2, 1), Ok(Argon2Params::default()));
        for (m, t) in OWASP_MINIMUMS {
            assert!(Argon2Params::new(m, t, 1).is_ok(), "m={m} t={t}");
        }
        // Just below each row, the next row's passes are needed.
        for w in OWASP_MINIMUMS.windows(2) {
            let (m, t) = (w[0].0 - 1, w[0].1);
            let e = Argon2Params::new(m, t, 1).unwrap_err().to_string();
            assert!(e.contains("--argon2-iterations") && e.contains(&format!("minimum there is {}", w[1].1)), "m={m}: {e}");
            assert!(Argon2Params::new(m, w[1].1, 1).is_ok());
        }
        assert!(Argon2Params::new(65_536, 1, 4).is_ok());
        assert!(Argon2Params::new(7_167, 10, 1).unwrap_err().to_string().contains("--argon2-memory-kib must be 7168 to 4194304"));
        assert!(Argon2Params::new(4 * 1024 * 1024 + 1, 2, 1).unwrap_err().to_string().contains("--argon2-memory-kib"));
        assert!(Argon2Params::new(19_456, 65, 1).unwrap_err().to_string().contains("--argon2-iterations must be 1 to 64"));
        assert!(Argon2Params::new(19_456, 2, 0).unwrap_err().to_string().contains("--argon2-parallelism must be 1 to 16"));
        assert!(Argon2Params::new(19_456, 2, 17).unwrap_err().to_string().contains("--argon2-parallelism"));
    }

    /// A hash is "made" by the parameters only when algorithm, version, m, t, p and output
    /// length are theirs; other ones verify all the same (and are made again at sign-in).
    #[test]
    fn hashes_know_their_parameters() {
        let small = Argon2Params { memory_kib: 8, iterations: 1, parallelism: 1 };
        let other = Argon2Params { memory_kib: 16, iterations: 1, parallelism: 2 };
        let h = small.hash("pw").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{h}");
        assert!(small.made(&h) && !other.made(&h) && !Argon2Params::default().made(&h));
        assert!(verify_password("pw", &h) && verify_password("pw", &other.hash("pw").unwrap()));
        use argon2::PasswordHasher;
        let argon2i = Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x13, argon2::Params::new(8, 1, 1, None).unwrap());
        assert!(!small.made(&argon2i.hash_password_with_salt(b"pw", b"saltsaltsaltsalt").unwrap().to_string()), "another variant");
        let old = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x10, argon2::Params::new(8, 1, 1, None).unwrap());
        assert!(!small.made(&old.hash_password_with_salt(b"pw", b"saltsaltsaltsalt").unwrap().to_string()), "another version");
        let long = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon2::Params::new(8, 1, 1, Some(64)).unwrap());
        assert!(!small.made(&long.hash_password_with_salt(b"pw", b"saltsaltsaltsalt").unwrap().to_string()), "another output length");
        assert!(!small.made("not a hash"));
    }

    /// Issue 13, finding 1: a hash job whose request gave up (timed out) before it started is
    /// skipped, not run; a full queue answers `Busy` at once instead of growing.
    #[tokio::test]
    async fn cancelled_hash_jobs_are_skipped_and_the_queue_is_bounded() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let q = Arc::new(HashQueue::start(1, 1).unwrap());
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let q = q.clone();
            async move {
                q.run(move || {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                })
                .await
            }
        });
        started_rx.await.unwrap();
        // The one thread is busy; a job waits in the queue's one place, and its request times out.
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(50), q.run(move || flag.store(true, Ordering::SeqCst))).await;
        assert!(timed_out.is_err());
        assert_eq!(q.run(|| ()).await, Err(HashingError::Busy), "the queue is full: refused at once");
        release_tx.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), Ok(()));
        // The first job's answer can arrive before the thread has taken the cancelled job off
        // the queue (seen failing under load): wait, bounded, until the thread has room again.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let drained = loop {
            match q.run(|| 7).await {
                Err(HashingError::Busy) if std::time::Instant::now() < deadline => tokio::task::yield_now().await,
                other => break other,
            }
        };
        assert_eq!(drained, Ok(7), "the queue drained");
        assert!(!ran.load(Ordering::SeqCst), "the cancelled job never ran");
    }
}
