// An independent DPoP client against a running Tessera: the npm package oauth4webapi
// (installed by the Rust test into tests/interop/.node) runs the authorization code flow with
// PKCE and DPoP, a nonce round trip, a refresh and a UserInfo call. Usage:
//   node oauth4webapi.mjs ISSUER CLIENT_ID REDIRECT_URI
// It prints {"authorize": URL} and reads the callback URL (after sign-in and consent) from
// standard input, then prints one JSON line with what it saw. OAUTH4WEBAPI names the installed
// package's entry file (ESM resolution does not read NODE_PATH).
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

const oauth = await import(pathToFileURL(process.env.OAUTH4WEBAPI).href);

const [issuer, clientId, redirectUri] = process.argv.slice(2);
const insecure = { [oauth.allowInsecureRequests]: true }; // the test server is http on 127.0.0.1
const issuerUrl = new URL(issuer);
const as = await oauth.processDiscoveryResponse(issuerUrl, await oauth.discoveryRequest(issuerUrl, { ...insecure, algorithm: 'oidc' }));
const client = { client_id: clientId };
const auth = oauth.None();
const verifier = oauth.generateRandomCodeVerifier();
const state = oauth.generateRandomState();
const keys = await oauth.generateKeyPair('ES256');
const DPoP = oauth.DPoP(client, keys);

const url = new URL(as.authorization_endpoint);
url.searchParams.set('client_id', clientId);
url.searchParams.set('redirect_uri', redirectUri);
url.searchParams.set('response_type', 'code');
url.searchParams.set('scope', 'openid profile offline_access notes.read');
url.searchParams.set('state', state);
url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
url.searchParams.set('code_challenge_method', 'S256');
url.searchParams.set('dpop_jkt', await DPoP.calculateThumbprint());
console.log(JSON.stringify({ authorize: url.href }));

const lines = createInterface({ input: process.stdin });
const callback = new URL((await lines[Symbol.asyncIterator]().next()).value);
lines.close();
const params = oauth.validateAuthResponse(as, client, callback, state);

// RFC 9449 §8: the first request learns the server's nonce (use_dpop_nonce) and is retried once.
let nonceRetries = 0;
async function withNonce(request) {
  try {
    return await request();
  } catch (err) {
    if (oauth.isDPoPNonceError(err) && nonceRetries < 3) {
      nonceRetries += 1;
      return await request();
    }
    throw err;
  }
}

const tokens = await withNonce(async () =>
  oauth.processAuthorizationCodeResponse(as, client, await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirectUri, verifier, { ...insecure, DPoP })));
const claims = oauth.getValidatedIdTokenClaims(tokens);
const info = await withNonce(async () =>
  oauth.processUserInfoResponse(as, client, claims.sub, await oauth.userInfoRequest(as, client, tokens.access_token, { ...insecure, DPoP })));
const refreshed = await withNonce(async () =>
  oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, { ...insecure, DPoP })));
console.log(JSON.stringify({
  token_type: tokens.token_type,
  access_token: tokens.access_token,
  refreshed_token_type: refreshed.token_type,
  refreshed_access_token: refreshed.access_token,
  rotated: refreshed.refresh_token !== tokens.refresh_token,
  sub: claims.sub,
  userinfo_name: info.name,
  nonce_retries: nonceRetries,
  jkt: await DPoP.calculateThumbprint(),
}));
