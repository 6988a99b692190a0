// Tells "needs authorization" (a person must act; retrying will not help) from "temporarily unavailable"
// (retry later), with a useful message for each. Input: {"connection": NAME}
export default async (input) => {
  const name = input.connection;
  try {
    const tokens = await tailor.authconnection.getConnectionToken(name);
    return { status: 'ok', message: `\`${name}\` is ready`, expires_at: tokens.expires_at };
  } catch (e) {
    switch (e.code) {
      case 'needs-authorization':
        return { status: 'needs-authorization', message: `\`${name}\` is not connected: ask an administrator to authorize it. ${e.message}`, retry: false };
      case 'unavailable':
        return { status: 'unavailable', message: `the provider behind \`${name}\` is not answering; try again in a minute. ${e.message}`, retry: true };
      case 'access-denied':
      case 'not-found':
        return { status: e.code, message: e.message, retry: false };
      default:
        throw e;
    }
  }
};
