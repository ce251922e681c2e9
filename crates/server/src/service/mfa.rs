//! Second factors (issue 15): TOTP authenticator apps (RFC 6238) with recovery codes, and the
//! sign-in's second step. Authentication only: what a factor proves is reported as RFC 8176
//! `amr` values on the session, never used to decide what a client may do.
//!
//! - A TOTP seed is 160 random bits (RFC 4226 §4 R6), sealed under the key-encryption key
//!   before it reaches the store; codes are 6 digits over 30-second steps with SHA-1 (RFC 6238
//!   §4: what authenticator apps expect), accepted one step either side (§5.2), each time step
//!   at most once per factor ([`tessera_storage::FactorStore::update_factor_step`], atomic).
//! - Ten recovery codes, shown once, stored as SHA-256 hashes, each used once.
//! - Guesses of a code are throttled as password guesses are: counted before they are checked,
//!   per user and per address ([`tessera_storage::ThrottleStore::take_throttle_attempt`]).
//! - The second step waits for the password's sign-in in a one-time token bound to the
//!   browser session ([`SecondStep`]): the session stays anonymous until both steps are done.

use super::{ServiceError, Tessera};
use crate::secret;
use serde::{Deserialize, Serialize};
use tessera_protocol::OAuthError;
use tessera_storage::{FactorKind, FactorRecord, SessionRecord, ThrottleAttempt, UserRecord, UserTokenRecord};

/// RFC 6238 §5.2: the time step, seconds.
pub const TOTP_STEP: i64 = 30;
/// How many recovery codes a user gets at a time.
pub const RECOVERY_CODES: usize = 10;
/// How long a password sign-in waits for its second step.
pub const SECOND_STEP_SECS: i64 = 300;
/// How long an enrolment's secret waits for its first code.
pub const ENROLMENT_SECS: i64 = 900;
/// The most factors one user may have.
pub const MAX_FACTORS: usize = 10;

const SECOND_STEP: &str = "second_step";
const TOTP_ENROLMENT: &str = "totp_enrolment";

/// RFC 8176 `amr` values.
pub mod amr {
    pub const PWD: &str = "pwd";
    pub const OTP: &str = "otp";
    pub const HWK: &str = "hwk";
    pub const USER: &str = "user";
    pub const MFA: &str = "mfa";
}

/// A sign-in waiting for its second step: who proved the first, with what, and where the
/// browser goes when it is done.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SecondStep {
    pub user_id: String,
    /// The `amr` values of the first step.
    pub amr: Vec<String>,
    /// The pending authorization request, when the sign-in was for one.
    pub request: Option<String>,
    /// Where a sign-in without a request goes ("/account", "/admin").
    pub next: Option<String>,
}

/// Why a second-factor code was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRefused {
    /// Wrong, expired or already used; the next attempt is allowed in `retry_after` seconds.
    Wrong { retry_after: i64 },
    /// Refused without checking: too many wrong codes.
    Throttled { retry_after: i64 },
}

/// A TOTP secret being enrolled, shown to the user as a QR code, an `otpauth://` URI and base32.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    /// Names the enrolment in the confirmation form.
    pub token: String,
    pub secret_base32: String,
    pub uri: String,
}

#[derive(Serialize, Deserialize)]
struct EnrolmentData {
    /// The secret, sealed under the key-encryption key, hex.
    sealed: String,
}

/// The `amr` of a first step completed by `method` (RFC 8176): with `mfa` when it adds a factor.
pub fn with_second_factor(first: &[String], method: &str) -> Vec<String> {
    let mut v: Vec<String> = first.to_vec();
    for m in [method, amr::MFA] {
        if !v.iter().any(|x| x == m) {
            v.push(m.to_string());
        }
    }
    v
}

/// Whether a session's `amr` records a multi-factor sign-in.
pub fn session_has_mfa(s: &SessionRecord) -> bool {
    s.amr.as_deref().is_some_and(|a| a.split(' ').any(|m| m == amr::MFA))
}

/// Digits only, at most 6 of them: a TOTP code as typed ("123 456" too).
fn totp_digits(code: &str) -> Option<String> {
    let d: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (d.len() == 6 && d.bytes().all(|b| b.is_ascii_digit())).then_some(d)
}

