// The OpenID provider the tests and the demo run on 127.0.0.1: npm `oidc-provider` (OpenID Certified), with
// one confidential native client, logins and consent approved automatically (or its own login page), counters
// of what reached it, and a control endpoint that changes its behaviour while it runs.
//
// Environment: PORT (0 = any free port), CLIENT_ID, CLIENT_SECRET, ACCESS_TTL (seconds), ROTATE (1|0),
// OMIT_UNCHANGED_REFRESH (1|0), AUTO_APPROVE (1|0). Prints `ready <issuer>` on stdout once listening.
//
// Clients: CLIENT_ID (authorization code, refresh, device grant), CLIENT_ID-other-redirect, and CLIENT_ID-service
// (client credentials only, scope `api`), all with CLIENT_SECRET.
//
// Test endpoints (loopback only, no auth: this server exists only for tests):
//   GET  /test/stats   -> {"token": {"authorization_code": n, "refresh_token": n, "client_credentials": n, ...},
//                          "revocation": n, "userinfo": n, "tokenInFlight": n (token requests received and not
//                          answered yet), "devicePolls": [{"at": ms, "answer": "authorization_pending"|...}],
//                          "deviceCodes": [the device codes issued, for tests that scan for them]}
//   POST /test/config  <- JSON merged into the settings below (deny, accessTtl, rotate, omitUnchangedRefresh,
//                         tokenDelayMs, tokenFailStatus, deviceCodeTtl, deviceInterval, slowDownOnce)
//   GET  /test/api     a protected API: 200 {"client_id", "kind"} for a live access token (Bearer), else 401
//   POST /test/forget-access-tokens -> {"forgotten": n}: drops every access token issued so far and nothing else
//                         (grants and refresh tokens stay), as a provider does that revokes access tokens early;
//                         its userinfo endpoint then answers 401 to them

import http from 'node:http';
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const env = process.env;
const settings = {
  accessTtl: Number(env.ACCESS_TTL ?? 3600),
  rotate: (env.ROTATE ?? '1') === '1',
  omitUnchangedRefresh: env.OMIT_UNCHANGED_REFRESH === '1',
  autoApprove: (env.AUTO_APPROVE ?? '1') === '1',
  deny: false,
  tokenDelayMs: 0, // before the token endpoint handles a request
  tokenResponseDelayMs: 0, // after it handled it (tokens issued, refresh token rotated), before the answer
  tokenFailStatus: 0,
  deviceCodeTtl: 600, // seconds a device code lives (RFC 8628 §3.2 expires_in)
  deviceInterval: 1, // the polling interval the device authorization response announces (§3.2 interval)
  slowDownOnce: false, // answer the next pending device poll with slow_down (§3.5)
};
// tokenInFlight: token requests received and not yet answered (tests wait for 0 after killing a client).
const stats = { token: {}, revocation: 0, userinfo: 0, userinfoStatus: {}, tokenInFlight: 0, devicePolls: [], deviceCodes: [] };
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

