// Two (or more) connections, two APIs called at once with Promise.all, results combined; each failure is
// caught and reported in place. Input: {"calls": {"calendar": {"connection": "google", "url": "..."},
// "mail": {"connection": "microsoft", "url": "..."}}}
async function callApi({ connection, url }) {
  try {
    const tokens = await tailor.authconnection.getConnectionToken(connection);
    const response = await fetch(url, { headers: { Authorization: `${tokens.token_type} ${tokens.access_token}` } });
    if (!response.ok) return { error: 'http', status: response.status };
    return await response.json();
  } catch (e) {
    return { error: e.code ?? 'fetch', message: e.message };
  }
}

export default async (input) => {
  const names = Object.keys(input.calls);
  const results = await Promise.all(names.map((name) => callApi(input.calls[name])));
  return Object.fromEntries(names.map((name, i) => [name, results[i]]));
};
