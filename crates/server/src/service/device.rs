//! The device authorization endpoint and the user-code side of RFC 8628: a device asks for a
//! code (§3.1–3.2); the user types it on the verification page (§3.3), signs in and consents.
//! Guessing user codes is throttled per client address (§5.1).

use super::authorize::{AuthorizeOutcome, PendingAuthorization, client_policy};
use super::{ServiceError, Tessera};
use crate::secret;
use serde::Serialize;
use tessera_protocol::client::{ClientPolicy, GrantType};
use tessera_protocol::grant::device_code::{
    DEFAULT_INTERVAL_SECS, DEVICE_CODE_LIFETIME_SECS, DeviceAuthorizationRequest, USER_CODE_LEN, display_user_code, normalize_user_code, user_code_from,
};
use tessera_protocol::{ErrorCode, OAuthError};
use tessera_storage::{DeviceCodeRecord, DeviceCodeStatus, SessionRecord, StoreError, ThrottleAttempt};

/// RFC 8628 §3.2 device authorization response.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// Why a typed user code was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum UserCodeError {
    Invalid,
    /// Refused unchecked: the address's window ends in `retry_after` seconds.
    Throttled {
        retry_after: i64,
    },
}

/// A user code drawn from `random`: bytes that map to a biased letter are drawn again.
fn random_user_code(random: &dyn crate::secret::Random) -> String {
    loop {
        let mut b = [0u8; USER_CODE_LEN];
        random.fill(&mut b);
        if let Some(c) = user_code_from(&b) {
            return c;
        }
    }
}