// Everything in memory, unbounded: the built-in store is an LRU that forgets grants in long runs.
const stores = new Map();
class MemoryAdapter {
  constructor(name) {
    this.name = name;
    if (!stores.has(name)) stores.set(name, new Map());
    this.map = stores.get(name);
  }
  key(id) { return id; }
  async upsert(id, payload, expiresIn) {
    this.map.set(id, { payload, expires: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
    if (payload.grantId) {
      const grants = stores.get('grants') ?? new Map();
      stores.set('grants', grants);
      const ids = grants.get(payload.grantId) ?? [];
      ids.push([this.name, id]);
      grants.set(payload.grantId, ids);
    }
    if (payload.userCode) this.map.set(`userCode:${payload.userCode}`, { payload: id });
    if (payload.uid) this.map.set(`uid:${payload.uid}`, { payload: id });
  }
  async find(id) {
    const e = this.map.get(id);
    if (!e || (e.expires && e.expires < Date.now())) return undefined;
    return e.payload;
  }
  async findByUid(uid) { const id = this.map.get(`uid:${uid}`)?.payload; return id ? this.find(id) : undefined; }
  async findByUserCode(code) { const id = this.map.get(`userCode:${code}`)?.payload; return id ? this.find(id) : undefined; }
  async consume(id) { const e = this.map.get(id); if (e) e.payload.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) { this.map.delete(id); }
  async revokeByGrantId(grantId) {
    const grants = stores.get('grants');
    for (const [name, id] of grants?.get(grantId) ?? []) stores.get(name)?.delete(id);
    grants?.delete(grantId);
  }
}

// A fixed signing key, generated once for these tests (it signs only test ID tokens on 127.0.0.1): generating
// one at every start costs a busy machine seconds.
const jwk = JSON.parse(readFileSync(new URL('./test-signing-key.json', import.meta.url), 'utf8'));

const server = http.createServer();
await new Promise((resolve) => server.listen(Number(env.PORT ?? 0), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  adapter: MemoryAdapter,
  clients: [{
    client_id: env.CLIENT_ID ?? 'wasm-host-test',
    client_secret: env.CLIENT_SECRET ?? 'test-secret',
    application_type: 'native', // any port on a loopback redirect URI (RFC 8252 §7.3)
    redirect_uris: ['http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token', DEVICE_GRANT],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid profile email offline_access', // not `api`: the tests' invalid_scope case
  }, {
    // A service: the client-credentials grant only (RFC 6749 §4.4), no user, no redirect.
    client_id: `${env.CLIENT_ID ?? 'wasm-host-test'}-service`,
    client_secret: env.CLIENT_SECRET ?? 'test-secret',
    redirect_uris: [],
    grant_types: ['client_credentials'],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'api',
  }, {
    // The same client registered with another redirect path: what a user who registered the wrong URI has.
    client_id: `${env.CLIENT_ID ?? 'wasm-host-test'}-other-redirect`,
    client_secret: env.CLIENT_SECRET ?? 'test-secret',
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/elsewhere'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  scopes: ['openid', 'profile', 'email', 'offline_access', 'api'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() { return { sub: id, email: `${id}@example.test`, email_verified: true, name: 'Test User' }; },
    };
  },
  features: {
    devInteractions: { enabled: !settings.autoApprove },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    deviceFlow: { enabled: true },
  },
  interactions: settings.autoApprove ? { url: (_ctx, interaction) => `/interaction/${interaction.uid}` } : undefined,
  clockTolerance: 0,
  // A refresh token whenever the client may refresh, and one that outlives the login session.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async () => false,
  rotateRefreshToken: () => settings.rotate,
  ttl: {
    AccessToken: () => settings.accessTtl,
    ClientCredentials: () => settings.accessTtl,
    DeviceCode: () => settings.deviceCodeTtl,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
    Interaction: 600,
    Session: 24 * 3600,
  },
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

provider.use(async (ctx, next) => {
  if (ctx.path === '/test/stats') {
    ctx.body = stats;
    return;
  }
  if (ctx.path === '/test/api') {
    const bearer = /^Bearer (.+)$/.exec(ctx.get('authorization') ?? '')?.[1];
    const token = bearer
      && ((await provider.ClientCredentials.find(bearer)) ?? (await provider.AccessToken.find(bearer)));
    if (!token) {
      ctx.status = 401;
      ctx.body = { error: 'invalid_token' };
      return;
    }
    ctx.body = { client_id: token.clientId, kind: token.kind };
    return;
  }
  if (ctx.path === '/test/forget-access-tokens' && ctx.method === 'POST') {
    const tokens = stores.get('AccessToken') ?? new Map();
    const forgotten = tokens.size;
    tokens.clear();
    ctx.body = { forgotten };
    return;
  }
  if (ctx.path === '/test/config' && ctx.method === 'POST') {
    let raw = '';
    for await (const chunk of ctx.req) raw += chunk;
    Object.assign(settings, JSON.parse(raw || '{}'));
    ctx.body = settings;
    return;
  }
  if (settings.autoApprove && ctx.path.startsWith('/interaction/')) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const { prompt, params, session } = details;
    let result;
    if (settings.deny) {
      result = { error: 'access_denied', error_description: 'The resource owner denied the request' };
    } else if (prompt.name === 'login') {
      result = { login: { accountId: 'test-user' } };
    } else {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      result = { consent: { grantId: await grant.save() } };
    }
    const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(to);
    return;
  }
  if (ctx.path === '/token') {
    stats.tokenInFlight += 1;
    try {
      await handleToken(ctx, next);
    } finally {
      stats.tokenInFlight -= 1;
    }
    return;
  }
  await next();
  if (ctx.path === '/device/auth' && ctx.body?.device_code) {
    ctx.body.interval = settings.deviceInterval;
    stats.deviceCodes.push(ctx.body.device_code);
  }
  if (ctx.path === '/token/revocation') {
    stats.revocation += 1;
  } else if (ctx.path === '/me') {
    stats.userinfo += 1;
    stats.userinfoStatus[ctx.status] = (stats.userinfoStatus[ctx.status] ?? 0) + 1;
  }
});

async function handleToken(ctx, next) {
  if (settings.tokenDelayMs) await sleep(settings.tokenDelayMs);
  if (settings.tokenFailStatus) {
    ctx.status = settings.tokenFailStatus;
    ctx.body = { error: 'temporarily_unavailable', error_description: 'injected by the test' };
    return;
  }
  await next();
  if (settings.tokenResponseDelayMs) await sleep(settings.tokenResponseDelayMs);
  const grantType = ctx.oidc?.params?.grant_type ?? 'unknown';
  stats.token[grantType] = (stats.token[grantType] ?? 0) + 1;
  if (grantType === DEVICE_GRANT) {
    if (settings.slowDownOnce && ctx.body?.error === 'authorization_pending') {
      settings.slowDownOnce = false;
      ctx.body = { error: 'slow_down', error_description: 'injected by the test' };
    }
    stats.devicePolls.push({ at: Date.now(), answer: ctx.body?.error ?? 'tokens' });
  }
  if (settings.omitUnchangedRefresh && grantType === 'refresh_token'
      && ctx.body?.refresh_token === ctx.oidc.params.refresh_token) {
    delete ctx.body.refresh_token;
  }
}

server.on('request', provider.callback());
process.on('SIGTERM', () => server.close(() => process.exit(0)));
console.log(`ready ${issuer}`);
