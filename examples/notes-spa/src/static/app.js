// Notes SPA: a public OAuth client running entirely in the browser (OAuth 2.0 for Browser-Based
// Applications; RFC 9700 §2.2): authorization code with PKCE (RFC 7636), `state` and `iss`
// (RFC 9207) checked, tokens bound to a DPoP key (RFC 9449) made by WebCrypto as
// non-extractable. Tokens live in this module's memory only: never in localStorage,
// sessionStorage, IndexedDB or cookies. The key pair and the pending request (PKCE verifier,
// state) are kept in IndexedDB so that they survive the redirect to Tessera and back.

const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const utf8 = (s) => new TextEncoder().encode(s);
const random = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));
const sha256 = async (s) => b64url(await crypto.subtle.digest('SHA-256', utf8(s)));

const $ = (id) => document.getElementById(id);
const show = (id, on) => { $(id).hidden = !on; };
const status = (text) => { $('status').textContent = text; };
const error = (text) => { $('error').textContent = text; show('error', !!text); };

// --- IndexedDB: the key pair and the pending authorization request, nothing else. ---
function db() {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open('notes-spa', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('kv');
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}
async function kv(mode, fn) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const tx = d.transaction('kv', mode);
    const req = fn(tx.objectStore('kv'));
    tx.oncomplete = () => resolve(req && req.result);
    tx.onerror = () => reject(tx.error);
  });
}
const get = (k) => kv('readonly', (s) => s.get(k));
const put = (k, v) => kv('readwrite', (s) => s.put(v, k));
const del = (k) => kv('readwrite', (s) => s.delete(k));

// --- DPoP (RFC 9449 §4): an ES256 key that cannot be exported, proofs per request. ---
async function dpopKey() {
  let keys = await get('dpop-key');
  if (!keys) {
    keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
    await put('dpop-key', keys);
  }
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', keys.publicKey);
  return { keys, jwk: { kty, crv, x, y } };
}
async function thumbprint(jwk) {
  // RFC 7638: the required members in lexicographic order.
  return sha256(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }));
}
const nonces = {};
async function proof(method, url, accessToken) {
  const { keys, jwk } = await dpopKey();
  const htu = url.split(/[?#]/)[0];
  const claims = { jti: random(16), htm: method, htu, iat: Math.floor(Date.now() / 1000) };
  if (accessToken) claims.ath = await sha256(accessToken);
  const origin = new URL(url).origin;
  if (nonces[origin]) claims.nonce = nonces[origin];
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk };
  const input = `${b64url(utf8(JSON.stringify(header)))}.${b64url(utf8(JSON.stringify(claims)))}`;
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keys.privateKey, utf8(input));
  return `${input}.${b64url(sig)}`;
}
function learnNonce(url, res) {
  const n = res.headers.get('DPoP-Nonce');
  if (n) nonces[new URL(url).origin] = n;
}

// --- The app's state: in memory only. ---
let config, server, tokens = null, refreshTimer = null;

async function tokenRequest(form) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const res = await fetch(server.token_endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', DPoP: await proof('POST', server.token_endpoint) },
      body: new URLSearchParams(form),
    });
    learnNonce(server.token_endpoint, res);
    const body = await res.json();
    if (res.ok) return body;
    if (body.error === 'use_dpop_nonce' && attempt === 0) continue; // RFC 9449 §8: retry once
    throw new Error(`${body.error}: ${body.error_description || ''}`);
  }
}

function keep(t) {
  tokens = { access: t.access_token, type: t.token_type, refresh: t.refresh_token || (tokens && tokens.refresh), scope: t.scope };
  clearTimeout(refreshTimer);
  if (tokens.refresh) refreshTimer = setTimeout(refresh, Math.max(5, t.expires_in * 0.8) * 1000);
}

async function refresh() {
  if (!tokens || !tokens.refresh) return false;
  try {
    keep(await tokenRequest({ grant_type: 'refresh_token', refresh_token: tokens.refresh, client_id: config.client_id }));
    return true;
  } catch (e) {
    tokens = null;
    error(`Your session ended (${e.message}). Sign in again.`);
    signedOut();
    return false;
  }
}

