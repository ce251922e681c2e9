//! Interop: the independent `openidconnect` crate (v4) discovers Tessera (OpenID Connect
//! Discovery 1.0), runs the authorization code flow with PKCE and a nonce (OIDC Core §3.1),
//! verifies the ID token with its own verifier (signature against the discovered JWKS, `iss`,
//! `aud`, `exp`, `nonce`; nothing relaxed), checks `at_hash` (§3.1.3.6) and calls UserInfo
//! (§5.3), over a small reqwest 0.13 adapter (openidconnect is built without its own client).
use crate::common::oauth_http::Reqwest013;
use crate::common::*;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreIdToken, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EmptyAdditionalClaims, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenClaims,
    IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl,
    Scope, TokenResponse,
};
use tessera_server::service::admin::NewClient;

const CB: &str = "http://127.0.0.1:9/callback";
const POST_LOGOUT: &str = "http://127.0.0.1:9/signed-out";
const CLIENT_SCOPE: &str = "openid profile email offline_access notes.read";

/// The client type `CoreClient::from_provider_metadata` builds, with the redirect URI set.
type Client = CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// Discovery through the crate: `{issuer}/.well-known/openid-configuration` and the JWKS.
async fn discover(s: &TestServer, http: &Reqwest013) -> CoreProviderMetadata {
    CoreProviderMetadata::discover_async(IssuerUrl::new(s.url.clone()).unwrap(), http).await.unwrap_or_else(|e| panic!("discovery failed: {e:?}"))
}

/// Register a confidential OpenID Connect client (client_secret_basic) and build the crate's
/// client for it from the discovered metadata.
async fn oidc_client(s: &TestServer, meta: &CoreProviderMetadata, alg: Option<&str>) -> (Client, String) {
    let created = s
        .client(NewClient {
            name: "Notes Client".into(),
            redirect_uris: vec![CB.into()],
            scope: CLIENT_SCOPE.into(),
            post_logout_redirect_uris: vec![POST_LOGOUT.into()],
            id_token_signed_response_alg: alg.map(str::to_string),
            ..Default::default()
        })
        .await;
    let id = created.client.client_id.clone();
    let client = CoreClient::from_provider_metadata(
        meta.clone(),
        ClientId::new(id.clone()),
        Some(ClientSecret::new(created.client_secret.expect("a confidential client"))),
    )
    .set_redirect_uri(RedirectUrl::new(CB.into()).unwrap());
    (client, id)
}

/// What one run of the front channel produced.
struct Authorized {
    code: AuthorizationCode,
    verifier: PkceCodeVerifier,
    nonce: Nonce,
}

/// The front channel as the crate builds it: `response_type=code`, `openid` plus `scopes`, a
/// random state and nonce, an S256 challenge. The scripted browser signs in and consents; the
/// state and RFC 9207 `iss` are checked on the way back.
async fn authorize(s: &TestServer, client: &Client, browser: &Browser, scopes: &[&str]) -> Authorized {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scopes(scopes.iter().map(|s| Scope::new((*s).to_string())))
        .set_pkce_challenge(challenge)
        .url();
    let q = query(url.as_str());
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["nonce"], *nonce.secret());
    assert!(q["scope"].split(' ').any(|s| s == "openid"), "the crate adds openid: {url}");
    let back = browser.authorize_and_allow(url.as_str()).await;
    assert!(back.starts_with(CB), "{back}");
    let q = query(&back);
    assert!(!q.contains_key("error"), "{back}");
    assert_eq!(&q["state"], csrf.secret(), "state round-trips (RFC 6749 §4.1.2)");
    assert_eq!(q["iss"], s.url, "RFC 9207 iss");
    Authorized { code: AuthorizationCode::new(q["code"].clone()), verifier, nonce }
}

async fn exchange(client: &Client, http: &Reqwest013, a: Authorized) -> (CoreTokenResponse, Nonce) {
    let tokens = client
        .exchange_code(a.code)
        .expect("the token endpoint is in the discovered metadata")
        .set_pkce_verifier(a.verifier)
        .request_async(http)
        .await
        .unwrap_or_else(|e| panic!("code exchange failed: {e:?}"));
    (tokens, a.nonce)
}

