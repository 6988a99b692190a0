// The global `tailor` object that functions written for the other runtime expect, over wasm-host's
// `authconnection` interface. Loaded before the function's own module.
import {
  getConnectionToken as hostGetConnectionToken,
  getConnectionTokenAfterRejection as hostGetConnectionTokenAfterRejection,
} from 'wasm-host:authconnection/authconnection@0.1.0';

function toRecord(t) {
  const record = {
    access_token: t.accessToken,
    refresh_token: t.refreshToken ?? null,
    expires_at: t.expiresAt ?? null,
    token_type: t.tokenType,
    scopes: t.scopes,
  };
  // Metadata captured at authorization (QuickBooks' realmId, Salesforce's instance_url) sits beside the tokens.
  for (const [key, value] of t.metadata) {
    if (!(key in record)) record[key] = value;
  }
  return record;
}

// Tokens already fetched in this invocation (an instance lives for one invocation), by connection name.
// A call into the host from componentize-js costs about 100 µs and grows with the number of calls made in the
// instance (its own allocation bookkeeping; BENCHMARKS.md has the profile), while the host guarantees a token it
// hands out stays valid for its refresh margin. So a token is fetched once and reused while more than REUSE_MS of
// its life remain; errors are never kept, so a failed call is asked again. Repeated calls give the same object
// (copying it each time cost 30 µs a call in the engine's interpreter).
const REUSE_MS = 30_000;
const fetched = new Map();

globalThis.tailor = {
  authconnection: {
    // A Promise, as in the other runtime; rejects with an Error whose `code` is the WIT error case
    // (not-found, access-denied, needs-authorization, unavailable, internal).
    // `getConnectionToken(name, { rejected: tokens.access_token })` after an API answered 401 to that token asks
    // the host for another one (get-connection-token-after-rejection: at most one refresh per rejected token).
    getConnectionToken(name, options) {
      const key = String(name);
      const rejected = options?.rejected == null ? null : String(options.rejected);
      const kept = fetched.get(key);
      if (kept && (rejected === null || kept.record.access_token !== rejected)
        && (kept.expiresMs === null || kept.expiresMs - Date.now() > REUSE_MS)) {
        return Promise.resolve(kept.record);
      }
      try {
        const answer = rejected === null ? hostGetConnectionToken(key) : hostGetConnectionTokenAfterRejection(key, rejected);
        const record = toRecord(answer);
        const expiresMs = record.expires_at === null ? null : Date.parse(record.expires_at);
        fetched.set(key, { record, expiresMs: Number.isNaN(expiresMs) ? 0 : expiresMs });
        return Promise.resolve(record);
      } catch (e) {
        const code = e?.payload?.tag ?? 'internal';
        const err = new Error(`${code}: ${e?.payload?.val ?? String(e)}`);
        err.name = 'AuthConnectionError';
        err.code = code;
        return Promise.reject(err);
      }
    },
  },
};