// The API, called directly from the page with the scheme the token response named.
async function api(method, path, body, retried) {
  const url = config.api + path;
  const headers = {};
  if (tokens.type && tokens.type.toLowerCase() === 'dpop') {
    headers.Authorization = `DPoP ${tokens.access}`;
    headers.DPoP = await proof(method, url, tokens.access);
  } else {
    headers.Authorization = `Bearer ${tokens.access}`;
  }
  if (body) headers['Content-Type'] = 'application/json';
  const res = await fetch(url, { method, headers, body: body && JSON.stringify(body) });
  learnNonce(url, res);
  if (res.status === 401 && !retried) {
    const challenge = res.headers.get('WWW-Authenticate') || '';
    if (challenge.includes('use_dpop_nonce') || (challenge.includes('invalid_token') && (await refresh()))) return api(method, path, body, true);
  }
  if (res.status === 403) {
    const what = { 'notes.read': 'read your notes', 'notes.write': 'add notes', 'notes.delete': 'delete notes' };
    const needed = (res.headers.get('WWW-Authenticate') || '').match(/scope="([^"]+)"/);
    throw new Error(`You did not allow Notes to ${needed ? what[needed[1]] || needed[1] : 'do this'}.`);
  }
  if (!res.ok) throw new Error(`The Notes API refused (${res.status}).`);
  return res.status === 204 ? null : res.json();
}

async function render() {
  const { notes } = await api('GET', '/notes');
  const list = $('list');
  list.replaceChildren();
  for (const n of notes) {
    const li = document.createElement('li');
    const title = document.createElement('strong');
    title.textContent = n.title;
    const text = document.createElement('p');
    text.textContent = n.body;
    const remove = document.createElement('button');
    remove.textContent = 'Delete';
    remove.className = 'delete';
    remove.addEventListener('click', () => act(async () => { await api('DELETE', `/notes/${n.id}`); await render(); }));
    li.append(remove, title, text);
    list.append(li);
  }
  status(`Signed in. ${notes.length} note${notes.length === 1 ? '' : 's'}.`);
  show('notes', true);
  show('sign-in', false);
}

async function act(fn) {
  error('');
  try { await fn(); } catch (e) { error(e.message); }
}

function signedOut() {
  show('notes', false);
  show('sign-in', true);
  status('Not signed in.');
}

async function signIn() {
  const verifier = random(32);
  const state = random(16);
  await put('pending', { verifier, state });
  const { jwk } = await dpopKey();
  const url = new URL(server.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: config.client_id,
    redirect_uri: config.redirect_uri,
    scope: config.scope,
    state,
    code_challenge: await sha256(verifier),
    code_challenge_method: 'S256',
    dpop_jkt: await thumbprint(jwk), // RFC 9449 §10: the code is bound to this key
  }).toString();
  location.assign(url.href);
}

async function callback(params) {
  const pending = await get('pending');
  await del('pending');
  history.replaceState(null, '', '/');
  if (!pending || params.get('state') !== pending.state) throw new Error('This answer does not belong to a sign-in started here (state).');
  if (params.get('iss') !== server.issuer) throw new Error('This answer does not come from the expected authorization server (iss).');
  if (params.get('error')) throw new Error(`Tessera answered: ${params.get('error_description') || params.get('error')}`);
  keep(await tokenRequest({
    grant_type: 'authorization_code',
    code: params.get('code'),
    redirect_uri: config.redirect_uri,
    client_id: config.client_id,
    code_verifier: pending.verifier,
  }));
}

async function signOut() {
  if (tokens && tokens.refresh) {
    await fetch(server.revocation_endpoint, { method: 'POST', body: new URLSearchParams({ token: tokens.refresh, client_id: config.client_id }) }).catch(() => {});
  }
  tokens = null;
  clearTimeout(refreshTimer);
  signedOut();
}

async function main() {
  config = await (await fetch('/config.json')).json();
  server = await (await fetch(`${config.issuer}/.well-known/openid-configuration`)).json();
  $('sign-in').addEventListener('click', () => act(signIn));
  $('sign-out').addEventListener('click', () => act(signOut));
  $('new-note').addEventListener('submit', (e) => {
    e.preventDefault();
    act(async () => { await api('POST', '/notes', { title: $('title').value, body: $('body').value }); $('title').value = ''; $('body').value = ''; await render(); });
  });
  const params = new URLSearchParams(location.search);
  if (location.pathname === '/callback' && (params.has('code') || params.has('error'))) {
    await act(async () => { await callback(params); await render(); });
    if (!tokens) signedOut();
  } else {
    signedOut();
  }
}

main().catch((e) => error(e.message));
