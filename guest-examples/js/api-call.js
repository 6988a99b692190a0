// Calls an API through an origin the host binds to a connection: no token in this code, none to leak.
// Build: wasm-host build-js api-call.js -o api-call.wasm
// Run:   wasm-host run api-call.wasm --bind google=https://www.googleapis.com \
//          --input '{"url": "https://www.googleapis.com/oauth2/v2/userinfo"}'
// The host adds `Authorization` on the way out (refreshing the token when needed, retrying once after a 401).
export default async (input) => {
  const response = await fetch(input.url, { headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`GET ${input.url} answered ${response.status}: ${await response.text()}`);
  return await response.json();
};
