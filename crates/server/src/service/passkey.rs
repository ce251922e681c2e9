//! Passkeys (issue 15, WebAuthn Level 2 through `webauthn-rs`): registered from the account
//! page (named, removable), used to sign in without a password (discoverable credentials) or as
//! the second step after one.
//!
//! - The Relying Party ID is the issuer's host, which must be a domain name: WebAuthn refuses
//!   an IP address, so an issuer like `http://127.0.0.1:8080` has no passkeys
//!   ([`Tessera::passkeys_unavailable`] says why) while `http://localhost:8080` (a secure context
//!   to browsers) and any https domain have them.
//! - Each ceremony's state (its challenge) waits in the store under a one-time token bound to the
//!   browser session ([`tessera_storage::UserTokenStore`]), so any instance can finish it and a
//!   challenge answers once.
//! - User verification is required (a PIN or biometric on the authenticator), so a passkey alone
//!   is two factors: `amr` `hwk` and `mfa` (RFC 8176).
//! - The credential and its signature counter are stored per factor; a sign-in stores the new
//!   counter by compare-and-swap, and webauthn-rs refuses a counter that did not move forward
//!   (a cloned authenticator, WebAuthn §6.1.1).

use super::mfa::amr;
use super::{ServiceError, Tessera};
use crate::secret;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tessera_protocol::OAuthError;
use tessera_storage::{FactorKind, FactorRecord, SessionRecord, UserRecord, UserTokenRecord};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn,
    WebauthnBuilder,
};

/// How long a ceremony's challenge waits for the authenticator's answer.
pub const CEREMONY_SECS: i64 = 300;

const REGISTRATION: &str = "passkey_registration";
const SIGN_IN: &str = "passkey_sign_in";
const SECOND_STEP: &str = "passkey_second_step";

/// The Relying Party for an issuer, or why there is none.
pub fn relying_party(issuer: &str, name: &str) -> Result<Webauthn, String> {
    let origin = Url::parse(issuer).map_err(|e| format!("the issuer {issuer} is not a URL: {e}"))?;
    let Some(host) = origin.host() else { return Err(format!("the issuer {issuer} has no host")) };
    if !matches!(host, url::Host::Domain(_)) {
        return Err(format!(
            "passkeys need an issuer whose host is a domain name, and {issuer} names an IP address (WebAuthn refuses those); \
             use http://localhost:PORT on this machine or an https domain"
        ));
    }
    let rp_id = origin.host_str().unwrap_or_default().to_string();
    let mut origin_only = origin.clone();
    origin_only.set_path("/");
    WebauthnBuilder::new(&rp_id, &origin_only)
        .and_then(|b| b.rp_name(name).build())
        .map_err(|e| format!("passkeys are not available for the issuer {issuer}: {e}"))
}

/// The WebAuthn user handle of a user: derived from their id (16 bytes of a hash), so it
/// reveals nothing and needs no column.
pub fn user_handle(user_id: &str) -> Uuid {
    let d = Sha256::digest(format!("tessera-webauthn-user:{user_id}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    Uuid::from_bytes(b)
}

/// A ceremony's state as stored, bound to the session it started in.
#[derive(Serialize, Deserialize)]
struct Ceremony<T> {
    session: String,
    state: T,
}

/// Why a passkey was not accepted (for the page; details go to the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasskeyRefused {
    /// The challenge is gone (used, expired, or from another browser session).
    Expired,
    /// Not a passkey registered here, or not the user's.
    Unknown,
    /// The authenticator's answer did not verify (signature, origin, user verification,
    /// counter).
    Invalid,
}

impl PasskeyRefused {
    pub fn message(&self) -> &'static str {
        match self {
            Self::Expired => "This passkey request has expired. Try again.",
            Self::Unknown => "This passkey is not registered for an account here.",
            Self::Invalid => "The passkey could not be verified. Try again.",
        }
    }
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    OAuthError::server_error(e.to_string()).into()
}

fn credential_id(p: &Passkey) -> String {
    URL_SAFE_NO_PAD.encode(p.cred_id().as_ref() as &[u8])
}

