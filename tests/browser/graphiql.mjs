// Drives the api's GraphiQL page in headless Chromium (Debian's, through playwright-core: no
// browser is downloaded) and prints what happened as JSON. Run by
// tests/integration/test_graphiql_browser.py:
//
//   GRAPHIQL_TOKEN=... node tests/browser/graphiql.mjs < spec.json
//
// spec: {url, chromium, screenshotDir, steps: [{name, query, until: [text...], timeoutMs}]}.
// For each step it replaces the query editor's text, presses the run button, waits until the
// response pane shows every `until` text, and takes a screenshot. A step that times out is
// reported with the response it had, and the steps after it are skipped.
//
// Output: {steps: [{name, ok, response, screenshot}], requests: [url...],
//          websockets: [{url, sent: [message...], received: [message...]}], errors: [text...]}
// The token (read from the environment, never argv) is typed into the page's Token field; in the
// recorded WebSocket frames it is replaced by "<token>" when it is the one given, so the output
// shows what was sent without carrying the secret.
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const spec = JSON.parse(readFileSync(0, 'utf8'));
const token = process.env.GRAPHIQL_TOKEN || '';

const requests = [];
const websockets = [];
const errors = [];
const steps = [];

function redact(payload) {
  let message;
  try {
    message = JSON.parse(payload);
  } catch {
    return { unparsed: String(payload) };
  }
  const auth = message?.payload?.Authorization;
  if (typeof auth === 'string' && token) {
    message.payload.Authorization = auth === `Bearer ${token}` ? 'Bearer <token>' : '<another>';
  }
  return message;
}

// The response pane is a CodeMirror 5 editor; its API gives the whole text, not only the lines
// that happen to be rendered. (Runs in the page, so it must stay self-contained.)
function responseText() {
  const element = document.querySelector('.graphiql-response .CodeMirror');
  return element && element.CodeMirror ? element.CodeMirror.getValue() : '';
}

function responseShows(until) {
  const element = document.querySelector('.graphiql-response .CodeMirror');
  const text = element && element.CodeMirror ? element.CodeMirror.getValue() : '';
  return until.every((needle) => text.includes(needle));
}

const browser = await chromium.launch({ executablePath: spec.chromium, headless: true });
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 860 } });
  context.on('request', (request) => requests.push(request.url()));
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`page: ${error.message}`));
  page.on('websocket', (ws) => {
    const record = { url: ws.url(), sent: [], received: [] };
    websockets.push(record);
    ws.on('framesent', (frame) => record.sent.push(redact(frame.payload)));
    ws.on('framereceived', (frame) => record.received.push(redact(frame.payload)));
  });

  page.on('requestfailed', (request) =>
    errors.push(`request failed: ${request.url()} (${request.failure()?.errorText})`),
  );

  try {
    await page.goto(spec.url, { waitUntil: 'load' });
    await page.waitForSelector('.graphiql-query-editor .CodeMirror', { timeout: 30000 });
    await page.fill('#heysh-token', token);
  } catch (error) {
    errors.push(`GraphiQL did not load: ${error.message.split('\n')[0]}`);
    const screenshot = join(spec.screenshotDir, 'load.png');
    await page.screenshot({ path: screenshot });
    steps.push({ name: 'load', ok: false, response: '', screenshot });
  }

  for (const step of errors.length ? [] : spec.steps) {
    // Typing as a person would, in one insertion: key-by-key typing would have CodeMirror close
    // every bracket a second time.
    await page.click('.graphiql-query-editor .CodeMirror');
    await page.keyboard.press('Control+A');
    await page.keyboard.insertText(step.query);
    await page.click('.graphiql-execute-button');
    let ok = true;
    try {
      await page.waitForFunction(responseShows, step.until, {
        timeout: step.timeoutMs ?? 30000,
        polling: 100,
      });
    } catch (error) {
      ok = false;
      errors.push(`step ${step.name}: ${error.message.split('\n')[0]}`);
    }
    const response = await page.evaluate(responseText);
    const screenshot = join(spec.screenshotDir, `${step.name}.png`);
    await page.screenshot({ path: screenshot });
    steps.push({ name: step.name, ok, response, screenshot });
    if (!ok) break;
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify({ steps, requests, websockets, errors }));
