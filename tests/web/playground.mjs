// Opens the GraphiQL playground of a real `rappel serve` in headless Chromium with every request
// to another host blocked, types the README's staff query with the demo staff token in the
// Headers tab, runs it and expects the demo firm's clients; then opens a subscription, which
// authenticates over the WebSocket with the same headers.
//
//   RAPPEL_URL=http://127.0.0.1:8080 STAFF_TOKEN=rpl_... node playground.mjs
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

// The README's staff query ("Trying the API in GraphiQL").
export const STAFF_QUERY = '{ firm { name clients { nodes { name } } } }';
const DEMO_CLIENT = 'Boulangerie Martin';

export async function checkPlayground({ label, url, staffToken }) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run'],
  });
  try {
    const context = await browser.newContext();
    const origin = new URL(url).origin;
    const blocked = [];
    const served = [];
    // The network is cut off from everything but Rappel.
    await context.route('**/*', (route) => {
      const requested = route.request().url();
      if (new URL(requested).origin === origin) {
        served.push(requested);
        return route.continue();
      }
      blocked.push(requested);
      return route.abort('blockedbyclient');
    });
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    const response = await page.goto(`${url}/graphql`);
    assert.equal(response.status(), 200);
    const policy = response.headers()['content-security-policy'] ?? '';
    assert.match(policy, /default-src 'none'/, 'the page forbids other hosts');
    assert.match(policy, /script-src 'self'/);
    assert.match(policy, /connect-src 'self'/);

    await page.waitForSelector('.graphiql-container', { timeout: 30_000 });
    await page.waitForSelector('.graphiql-query-editor .CodeMirror', { timeout: 30_000 });

    // The query editor: replace its text with the README's query, typed.
    await page.click('.graphiql-query-editor .CodeMirror');
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText(STAFF_QUERY);

    // The Headers tab: the bearer token.
    await page.getByRole('button', { name: 'Headers', exact: true }).click();
    const headers = page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror');
    await headers.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${staffToken}` }));

    await page.click('.graphiql-execute-button');
    const result = page.locator('.graphiql-response .CodeMirror');
    await result.getByText(DEMO_CLIENT).first().waitFor({ timeout: 30_000 });
    const text = await result.innerText();
    assert.ok(text.includes('"clients"'), `the answer lists the firm's clients: ${text}`);
    assert.ok(!text.includes('"errors"'), `the answer has no error: ${text}`);

    // A subscription goes over /graphql/ws, authenticated with the Headers tab's content.
    const acknowledged = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no connection_ack on /graphql/ws')), 30_000);
      page.on('websocket', (socket) => {
        let sentToken = false;
        socket.on('framesent', (frame) => {
          if (String(frame.payload).includes(`Bearer ${staffToken}`)) sentToken = true;
        });
        socket.on('framereceived', (frame) => {
          if (String(frame.payload).includes('connection_ack')) {
            clearTimeout(timer);
            resolve({ url: socket.url(), sentToken });
          }
        });
      });
    });
    await page.click('.graphiql-query-editor .CodeMirror');
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText('subscription { requestEvents { kind request { id } } }');
    // GraphiQL parses the edited document after a short pause; running before that would send
    // the previous query's document.
    await page.waitForTimeout(1000);
    await page.click('.graphiql-execute-button');
    const socket = await acknowledged;
    assert.equal(new URL(socket.url).pathname, '/graphql/ws');
    assert.ok(socket.sentToken, 'the connection payload carries the Headers tab token');

    assert.deepEqual(blocked, [], 'the page asked for nothing from another host');
    assert.deepEqual(pageErrors, [], 'the page logged no error');
    assert.ok(served.some((address) => address.includes('/graphql/assets/graphiql.min.js')),
      'GraphiQL came from Rappel itself');
    console.log(`ok - ${label}: the offline playground ran the staff query, listed ${DEMO_CLIENT} and opened a subscription (${served.length} requests, all to Rappel)`);
  } finally {
    await browser.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await checkPlayground({ label: 'direct', url: process.env.RAPPEL_URL, staffToken: process.env.STAFF_TOKEN });
}
