// {{name}}: a wasm-host function. The default export gets the parsed input and returns the result, which
// becomes JSON; a thrown error is the function's error (`wasm-host run` prints it and exits 1).
export default async (input) => {
  // To call an API on someone's behalf, grant a connection in {{name}}.toml (`[grants] connections`) and
  // ask the host for its token:
  //   const token = await tailor.authconnection.getConnectionToken("google");
  //   const response = await fetch(url, { headers: { Authorization: `Bearer ${token.access_token}` } });
  // or let the host attach it (`[grants] bind`) and send no token at all.
  return { hello: input };
};
