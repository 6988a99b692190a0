// The basic usage, exactly as written for the other runtime: the global `tailor` object gives the token,
// fetch() calls the API. Build: wasm-host build-js userinfo.js -o userinfo.wasm
// Input: {"connection": "google-oauth", "url": "https://www.googleapis.com/oauth2/v2/userinfo"}
// A 401 to a token that had not expired (revoked early, or one without expiry that ended with its session) is
// reported to the host with `{ rejected }`, which refreshes it once, and the request is sent once more.
export default async (input) => {
  const call = (tokens) => fetch(input.url, { headers: { Authorization: `Bearer ${tokens.access_token}` } });
  let tokens = await tailor.authconnection.getConnectionToken(input.connection);
  let response = await call(tokens);
  if (response.status === 401) {
    tokens = await tailor.authconnection.getConnectionToken(input.connection, { rejected: tokens.access_token });
    response = await call(tokens);
  }
  if (!response.ok) throw new Error(`Failed to fetch user info: ${response.statusText}`);
  return await response.json();
};