impl Tessera {
    /// RFC 8628 §3.1: the device asks for a device code and a user code. `client` is
    /// authenticated ([`Tessera::authenticate_client`]); `req` is the request as parsed, whose
    /// parse error is answered only after the client's right to the device grant is checked, as
    /// at the token endpoint.
    pub async fn device_authorization(
        &self,
        client: &ClientPolicy,
        req: Result<DeviceAuthorizationRequest, OAuthError>,
    ) -> Result<DeviceAuthorizationResponse, ServiceError> {
        if !client.may_use(GrantType::DeviceCode) {
            return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "this client may not use the device authorization grant").into());
        }
        let req = req?;
        let catalog = self.cached_catalog().await?;
        if let Some(unknown) = req.scope.iter().find(|s| !catalog.contains(s)) {
            return Err(OAuthError::invalid_scope(format!("unknown scope {unknown}")).into());
        }
        if !req.scope.is_subset(&client.scopes) {
            return Err(OAuthError::invalid_scope(format!("this client may not request: {}", req.scope.difference(&client.scopes))).into());
        }
        let audience = catalog.audience_for(&req.scope, req.resource.as_deref())?;
        let now = self.now();
        let device_code = self.random.token();
        for _ in 0..5 {
            let user_code = random_user_code(&*self.random);
            let rec = DeviceCodeRecord {
                device_code_hash: secret::hash(&device_code),
                user_code: user_code.clone(),
                client_id: client.client_id.clone(),
                scope: req.scope.clone(),
                audience: audience.clone(),
                expires_at: now + DEVICE_CODE_LIFETIME_SECS,
                interval: DEFAULT_INTERVAL_SECS,
                last_polled_at: None,
                status: DeviceCodeStatus::Pending,
                user_id: None,
                auth_time: None,
                oidc: None,
            };
            match self.store.create_device_code(&rec).await {
                Ok(()) => {
                    let shown = display_user_code(&user_code);
                    let verification_uri = format!("{}{}", self.config.issuer, tessera_protocol::metadata::paths::DEVICE);
                    return Ok(DeviceAuthorizationResponse {
                        device_code,
                        verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
                        verification_uri,
                        user_code: shown,
                        expires_in: DEVICE_CODE_LIFETIME_SECS,
                        interval: DEFAULT_INTERVAL_SECS,
                    });
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OAuthError::new(ErrorCode::TemporarilyUnavailable, "could not allocate a user code").into())
    }

    /// RFC 8628 §3.3: the user typed a code on the verification page. On success the browser
    /// goes on to sign in and consent, like an authorization request.
    pub async fn enter_user_code(&self, typed: &str, session: &SessionRecord, address: &str) -> Result<Result<AuthorizeOutcome, UserCodeError>, ServiceError> {
        let now = self.now();
        // Counted before the code is looked up, atomically (issue 13, finding 1): parallel
        // guesses cannot outrun the count; a right code gives its count back below.
        let key = format!("device:{address}");
        if let ThrottleAttempt::Refused { retry_after, .. } =
            self.store.take_throttle_attempt(&[(key.clone(), self.config.user_code_address_throttle)], now).await?
        {
            return Ok(Err(UserCodeError::Throttled { retry_after }));
        }
        let found = match normalize_user_code(typed) {
            Some(code) => self.store.find_device_code_by_user_code(&code, now).await?.filter(|d| d.status == DeviceCodeStatus::Pending),
            None => None,
        };
        let Some(d) = found else {
            return Ok(Err(UserCodeError::Invalid));
        };
        self.store.update_throttle_success(&[], &[key]).await?;
        let Some(client) = self.store.find_client(&d.client_id).await? else {
            return Ok(Err(UserCodeError::Invalid));
        };
        let pending = PendingAuthorization {
            id: self.random.token(),
            client_id: client_policy(&client).client_id,
            redirect_uri: String::new(),
            redirect_uri_given: false,
            state: None,
            scope: d.scope.to_string(),
            code_challenge: None,
            dpop_jkt: None,
            audience: d.audience.clone(),
            device_user_code: Some(d.user_code.clone()),
            oidc: None,
            response_mode: Default::default(),
            force_login: false,
            force_consent: false,
            signed_in_here: false,
            required_subject: None,
            require_mfa: client.require_mfa,
        };
        self.save_pending(&pending, session).await?;
        Ok(Ok(if session.user_id.is_some() { AuthorizeOutcome::Consent(pending.id) } else { AuthorizeOutcome::Login(pending.id) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{OsRandom, Random};
    use crate::service::Config;
    use crate::service::admin::{self, NewClient};
    use crate::{Clock, SystemClock};
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use tessera_protocol::client::PresentedCredentials;
    use tessera_protocol::grant::device_code::user_code_from;
    use tessera_protocol::params::Params;
    use tessera_storage_sqlite::SqliteStore;

    /// User-code draws (8 bytes) come from a script; everything else from the OS.
    struct ScriptedUserCodes(Mutex<VecDeque<[u8; USER_CODE_LEN]>>);

    impl Random for ScriptedUserCodes {
        fn fill(&self, buf: &mut [u8]) {
            let scripted = if buf.len() == USER_CODE_LEN { self.0.lock().unwrap().pop_front() } else { None };
            match scripted {
                Some(b) => buf.copy_from_slice(&b),
                None => OsRandom.fill(buf),
            }
        }
    }

    /// RFC 8628 §6.1: user codes must be unique among live device codes. A draw that collides
    /// with a live code is drawn again; five collisions in a row answer
    /// `temporarily_unavailable`, and the live code is never overwritten.
    #[tokio::test]
    async fn rfc8628_6_1_a_colliding_user_code_is_drawn_again() {
        let store: Arc<dyn tessera_storage::Store> = Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap());
        let first = [0, 1, 2, 3, 4, 5, 6, 7];
        let second = [9; USER_CODE_LEN];
        let mut script = VecDeque::from([first, first, second]);
        script.extend([first; 5]);
        let random = Arc::new(ScriptedUserCodes(Mutex::new(script)));
        let svc = Tessera::with_random(store.clone(), Arc::new(SystemClock), random.clone(), Config::new("https://id.example")).await.unwrap();
        let client = admin::create_client(
            &*store,
            NewClient {
                name: "TV".into(),
                scope: "openid".into(),
                grant_types: vec![GrantType::DeviceCode.as_str().into()],
                public: true,
                ..Default::default()
            },
            SystemClock.now(),
        )
        .await
        .unwrap();
        let client = svc.authenticate_client(&PresentedCredentials::None { client_id: &client.client.client_id }).await.unwrap();
        let req = || DeviceAuthorizationRequest::parse(&Params::parse(b"scope=openid").unwrap());
        let shown = |b: &[u8; USER_CODE_LEN]| display_user_code(&user_code_from(b).unwrap());

        let a = svc.device_authorization(&client, req()).await.unwrap();
        assert_eq!(a.user_code, shown(&first));
        let b = svc.device_authorization(&client, req()).await.unwrap();
        assert_eq!(b.user_code, shown(&second), "the colliding draw was drawn again");
        let err = svc.device_authorization(&client, req()).await.unwrap_err();
        assert!(format!("{err:?}").contains("TemporarilyUnavailable"), "{err:?}");
        assert!(random.0.lock().unwrap().is_empty(), "five draws were tried");
        // RFC 8628 §3.1 / RFC 6749 §5.2: a client without the device grant is unauthorized_client
        // before its request is read (here: one without a scope).
        let other = admin::create_client(
            &*store,
            NewClient { name: "Service".into(), scope: "openid".into(), grant_types: vec![GrantType::ClientCredentials.as_str().into()], ..Default::default() },
            SystemClock.now(),
        )
        .await
        .unwrap();
        let policy = crate::service::authorize::client_policy(&other.client);
        let err = svc.device_authorization(&policy, DeviceAuthorizationRequest::parse(&Params::parse(b"").unwrap())).await.unwrap_err();
        assert!(format!("{err:?}").contains("UnauthorizedClient"), "{err:?}");
        let live = store.find_device_code_by_user_code(&user_code_from(&first).unwrap(), SystemClock.now()).await.unwrap().unwrap();
        assert_eq!(live.device_code_hash, secret::hash(&a.device_code), "the first device's code is untouched");
    }
}
