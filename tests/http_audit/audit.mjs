// Runs graphql-http's GraphQL over HTTP server audits against a URL and prints the results as
// JSON, one object per audit: {id, name, status, reason?}.
//
//   node tests/http_audit/audit.mjs http://127.0.0.1:PORT/graphql
//
// AUDIT_AUTHORIZATION, when set, is sent as the Authorization header of every request, so the
// audit exercises a signed-in client. It is read from the environment, not argv, so the token
// never shows in a process listing.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}

const authorization = process.env.AUDIT_AUTHORIZATION;
const fetchFn = (input, init = {}) => {
  if (!authorization) return fetch(input, init);
  const headers = new Headers(init.headers);
  headers.set('authorization', authorization);
  return fetch(input, { ...init, headers });
};

const results = [];
for (const { id, name, fn } of serverAudits({ url, fetchFn })) {
  // One at a time: the results then read in the audit's own order, and the server sees no burst.
  const result = await fn();
  results.push(
    result.status === 'ok' ? { id, name, status: 'ok' } : { id, name, status: result.status, reason: result.reason },
  );
}
process.stdout.write(JSON.stringify(results, null, 2) + '\n');
