// The global `tailor` object that functions written for the other runtime expect, over wasm-host's
// `authconnection` interface. Loaded before the function's own module.
import { getConnectionToken as hostGetConnectionToken } from 'wasm-host:authconnection/authconnection@0.1.0';

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

globalThis.tailor = {
  authconnection: {
    // A Promise, as in the other runtime; rejects with an Error whose `code` is the WIT error case
    // (not-found, access-denied, needs-authorization, unavailable, internal).
    getConnectionToken(name) {
      try {
        return Promise.resolve(toRecord(hostGetConnectionToken(String(name))));
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
