// {"token_loop": NAME, "n": N}: N calls of getConnectionToken, for measuring one call's cost from JavaScript.
export default async (input) => {
  let total = 0;
  for (let i = 0; i < (input.n ?? 1); i += 1) {
    const t = await tailor.authconnection.getConnectionToken(input.token_loop);
    total += t.access_token.length;
  }
  return total;
};