impl Tessera {
    /// Why this server cannot offer passkeys, if it cannot (the issuer's host is an IP address).
    pub fn passkeys_unavailable(&self) -> Option<&str> {
        self.webauthn.as_ref().err().map(String::as_str)
    }

    fn rp(&self) -> Result<&Webauthn, ServiceError> {
        self.webauthn.as_ref().map_err(|e| OAuthError::invalid_request(e.clone()).into())
    }

    async fn save_ceremony<T: Serialize>(&self, purpose: &str, user_id: &str, session: &SessionRecord, state: T) -> Result<String, ServiceError> {
        let token = self.random.token();
        let now = self.now();
        let data = serde_json::to_string(&Ceremony { session: session.id_hash.clone(), state }).map_err(internal)?;
        let rec = UserTokenRecord {
            token_hash: secret::hash(&token),
            purpose: purpose.into(),
            user_id: user_id.into(),
            data,
            created_at: now,
            expires_at: now + CEREMONY_SECS,
        };
        self.store.create_user_token(&rec).await?;
        Ok(token)
    }

    /// The ceremony `token` of `purpose`, taken (once), if it started in `session`.
    async fn take_ceremony<T: for<'de> Deserialize<'de>>(
        &self,
        purpose: &str,
        token: &str,
        session: &SessionRecord,
    ) -> Result<Option<(String, T)>, ServiceError> {
        if token.is_empty() || token.len() > 64 {
            return Ok(None);
        }
        let Some(rec) = self.store.take_user_token(&secret::hash(token), purpose, self.now()).await? else { return Ok(None) };
        let Ok(c) = serde_json::from_str::<Ceremony<T>>(&rec.data) else { return Ok(None) };
        Ok(secret::matches_plain(&c.session, &session.id_hash).then_some((rec.user_id, c.state)))
    }

    fn passkeys_of(factors: &[FactorRecord]) -> Vec<(FactorRecord, Passkey)> {
        factors
            .iter()
            .filter(|f| f.kind == FactorKind::Passkey)
            .filter_map(|f| serde_json::from_slice::<Passkey>(&f.secret).ok().map(|p| (f.clone(), p)))
            .collect()
    }

    /// Start registering a passkey for `user`: the options for `navigator.credentials.create`
    /// (a discoverable credential, user verification required; the user's passkeys excluded)
    /// and the token that names the ceremony.
    pub async fn begin_passkey_registration(&self, user: &UserRecord, session: &SessionRecord) -> Result<(String, serde_json::Value), ServiceError> {
        let rp = self.rp()?;
        let factors = self.store.list_factors(&user.id).await?;
        if factors.len() >= super::mfa::MAX_FACTORS {
            return Err(OAuthError::invalid_request(format!("at most {} second factors", super::mfa::MAX_FACTORS)).into());
        }
        let exclude: Vec<_> = Self::passkeys_of(&factors).iter().map(|(_, p)| p.cred_id().clone()).collect();
        let display = user.name.clone().unwrap_or_else(|| user.username.clone());
        let (options, state) = rp.start_passkey_registration(user_handle(&user.id), &user.username, &display, Some(exclude)).map_err(internal)?;
        let mut options = serde_json::to_value(options).map_err(internal)?;
        // Discoverable, so that the passkey alone can sign in (WebAuthn §5.4.6).
        options["publicKey"]["authenticatorSelection"]["residentKey"] = serde_json::json!("required");
        options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = serde_json::json!(true);
        let token = self.save_ceremony::<PasskeyRegistration>(REGISTRATION, &user.id, session, state).await?;
        Ok((token, options))
    }