/// The ID token of a token response, verified by the crate's own `id_token_verifier()` (all of
/// its checks on), with `at_hash` checked against the access token beside it.
fn verified_claims(
    client: &Client,
    tokens: &CoreTokenResponse,
    nonce: &Nonce,
    expected_alg: CoreJwsSigningAlgorithm,
) -> IdTokenClaims<EmptyAdditionalClaims, CoreGenderClaim> {
    let id_token: &CoreIdToken = tokens.id_token().expect("an ID token for an openid request (OIDC Core §3.1.3.3)");
    let verifier = client.id_token_verifier().set_allowed_algs([expected_alg.clone()]);
    let claims = id_token.claims(&verifier, nonce).unwrap_or_else(|e| panic!("the crate rejects the ID token: {e:?}")).clone();
    let alg = id_token.signing_alg().unwrap();
    assert_eq!(*alg, expected_alg);
    let expected_hash = claims.access_token_hash().expect("at_hash in the ID token");
    let actual = AccessTokenHash::from_token(tokens.access_token(), alg, id_token.signing_key(&verifier).unwrap()).unwrap();
    assert_eq!(*expected_hash, actual, "at_hash (OIDC Core §3.1.3.6)");
    claims
}

/// The user id Tessera uses as `sub`.
async fn alice_id(s: &TestServer) -> String {
    s.svc.store.find_user_by_username(USER).await.unwrap().expect("alice").id
}

/// Discovery through the crate: the document parses into `CoreProviderMetadata` (including its
/// RP-Initiated Logout extension), its issuer is the server's, and it lists what this suite
/// relies on.
#[tokio::test]
async fn openidconnect_crate_discovers_the_provider() {
    let s = TestServer::start().await;
    let http = Reqwest013::new();
    let meta = discover(&s, &http).await;
    assert_eq!(meta.issuer().as_str(), s.url);
    assert_eq!(meta.authorization_endpoint().as_str(), format!("{}/authorize", s.url));
    assert_eq!(meta.token_endpoint().unwrap().as_str(), format!("{}/token", s.url));
    assert_eq!(meta.userinfo_endpoint().unwrap().as_str(), format!("{}/userinfo", s.url));
    let algs = meta.id_token_signing_alg_values_supported();
    for alg in [CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, CoreJwsSigningAlgorithm::EcdsaP256Sha256, CoreJwsSigningAlgorithm::EdDsa] {
        assert!(algs.contains(&alg), "{alg:?} in id_token_signing_alg_values_supported: {algs:?}");
    }
    assert!(!meta.jwks().keys().is_empty(), "the crate fetched the JWKS");
    let scopes: Vec<String> = meta.scopes_supported().expect("scopes_supported").iter().map(|s| s.to_string()).collect();
    for scope in ["openid", "profile", "email", "offline_access"] {
        assert!(scopes.iter().any(|s| s == scope), "{scope} in scopes_supported: {scopes:?}");
    }

    // The same document, read as RP-Initiated Logout metadata.
    let with_logout = ProviderMetadataWithLogout::discover_async(IssuerUrl::new(s.url.clone()).unwrap(), &http).await.expect("discovery with logout metadata");
    let end_session = with_logout.additional_metadata().end_session_endpoint.clone().expect("end_session_endpoint");
    assert_eq!(end_session.url().as_str(), format!("{}/logout", s.url));
}