/// A recovery code as stored: lowercase, without separators.
fn normalize_recovery(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).take(64).collect()
}

/// RFC 6238 with what authenticator apps expect: SHA-1, 6 digits, 30-second steps.
struct Totp(totp_rs::Totp);

impl Totp {
    fn new(seed: Vec<u8>, issuer: &str, account: &str) -> Result<Self, ServiceError> {
        // otpauth labels may not contain ':' (Key Uri Format).
        let clean = |s: &str| s.replace(':', " ");
        totp_rs::Builder::new()
            .with_algorithm(totp_rs::Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(TOTP_STEP as u64)
            .with_secret(seed)
            .with_issuer(Some(clean(issuer)))
            .with_account_name(clean(account))
            .build()
            .map(Self)
            .map_err(|e| OAuthError::server_error(format!("totp: {e}")).into())
    }

    /// The code of time step `step`.
    fn code(&self, step: i64) -> String {
        self.0.generate((step * TOTP_STEP).max(0) as u64).to_string()
    }

    /// The step within one of `now` whose code is `digits` (RFC 6238 §5.2), compared in constant time.
    fn step_of(&self, digits: &str, now: i64) -> Option<i64> {
        let current = now.div_euclid(TOTP_STEP);
        [current - 1, current, current + 1].into_iter().find(|s| secret::matches_plain(&self.code(*s), digits))
    }

    fn enrolment(&self, token: String) -> Result<TotpEnrolment, ServiceError> {
        let uri = self.0.to_url().map_err(|e| OAuthError::server_error(format!("totp: {e}")))?;
        Ok(TotpEnrolment { token, secret_base32: self.0.secret().to_base32(), uri })
    }
}

impl Tessera {
    fn seal(&self, purpose: &str, plain: &[u8]) -> Result<Vec<u8>, ServiceError> {
        self.kek.seal(purpose, plain).map_err(|e| OAuthError::server_error(e.to_string()).into())
    }

    fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, ServiceError> {
        self.kek.open(purpose, sealed).map(|o| o.pkcs8).map_err(|e| OAuthError::server_error(e.to_string()).into())
    }

    /// The name authenticator apps show for this server: the issuer's host.
    fn totp_issuer(&self) -> String {
        url::Url::parse(&self.config.issuer).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_else(|| "Tessera".into())
    }

    /// The user's factors.
    pub async fn factors(&self, user_id: &str) -> Result<Vec<FactorRecord>, ServiceError> {
        Ok(self.store.list_factors(user_id).await?)
    }

    /// Whether a sign-in of `user` needs a second step: they have a factor, or a second factor
    /// is required of them or by the client.
    pub async fn needs_second_step(&self, user: &UserRecord, required_by_client: bool) -> Result<bool, ServiceError> {
        Ok(user.require_mfa || required_by_client || !self.store.list_factors(&user.id).await?.is_empty())
    }

    fn second_step_key(session: &SessionRecord) -> String {
        secret::hash(&format!("second-step:{}", session.id_hash))
    }

    /// The password checked: the sign-in waits in `session` for its second step.
    pub async fn start_second_step(&self, session: &SessionRecord, step: &SecondStep) -> Result<(), ServiceError> {
        let key = Self::second_step_key(session);
        // A sign-in started again replaces the one waiting.
        self.store.take_user_token(&key, SECOND_STEP, self.now()).await?;
        let data = serde_json::to_string(step).map_err(|e| OAuthError::server_error(e.to_string()))?;
        let now = self.now();
        let rec = UserTokenRecord {
            token_hash: key,
            purpose: SECOND_STEP.into(),
            user_id: step.user_id.clone(),
            data,
            created_at: now,
            expires_at: now + SECOND_STEP_SECS,
        };
        self.store.create_user_token(&rec).await?;
        Ok(())
    }

    /// The sign-in waiting in `session` for its second step, if any (and its user still active).
    pub async fn second_step(&self, session: &SessionRecord) -> Result<Option<(SecondStep, UserRecord)>, ServiceError> {
        let Some(t) = self.store.find_user_token(&Self::second_step_key(session), SECOND_STEP, self.now()).await? else { return Ok(None) };
        let Ok(step) = serde_json::from_str::<SecondStep>(&t.data) else { return Ok(None) };
        Ok(self.active_user(&step.user_id).await?.map(|u| (step, u)))
    }