    /// Finish a registration: the authenticator's answer verified against the ceremony's
    /// challenge, the passkey stored as one of the user's factors (named `name`).
    pub async fn finish_passkey_registration(
        &self,
        user: &UserRecord,
        session: &SessionRecord,
        token: &str,
        name: &str,
        credential: &str,
    ) -> Result<Result<FactorRecord, PasskeyRefused>, ServiceError> {
        let rp = self.rp()?;
        let Some((owner, state)) = self.take_ceremony::<PasskeyRegistration>(REGISTRATION, token, session).await? else {
            return Ok(Err(PasskeyRefused::Expired));
        };
        if owner != user.id {
            return Ok(Err(PasskeyRefused::Expired));
        }
        let Ok(reg) = serde_json::from_str::<RegisterPublicKeyCredential>(credential) else { return Ok(Err(PasskeyRefused::Invalid)) };
        let passkey = match rp.finish_passkey_registration(&reg, &state) {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(error = %e, "passkey registration refused");
                return Ok(Err(PasskeyRefused::Invalid));
            }
        };
        let name: String = name.trim().chars().take(64).collect();
        let now = self.now();
        let factor = FactorRecord {
            id: self.random.id(),
            user_id: user.id.clone(),
            kind: FactorKind::Passkey,
            name: if name.is_empty() { "Passkey".into() } else { name },
            secret: serde_json::to_vec(&passkey).map_err(internal)?,
            credential_id: Some(credential_id(&passkey)),
            last_step: None,
            created_at: now,
            last_used_at: None,
        };
        match self.store.create_factor(&factor).await {
            Ok(()) => {}
            // The credential id is registered already (to anyone): refused.
            Err(tessera_storage::StoreError::Conflict(_)) => return Ok(Err(PasskeyRefused::Invalid)),
            Err(e) => return Err(e.into()),
        }
        self.audit("mfa_added", Some(&user.id), None, &serde_json::json!({ "kind": "passkey", "name": factor.name }).to_string()).await?;
        self.notify(user, super::email::Notice::FactorAdded { kind: FactorKind::Passkey.as_str(), name: &factor.name });
        Ok(Ok(factor))
    }

    /// Start a passwordless sign-in: options for `navigator.credentials.get` with no allowed
    /// credentials (the authenticator offers its discoverable ones).
    pub async fn begin_passkey_sign_in(&self, session: &SessionRecord) -> Result<(String, serde_json::Value), ServiceError> {
        let rp = self.rp()?;
        let (mut options, state) = rp.start_discoverable_authentication().map_err(internal)?;
        // A button starts this ceremony, not autofill: no conditional mediation.
        options.mediation = None;
        let token = self.save_ceremony::<DiscoverableAuthentication>(SIGN_IN, "", session, state).await?;
        Ok((token, serde_json::to_value(options).map_err(internal)?))
    }

    /// Finish a passwordless sign-in: the credential found by its id, its user handle checked
    /// against its owner, the assertion verified, the counter stored. The user (enabled) and
    /// the `amr` the sign-in proves.
    pub async fn finish_passkey_sign_in(
        &self,
        session: &SessionRecord,
        token: &str,
        credential: &str,
        address: &str,
    ) -> Result<Result<(UserRecord, Vec<String>), PasskeyRefused>, ServiceError> {
        let rp = self.rp()?;
        let Some((_, state)) = self.take_ceremony::<DiscoverableAuthentication>(SIGN_IN, token, session).await? else {
            return Ok(Err(PasskeyRefused::Expired));
        };
        let Ok(cred) = serde_json::from_str::<PublicKeyCredential>(credential) else { return Ok(Err(PasskeyRefused::Invalid)) };
        let Ok((handle, raw_id)) = rp.identify_discoverable_authentication(&cred) else { return Ok(Err(PasskeyRefused::Invalid)) };
        let Some(factor) = self.store.find_factor_by_credential(&URL_SAFE_NO_PAD.encode(raw_id)).await? else {
            return Ok(Err(PasskeyRefused::Unknown));
        };
        if user_handle(&factor.user_id) != handle {
            return Ok(Err(PasskeyRefused::Unknown));
        }
        let Ok(passkey) = serde_json::from_slice::<Passkey>(&factor.secret) else { return Ok(Err(PasskeyRefused::Unknown)) };
        let result = match rp.finish_discoverable_authentication_v2(&cred, state, &passkey) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e, "passkey sign-in refused");
                self.audit("sign_in_failed", Some(&factor.user_id), None, &serde_json::json!({ "address": address, "method": "passkey" }).to_string()).await?;
                return Ok(Err(PasskeyRefused::Invalid));
            }
        };
        if !self.store_counter(&factor, passkey, &result).await? {
            return Ok(Err(PasskeyRefused::Invalid));
        }
        let Some(user) = self.active_user(&factor.user_id).await? else { return Ok(Err(PasskeyRefused::Unknown)) };
        self.audit("sign_in", Some(&user.id), None, &serde_json::json!({ "username": user.username, "address": address, "method": "passkey" }).to_string())
            .await?;
        self.metrics.sign_in(crate::metrics::SignInOutcome::Success);
        Ok(Ok((user, vec![amr::HWK.to_string(), amr::MFA.to_string()])))
    }

    /// The new signature counter, by compare and swap (a racing copy of the authenticator
    /// loses): false when the stored credential changed meanwhile.
    async fn store_counter(
        &self,
        factor: &FactorRecord,
        mut passkey: Passkey,
        result: &webauthn_rs::prelude::AuthenticationResult,
    ) -> Result<bool, ServiceError> {
        passkey.update_credential(result);
        let new = serde_json::to_vec(&passkey).map_err(internal)?;
        Ok(self.store.update_factor_secret(&factor.id, &factor.secret, &new, self.now()).await?)
    }

    /// Start a passkey as the second step for `user`: options allowing their passkeys only.
    pub async fn begin_passkey_second_step(&self, user: &UserRecord, session: &SessionRecord) -> Result<Option<(String, serde_json::Value)>, ServiceError> {
        let rp = self.rp()?;
        let keys: Vec<Passkey> = Self::passkeys_of(&self.store.list_factors(&user.id).await?).into_iter().map(|(_, p)| p).collect();
        if keys.is_empty() {
            return Ok(None);
        }
        let (options, state) = rp.start_passkey_authentication(&keys).map_err(internal)?;
        let token = self.save_ceremony::<PasskeyAuthentication>(SECOND_STEP, &user.id, session, state).await?;
        Ok(Some((token, serde_json::to_value(options).map_err(internal)?)))
    }

    /// Finish a passkey second step: the `amr` method it proves (`hwk`).
    pub async fn finish_passkey_second_step(
        &self,
        user: &UserRecord,
        session: &SessionRecord,
        token: &str,
        credential: &str,
    ) -> Result<Result<&'static str, PasskeyRefused>, ServiceError> {
        let rp = self.rp()?;
        let Some((owner, state)) = self.take_ceremony::<PasskeyAuthentication>(SECOND_STEP, token, session).await? else {
            return Ok(Err(PasskeyRefused::Expired));
        };
        if owner != user.id {
            return Ok(Err(PasskeyRefused::Expired));
        }
        let Ok(cred) = serde_json::from_str::<PublicKeyCredential>(credential) else { return Ok(Err(PasskeyRefused::Invalid)) };
        let raw = URL_SAFE_NO_PAD.encode(cred.get_credential_id());
        let Some((factor, passkey)) =
            Self::passkeys_of(&self.store.list_factors(&user.id).await?).into_iter().find(|(f, _)| f.credential_id.as_deref() == Some(&raw))
        else {
            return Ok(Err(PasskeyRefused::Unknown));
        };
        let result = match rp.finish_passkey_authentication(&cred, &state) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e, "passkey second step refused");
                return Ok(Err(PasskeyRefused::Invalid));
            }
        };
        if !self.store_counter(&factor, passkey, &result).await? {
            return Ok(Err(PasskeyRefused::Invalid));
        }
        self.audit("second_factor", Some(&user.id), None, &serde_json::json!({ "method": "passkey" }).to_string()).await?;
        Ok(Ok(amr::HWK))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WebAuthn's RP ID is a domain: an IP-address issuer has no passkeys, and says so.
    #[test]
    fn the_relying_party_needs_a_domain() {
        let e = relying_party("http://127.0.0.1:8080", "Tessera").err().unwrap();
        assert!(e.contains("IP address") && e.contains("localhost"), "{e}");
        assert!(relying_party("http://[::1]:8080", "Tessera").is_err());
        assert!(relying_party("http://localhost:8080", "Tessera").is_ok());
        assert!(relying_party("https://id.example", "Tessera").is_ok());
        assert_ne!(user_handle("a"), user_handle("b"));
        assert_eq!(user_handle("a"), user_handle("a"));
    }
}