/// The code flow with PKCE and a nonce, for the default (RS256) client: the crate verifies the
/// ID token (signature, iss, aud, exp, nonce), at_hash matches, the standard claims are there,
/// and UserInfo returns email and name for `openid email profile`.
#[tokio::test]
async fn openidconnect_crate_code_flow_rs256_id_token_and_userinfo() {
    let s = TestServer::start().await;
    let http = Reqwest013::new();
    let meta = discover(&s, &http).await;
    let (client, id) = oidc_client(&s, &meta, None).await;
    let a = authorize(&s, &client, &Browser::new(&s.url), &["email", "profile"]).await;
    let (tokens, nonce) = exchange(&client, &http, a).await;
    let scope: Vec<String> = tokens.scopes().expect("scope in the token response").iter().map(|s| s.to_string()).collect();
    let mut sorted = scope.clone();
    sorted.sort();
    assert_eq!(sorted, ["email", "openid", "profile"], "granted scope: {scope:?}");
    assert!(tokens.refresh_token().is_none(), "no offline_access, no refresh token (OIDC Core §11)");

    let claims = verified_claims(&client, &tokens, &nonce, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
    let sub = alice_id(&s).await;
    assert_eq!(claims.subject().as_str(), sub);
    assert_eq!(claims.issuer().as_str(), s.url);
    assert_eq!(claims.audiences().iter().map(|a| a.as_str()).collect::<Vec<_>>(), [id.as_str()]);
    assert_eq!(claims.authorized_party().map(|a| a.as_str()), Some(id.as_str()));
    assert_eq!(claims.nonce().map(|n| n.secret().as_str()), Some(nonce.secret().as_str()));
    assert!(claims.auth_time().is_some(), "auth_time");
    assert!(claims.expiration() > claims.issue_time());
    let amr: Vec<String> = claims.auth_method_refs().expect("amr").iter().map(|m| m.to_string()).collect();
    assert_eq!(amr, ["pwd"]);

    // UserInfo (OIDC Core §5.3) through the crate, pinned to the ID token's subject.
    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
        .expect("userinfo_endpoint in the metadata")
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("userinfo failed: {e:?}"));
    assert_eq!(info.subject().as_str(), sub);
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert_eq!(info.name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("Alice Doe"));
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some(USER));

    // The crate builds an RP-Initiated Logout URL that Tessera accepts (a confirmation page for
    // a browser without a session is not needed: it goes straight to the registered URI).
    let with_logout = ProviderMetadataWithLogout::discover_async(IssuerUrl::new(s.url.clone()).unwrap(), &http).await.unwrap();
    let end_session = with_logout.additional_metadata().end_session_endpoint.clone().unwrap();
    let logout_url = LogoutRequest::from(end_session)
        .set_id_token_hint(tokens.id_token().unwrap())
        .set_client_id(ClientId::new(id.clone()))
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(POST_LOGOUT.into()).unwrap())
        .set_state(CsrfToken::new("bye".into()))
        .http_get_url();
    let res = Browser::new(&s.url).get(logout_url.as_str()).await;
    assert_eq!(res.status(), 303, "no session: straight to the post-logout URI");
    assert_eq!(location(&res), format!("{POST_LOGOUT}?state=bye"));
}