    /// The second step is done: the waiting sign-in is consumed (once: of concurrent
    /// completions one gets it) and returned.
    pub async fn finish_second_step(&self, session: &SessionRecord) -> Result<Option<SecondStep>, ServiceError> {
        let Some(t) = self.store.take_user_token(&Self::second_step_key(session), SECOND_STEP, self.now()).await? else { return Ok(None) };
        Ok(serde_json::from_str(&t.data).ok())
    }

    /// The throttle keys every second-factor code is counted under, before it is checked: the
    /// user's (`otp:ID`, apart from their password's) and the address's (the one password
    /// guesses count under too), with the sign-in rules.
    fn code_throttle_keys(&self, user: &UserRecord, address: &str) -> [(String, tessera_storage::ThrottleRule); 2] {
        [(format!("otp:{}", user.id), self.config.sign_in_user_throttle), (format!("addr:{address}"), self.config.sign_in_address_throttle)]
    }

    /// A code proved right: the user's count starts over; the address gets back only this
    /// attempt (as after a right password).
    async fn code_succeeded(&self, keys: &[(String, tessera_storage::ThrottleRule); 2]) -> Result<(), ServiceError> {
        let [(user_key, _), (addr_key, _)] = keys;
        Ok(self.store.update_throttle_success(std::slice::from_ref(user_key), std::slice::from_ref(addr_key)).await?)
    }

    /// Check a code typed at the second step: a TOTP code of one of the user's apps, or one of
    /// their recovery codes. Throttled as passwords are; a code accepted once is refused after
    /// (the same time step, the same recovery code). The `amr` method it proves (`otp`).
    pub async fn check_code(&self, user: &UserRecord, code: &str, address: &str) -> Result<Result<&'static str, CodeRefused>, ServiceError> {
        let now = self.now();
        let keys = self.code_throttle_keys(user, address);
        let delay_if_wrong = match self.store.take_throttle_attempt(&keys, now).await? {
            ThrottleAttempt::Allowed { delay_if_wrong } => delay_if_wrong,
            ThrottleAttempt::Refused { retry_after, .. } => {
                self.audit("second_factor_throttled", Some(&user.id), None, &serde_json::json!({ "address": address, "retry_after": retry_after }).to_string())
                    .await?;
                return Ok(Err(CodeRefused::Throttled { retry_after }));
            }
        };
        let digits = totp_digits(code);
        let accepted = match &digits {
            Some(digits) => self.accept_totp(user, digits, now).await?,
            None => {
                let code = normalize_recovery(code);
                !code.is_empty() && self.store.take_recovery_code(&user.id, &secret::hash(&code), now).await?
            }
        };
        if accepted {
            self.code_succeeded(&keys).await?;
            let method = if digits.is_some() { "totp" } else { "recovery_code" };
            self.audit("second_factor", Some(&user.id), None, &serde_json::json!({ "address": address, "method": method }).to_string()).await?;
            return Ok(Ok(amr::OTP));
        }
        self.audit("second_factor_failed", Some(&user.id), None, &serde_json::json!({ "address": address, "retry_after": delay_if_wrong }).to_string()).await?;
        Ok(Err(CodeRefused::Wrong { retry_after: delay_if_wrong }))
    }

    /// RFC 6238 §5.2: the code of a step within one of now, for one of the user's TOTP factors,
    /// taken (that step of that factor can never be accepted again).
    async fn accept_totp(&self, user: &UserRecord, digits: &str, now: i64) -> Result<bool, ServiceError> {
        for f in self.store.list_factors(&user.id).await?.into_iter().filter(|f| f.kind == FactorKind::Totp) {
            if let Some(step) = Totp::new(self.open(&f.id, &f.secret)?, "x", "x")?.step_of(digits, now) {
                // The step is taken atomically: a replay (or a racing copy) is refused.
                return Ok(self.store.update_factor_step(&f.id, step, now).await?);
            }
        }
        Ok(false)
    }

