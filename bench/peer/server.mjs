// The benchmark's peer: `oidc-provider` v9 (a certified Node.js OpenID Provider) configured like
// the Tessera instance it is compared with — the same clients (ids and secrets), one resource
// server whose access tokens are ES256 JWTs (RFC 9068, `typ: at+jwt`), client credentials,
// introspection, refresh-token rotation, authorization code + PKCE, on the in-memory adapter.
//
// Started by `cargo run --release -p tessera-bench` with:
//   OIDC_PROVIDER   path of the installed package's entry (bench/.peer/node_modules/oidc-provider/lib/index.js)
//   BENCH_PEER      JSON: { clients: [{ client_id, client_secret, grant_types, redirect_uris }],
//                           resource, scope, account }
// Listens on 127.0.0.1 (an ephemeral port) and prints "listening on http://127.0.0.1:PORT".
//
// Sign-in and consent are the application's job in oidc-provider: the interaction route here
// completes them at once for the configured account (only the harness's setup goes through it;
// the measured code flow is a signed-in user with a remembered grant, as for Tessera).

import * as crypto from 'node:crypto';
import { pathToFileURL } from 'node:url';

const { default: Provider } = await import(pathToFileURL(process.env.OIDC_PROVIDER).href);
const cfg = JSON.parse(process.env.BENCH_PEER);

const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const server = (await import('node:http')).createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const resourceServer = {
  scope: cfg.scope,
  audience: cfg.resource,
  accessTokenFormat: 'jwt',
  accessTokenTTL: 300,
  jwt: { sign: { alg: 'ES256' } },
};

const provider = new Provider(issuer, {
  clients: cfg.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: c.grant_types,
    redirect_uris: c.redirect_uris,
    response_types: c.grant_types.includes('authorization_code') ? ['code'] : [],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  jwks: { keys: [{ ...ec, alg: 'ES256', use: 'sig', kid: 'es256' }, { ...rsa, alg: 'RS256', use: 'sig', kid: 'rs256' }] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access', cfg.scope],
  findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // RFC 9449, for the refresh_dpop scenario (no server nonces: Tessera's default).
    dPoP: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // RFC 8707: the harness names the resource on client credentials requests; an
      // authorization request without one gets the only API.
      defaultResource: async (ctx, client, oneOf) => oneOf ?? (ctx.oidc.route === 'authorization' ? cfg.resource : undefined),
      useGrantedResource: async () => true,
      getResourceServerInfo: async () => resourceServer,
    },
  },
  // Tessera issues a refresh token with every code redemption for a client allowed the grant,
  // and rotates it on every use: the same here.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: () => true,
  pkce: { required: () => true },
  routes: { authorization: '/authorize', introspection: '/introspect', jwks: '/jwks.json' },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: { AccessToken: 300, ClientCredentials: 300, AuthorizationCode: 60, RefreshToken: 30 * 24 * 3600, Grant: 90 * 24 * 3600, Session: 12 * 3600, Interaction: 600 },
});
provider.proxy = false;

// The application's sign-in and consent, completed at once for the configured account.
provider.use(async (ctx, next) => {
  if (ctx.method !== 'GET' || !ctx.path.startsWith('/interaction/')) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  let result;
  if (details.prompt.name === 'login') {
    result = { login: { accountId: cfg.account } };
  } else {
    const { missingOIDCScope, missingResourceScopes } = details.prompt.details;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    result = { consent: { grantId: await grant.save() } };
  }
  ctx.status = 303;
  ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: true }));
});

provider.on('server_error', (_ctx, err) => console.error('server_error', err));

server.on('request', provider.callback());
console.log(`listening on ${issuer}`);
