// The reference graphql-transport-ws client (npm graphql-ws) subscribing to one run.
// Reads {url, runId, after} as JSON on stdin and the token from GRAPHQL_TOKEN; prints each
// event as one JSON line, then {"complete": true}, or {"error": ...} and exits 1.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const spec = JSON.parse(Buffer.concat(chunks).toString());

const client = createClient({
  url: spec.url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${process.env.GRAPHQL_TOKEN}` },
  retryAttempts: 0,
});

const query = `subscription($id: ID!, $after: Int!) { workflowRun(id: $id, after: $after) {
  seq stage status progress message } }`;

try {
  const events = client.iterate({ query, variables: { id: spec.runId, after: spec.after ?? 0 } });
  for await (const result of events) {
    if (result.errors) throw new Error(JSON.stringify(result.errors));
    console.log(JSON.stringify(result.data.workflowRun));
  }
  console.log(JSON.stringify({ complete: true }));
  await client.dispose();
} catch (error) {
  console.log(JSON.stringify({ error: String(error?.message ?? error) }));
  await client.dispose();
  process.exit(1);
}