/// A client registered with `id_token_signed_response_alg: ES256` gets ES256 ID tokens, and the
/// crate verifies them against the JWKS (only ES256 allowed, signature checked).
#[tokio::test]
async fn openidconnect_crate_verifies_es256_id_token() {
    let s = TestServer::start().await;
    let http = Reqwest013::new();
    let meta = discover(&s, &http).await;
    let (client, id) = oidc_client(&s, &meta, Some("ES256")).await;
    let a = authorize(&s, &client, &Browser::new(&s.url), &["email"]).await;
    let (tokens, nonce) = exchange(&client, &http, a).await;
    let claims = verified_claims(&client, &tokens, &nonce, CoreJwsSigningAlgorithm::EcdsaP256Sha256);
    assert_eq!(claims.audiences().iter().map(|a| a.as_str()).collect::<Vec<_>>(), [id.as_str()]);
    assert_eq!(claims.subject().as_str(), alice_id(&s).await);

    // An RS256-only verifier refuses it: the algorithm restriction is real.
    let rs256_only = client.id_token_verifier().set_allowed_algs([CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
    assert!(tokens.id_token().unwrap().claims(&rs256_only, &nonce).is_err());
    // And a wrong nonce is refused.
    assert!(tokens.id_token().unwrap().claims(&client.id_token_verifier(), &Nonce::new("not-the-nonce".into())).is_err());

    let info: CoreUserInfoClaims = client.user_info(tokens.access_token().clone(), Some(claims.subject().clone())).unwrap().request_async(&http).await.unwrap();
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert!(info.name().is_none(), "no profile scope, no name (OIDC Core §5.4)");
}

/// EdDSA (Ed25519) ID tokens: the crate picks the OKP key from the JWKS and at_hash uses
/// SHA-512 (OIDC Core §3.1.3.6 for an Ed25519 key).
#[tokio::test]
async fn openidconnect_crate_verifies_eddsa_id_token() {
    let s = TestServer::start().await;
    let http = Reqwest013::new();
    let meta = discover(&s, &http).await;
    let (client, _) = oidc_client(&s, &meta, Some("EdDSA")).await;
    let a = authorize(&s, &client, &Browser::new(&s.url), &["profile"]).await;
    let (tokens, nonce) = exchange(&client, &http, a).await;
    let claims = verified_claims(&client, &tokens, &nonce, CoreJwsSigningAlgorithm::EdDsa);
    assert_eq!(claims.subject().as_str(), alice_id(&s).await);
}

/// offline_access (OIDC Core §11) gives a refresh token; the refresh response carries a new ID
/// token (§12.2) that the crate verifies, for the same subject and client, with the original
/// auth_time and no nonce other than the original one.
#[tokio::test]
async fn openidconnect_crate_refresh_with_offline_access() {
    let s = TestServer::start().await;
    let http = Reqwest013::new();
    let meta = discover(&s, &http).await;
    let (client, _) = oidc_client(&s, &meta, None).await;
    let a = authorize(&s, &client, &Browser::new(&s.url), &["email", "offline_access"]).await;
    let (tokens, nonce) = exchange(&client, &http, a).await;
    let first = verified_claims(&client, &tokens, &nonce, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
    let rt = tokens.refresh_token().expect("offline_access gives a refresh token");

    let refreshed = client.exchange_refresh_token(rt).expect("token endpoint").request_async(&http).await.unwrap_or_else(|e| panic!("refresh failed: {e:?}"));
    assert_ne!(refreshed.refresh_token().expect("rotated").secret(), rt.secret());
    let id_token = refreshed.id_token().expect("an ID token on refresh");
    let original = nonce.secret().clone();
    let verifier = client.id_token_verifier();
    // §12.2: "it SHOULD NOT have a nonce Claim ... however, if it is present, its value MUST be
    // the same as in the ID Token issued at the time of the original authentication".
    let second = id_token
        .claims(&verifier, |n: Option<&Nonce>| match n {
            None => Ok(()),
            Some(n) if *n.secret() == original => Ok(()),
            Some(_) => Err("a different nonce".to_string()),
        })
        .unwrap_or_else(|e| panic!("the crate rejects the refreshed ID token: {e:?}"));
    assert_eq!(second.subject(), first.subject());
    assert_eq!(second.audiences(), first.audiences());
    assert_eq!(second.auth_time(), first.auth_time(), "§12.2: auth_time of the original authentication");
    let expected = second.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(refreshed.access_token(), id_token.signing_alg().unwrap(), id_token.signing_key(&verifier).unwrap()).unwrap();
    assert_eq!(*expected, actual);
}

/// The `groups` claim, read by the crate with its own additional-claims type.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
struct Groups {
    #[serde(default)]
    groups: Option<Vec<String>>,
}
impl openidconnect::AdditionalClaims for Groups {}

/// Groups and roles (issue 16) through the crate: alice is in `editors`, which holds the Docs
/// API's `editor` role, and holds `viewer` herself. The ID token the crate verifies and the
/// UserInfo answer it reads carry `groups` for the `groups` scope; the access token for the Docs
/// API carries that API's `roles`, and tessera-guard's `RequireRole` admits it.
#[tokio::test]
async fn openidconnect_crate_reads_groups_and_the_access_token_carries_roles() {
    use tessera_server::service::admin::{self, RoleHolder};
    let s = TestServer::start().await;
    let store = &*s.svc.store;
    let now = tessera_server::Clock::now(&*s.clock);
    let docs = "https://docs.example";
    let roles = vec![admin::parse_api_role("editor=Can edit documents").unwrap(), admin::parse_api_role("viewer=Can view documents").unwrap()];
    admin::create_api_with_roles(store, docs, "Docs", vec![admin::parse_api_scope("docs.read=Read your documents").unwrap()], roles, now).await.unwrap();
    admin::create_group(store, "editors", None, now).await.unwrap();
    admin::create_group(store, "staff", None, now).await.unwrap();
    assert!(admin::add_group_member(store, "editors", USER).await.unwrap());
    assert!(admin::add_group_member(store, "staff", USER).await.unwrap());
    assert!(admin::grant_role(store, docs, "editor", &RoleHolder::Group("editors".into())).await.unwrap());
    assert!(admin::grant_role(store, docs, "viewer", &RoleHolder::User(USER.into())).await.unwrap());

    let http = Reqwest013::new();
    let meta = discover(&s, &http).await;
    let created =
        s.client(NewClient { name: "Docs Web".into(), redirect_uris: vec![CB.into()], scope: "openid groups docs.read".into(), ..Default::default() }).await;
    let client =
        CoreClient::from_provider_metadata(meta.clone(), ClientId::new(created.client.client_id.clone()), created.client_secret.map(ClientSecret::new))
            .set_redirect_uri(RedirectUrl::new(CB.into()).unwrap());
    let scopes: Vec<String> = meta.scopes_supported().unwrap().iter().map(|s| s.to_string()).collect();
    assert!(scopes.contains(&"groups".to_string()), "groups in scopes_supported: {scopes:?}");
    let a = authorize(&s, &client, &Browser::new(&s.url), &["groups", "docs.read"]).await;
    let (tokens, nonce) = exchange(&client, &http, a).await;

    let raw = serde_json::to_value(tokens.id_token().unwrap()).unwrap();
    let id_token: openidconnect::IdToken<Groups, CoreGenderClaim, openidconnect::core::CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm> =
        raw.as_str().unwrap().parse().unwrap();
    let claims = id_token.claims(&client.id_token_verifier(), &nonce).unwrap_or_else(|e| panic!("the crate rejects the ID token: {e:?}"));
    assert_eq!(claims.additional_claims().groups.as_deref(), Some(&["editors".to_string(), "staff".to_string()][..]));

    let info: openidconnect::UserInfoClaims<Groups, CoreGenderClaim> = client
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("userinfo failed: {e:?}"));
    assert_eq!(info.additional_claims().groups.as_deref(), Some(&["editors".to_string(), "staff".to_string()][..]));

    let at = verify_access_token(&s.url, tokens.access_token().secret(), docs).await;
    assert_eq!(at["roles"], serde_json::json!(["editor", "viewer"]), "directly and through the group, once each: {at}");

    // tessera-guard, configured for the Docs API, admits the token on an editor's route.
    let guard = tessera_guard::Guard::new(tessera_guard::GuardConfig::new(&s.url, docs)).unwrap();
    let p = guard.verify(tokens.access_token().secret()).await.unwrap();
    assert!(p.has_role("editor") && p.has_role("viewer") && !p.has_role("admin"), "{p:?}");
    assert!(p.require_role("editor").is_ok());
}

/// Issue 15: the ID token's `amr` (RFC 8176) and `acr` as the crate reads them, for each way of
/// signing in: a password (`pwd`, acr "1"), single sign-on from that session (acr "0"), and a
/// password plus an authenticator app's code asked for with `acr_values` set to the
/// multi-factor policy (`pwd otp mfa`, that policy as `acr`).
#[tokio::test]
async fn openidconnect_crate_reads_amr_and_acr_of_each_sign_in() {
    use openidconnect::AuthenticationContextClass;
    const MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
    let s = TestServer::start().await;
    let http = Reqwest013::new();
    let meta = discover(&s, &http).await;
    assert!(meta.acr_values_supported().unwrap().iter().any(|a| a.as_str() == MFA), "discovery advertises the policy");
    let (client, _) = oidc_client(&s, &meta, None).await;
    let acr_amr = |claims: &IdTokenClaims<EmptyAdditionalClaims, CoreGenderClaim>| {
        let amr: Vec<String> = claims.auth_method_refs().expect("amr").iter().map(|m| m.to_string()).collect();
        (claims.auth_context_ref().map(|a| a.to_string()), amr)
    };
    // A password.
    let b = Browser::new(&s.url);
    let (tokens, nonce) = exchange(&client, &http, authorize(&s, &client, &b, &[]).await).await;
    let claims = verified_claims(&client, &tokens, &nonce, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
    assert_eq!(acr_amr(&claims), (Some("1".into()), vec!["pwd".to_string()]));
    // Single sign-on from that session: nobody authenticated during the request.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) =
        client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).set_pkce_challenge(challenge).url();
    let back = location(&b.get(url.as_str()).await);
    let a = Authorized { code: AuthorizationCode::new(query(&back)["code"].clone()), verifier, nonce };
    let (tokens, nonce) = exchange(&client, &http, a).await;
    let claims = verified_claims(&client, &tokens, &nonce, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
    assert_eq!(acr_amr(&claims), (Some("0".into()), vec!["pwd".to_string()]));

    // alice (still signed in) sets up an authenticator app; the client asks for the
    // multi-factor policy.
    let (secret, _) = b.enrol_totp(s.svc.now()).await;
    s.clock.advance(30);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_auth_context_value(AuthenticationContextClass::new(MFA.into()))
        .set_pkce_challenge(challenge)
        .url();
    let c = Browser::new(&s.url);
    let (_, html) = c.open_login(url.as_str()).await;
    assert_eq!(location(&c.sign_in(&html, USER, PASSWORD).await), "/login/two-step");
    let res = c.second_step(&totp_code(&secret, s.svc.now())).await;
    let consent = c.get(&location(&res)).await;
    assert_eq!(consent.status(), 303, "consent was given before");
    let back = location(&consent);
    let a = Authorized { code: AuthorizationCode::new(query(&back)["code"].clone()), verifier, nonce };
    let (tokens, nonce) = exchange(&client, &http, a).await;
    let claims = verified_claims(&client, &tokens, &nonce, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
    assert_eq!(acr_amr(&claims), (Some(MFA.into()), vec!["pwd".to_string(), "otp".into(), "mfa".into()]));
}
