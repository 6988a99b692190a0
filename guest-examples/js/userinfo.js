// The basic usage, exactly as written for the other runtime: the global `tailor` object gives the token,
// fetch() calls the API. Build: wasm-host build-js userinfo.js -o userinfo.wasm
// Input: {"connection": "google-oauth", "url": "https://www.googleapis.com/oauth2/v2/userinfo"}
export default async (input) => {
  const tokens = await tailor.authconnection.getConnectionToken(input.connection);
  const response = await fetch(input.url, {
    headers: { Authorization: `Bearer ${tokens.access_token}` },
  });
  if (!response.ok) throw new Error(`Failed to fetch user info: ${response.statusText}`);
  return await response.json();
};