    /// Start enrolling a TOTP app for `user`: a fresh secret, kept sealed for
    /// [`ENROLMENT_SECS`] under the returned token until a code confirms it.
    pub async fn begin_totp(&self, user: &UserRecord) -> Result<TotpEnrolment, ServiceError> {
        let mut seed = vec![0u8; 20];
        self.random.fill(&mut seed);
        let t = Totp::new(seed.clone(), &self.totp_issuer(), &user.username)?;
        let token = self.random.token();
        let now = self.now();
        let data = EnrolmentData { sealed: hex(&self.seal(TOTP_ENROLMENT, &seed)?) };
        let rec = UserTokenRecord {
            token_hash: secret::hash(&token),
            purpose: TOTP_ENROLMENT.into(),
            user_id: user.id.clone(),
            data: serde_json::to_string(&data).map_err(|e| OAuthError::server_error(e.to_string()))?,
            created_at: now,
            expires_at: now + ENROLMENT_SECS,
        };
        self.store.create_user_token(&rec).await?;
        t.enrolment(token)
    }

    /// The enrolment `token` of `user` again (the page shown after a wrong code), unconsumed.
    pub async fn find_totp_enrolment(&self, user: &UserRecord, token: &str) -> Result<Option<TotpEnrolment>, ServiceError> {
        let Some(rec) = self.store.find_user_token(&secret::hash(token), TOTP_ENROLMENT, self.now()).await? else { return Ok(None) };
        if rec.user_id != user.id {
            return Ok(None);
        }
        let seed = self.enrolment_seed(&rec.data)?;
        Ok(Some(Totp::new(seed, &self.totp_issuer(), &user.username)?.enrolment(token.to_string())?))
    }

    fn enrolment_seed(&self, data: &str) -> Result<Vec<u8>, ServiceError> {
        let d: EnrolmentData = serde_json::from_str(data).map_err(|e| OAuthError::server_error(e.to_string()))?;
        let sealed = unhex(&d.sealed).ok_or_else(|| OAuthError::server_error("enrolment secret is not hex"))?;
        self.open(TOTP_ENROLMENT, &sealed)
    }

    /// Confirm an enrolment with a current code: the app becomes one of the user's factors
    /// (named `name`), the step used is taken, and — when the user had no recovery codes —
    /// ten are made and returned, to be shown once. `Ok(Err(msg))`: not confirmed (the
    /// enrolment stays for another try while it lasts).
    pub async fn confirm_totp(
        &self,
        user: &UserRecord,
        token: &str,
        code: &str,
        name: &str,
        address: &str,
    ) -> Result<Result<Option<Vec<String>>, String>, ServiceError> {
        let now = self.now();
        let name = name.trim();
        if name.chars().count() > 64 {
            return Ok(Err("The name can have at most 64 characters.".into()));
        }
        let name = if name.is_empty() { "Authenticator app" } else { name };
        let Some(rec) = self.store.find_user_token(&secret::hash(token), TOTP_ENROLMENT, now).await? else {
            return Ok(Err("This setup has expired. Start again.".into()));
        };
        if rec.user_id != user.id {
            return Ok(Err("This setup has expired. Start again.".into()));
        }
        if self.store.list_factors(&user.id).await?.len() >= MAX_FACTORS {
            return Ok(Err(format!("You can have at most {MAX_FACTORS} second factors. Remove one first.")));
        }
        // Guesses at the confirmation are throttled like any code.
        let keys = self.code_throttle_keys(user, address);
        if let ThrottleAttempt::Refused { retry_after, .. } = self.store.take_throttle_attempt(&keys, now).await? {
            return Ok(Err(format!("Too many wrong codes. Try again in {retry_after} seconds.")));
        }
        let seed = self.enrolment_seed(&rec.data)?;
        let Some(digits) = totp_digits(code) else { return Ok(Err("Enter the 6-digit code your app shows.".into())) };
        let Some(step) = Totp::new(seed.clone(), "x", "x")?.step_of(&digits, now) else {
            return Ok(Err("That code is not right. Check the time on your device and try again.".into()));
        };
        // Once: of two confirmations racing, one takes the enrolment.
        if self.store.take_user_token(&secret::hash(token), TOTP_ENROLMENT, now).await?.is_none() {
            return Ok(Err("This setup has expired. Start again.".into()));
        }
        self.code_succeeded(&keys).await?;
        let id = self.random.id();
        let factor = FactorRecord {
            secret: self.seal(&id, &seed)?,
            id,
            user_id: user.id.clone(),
            kind: FactorKind::Totp,
            name: name.to_string(),
            credential_id: None,
            last_step: Some(step),
            created_at: now,
            last_used_at: Some(now),
        };
        self.store.create_factor(&factor).await?;
        self.audit("mfa_added", Some(&user.id), None, &serde_json::json!({ "kind": "totp", "name": factor.name }).to_string()).await?;
        self.notify(user, super::email::Notice::FactorAdded { kind: FactorKind::Totp.as_str(), name: &factor.name });
        let codes = if self.store.count_recovery_codes(&user.id).await? == 0 { Some(self.new_recovery_codes(&user.id).await?) } else { None };
        Ok(Ok(codes))
    }

    /// Ten new recovery codes for the user (the old ones stop working), returned to be shown
    /// once; only their hashes are kept.
    pub async fn new_recovery_codes(&self, user_id: &str) -> Result<Vec<String>, ServiceError> {
        const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
        let mut codes = Vec::with_capacity(RECOVERY_CODES);
        for _ in 0..RECOVERY_CODES {
            let mut b = [0u8; 10];
            self.random.fill(&mut b);
            let chars: String = b.iter().map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char).collect();
            codes.push(format!("{}-{}", &chars[..5], &chars[5..]));
        }
        let hashes: Vec<String> = codes.iter().map(|c| secret::hash(&normalize_recovery(c))).collect();
        self.store.replace_recovery_codes(user_id, &hashes, self.now()).await?;
        self.audit("recovery_codes_created", Some(user_id), None, "{}").await?;
        Ok(codes)
    }

    /// Remove one of the user's factors; removing the last one also drops the recovery codes.
    pub async fn remove_factor(&self, user: &UserRecord, id: &str) -> Result<bool, ServiceError> {
        let Some(f) = self.store.list_factors(&user.id).await?.into_iter().find(|f| f.id == id) else { return Ok(false) };
        if !self.store.delete_factor(&user.id, id).await? {
            return Ok(false);
        }
        if self.store.list_factors(&user.id).await?.is_empty() {
            self.store.replace_recovery_codes(&user.id, &[], self.now()).await?;
        }
        self.audit("mfa_removed", Some(&user.id), None, &serde_json::json!({ "kind": f.kind.as_str(), "name": f.name }).to_string()).await?;
        Ok(true)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the SHA-1 test vectors (8 digits there; the 6 low digits here).
    #[test]
    fn rfc_6238_appendix_b_vectors() {
        let t = Totp::new(b"12345678901234567890".to_vec(), "x", "x").unwrap();
        assert_eq!(t.code(59 / 30), "287082");
        assert_eq!(t.code(1111111109 / 30), "081804");
        assert_eq!(t.code(1234567890 / 30), "005924");
        assert_eq!(t.code(2000000000 / 30), "279037");
        assert_eq!(t.step_of("081804", 1111111109 + 30), Some(1111111109 / 30), "one step late is accepted");
        assert_eq!(t.step_of("081804", 1111111109 + 90), None, "three steps late is not");
    }

    #[test]
    fn codes_as_typed() {
        assert_eq!(totp_digits("123 456").as_deref(), Some("123456"));
        assert_eq!(totp_digits("12345"), None);
        assert_eq!(totp_digits("abcdef"), None);
        assert_eq!(normalize_recovery("ABCDE-fghjk"), "abcdefghjk");
        assert_eq!(unhex(&hex(&[0, 1, 254, 255])), Some(vec![0, 1, 254, 255]));
        assert_eq!(unhex("0"), None);
    }

    #[test]
    fn amr_of_a_second_factor() {
        assert_eq!(with_second_factor(&["pwd".into()], amr::OTP), ["pwd", "otp", "mfa"]);
        assert_eq!(with_second_factor(&["pwd".into(), "otp".into(), "mfa".into()], amr::OTP), ["pwd", "otp", "mfa"]);
    }
}
