// The client portal in headless Chromium against a real `rappel serve` (tests/web/run starts it,
// mail written as .eml files to MAIL_DIR): a contact asks for a link, opens it from the .eml,
// presses the button, sees the request, deposits a PDF and a JPEG with a message (a progress bar
// per file reaching 100 %), sees the confirmation and both files, the firm downloads the same
// bytes; the same link opened again lands in the portal; a contact of another client cannot open the first
// one's request; an expired link offers a new one, which arrives by email; the pages fit a
// 375 px wide phone. Every request to another host is blocked.
//
//   RAPPEL_URL=... STAFF_TOKEN=... MAIL_DIR=... node check.mjs portal
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { chromium } from 'playwright-core';

const PHONE = { width: 375, height: 740 };

async function graphql(url, token, query, variables = {}) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  assert.ok(!body.errors, JSON.stringify(body.errors));
  return body.data;
}

/// A client "Garage <tag>" with a contact and a signed monthly mission whose past periods are
/// generated at once: its requests are open and overdue.
async function clientWithRequests(url, token, tag) {
  const data = await graphql(url, token, '{ firm { services(first: 1) { nodes { id } } } }');
  const serviceId = data.firm.services.nodes[0].id;
  const client = await graphql(url, token,
    'mutation($name: String!) { createClient(input: { name: $name }) { id } }', { name: `Garage ${tag}` });
  const clientId = client.createClient.id;
  const email = `contact.${tag}@garage.example`;
  await graphql(url, token,
    'mutation($c: ID!, $e: String!) { addContact(input: { clientId: $c, name: "Paul", email: $e }) { id } }',
    { c: clientId, e: email });
  const today = new Date();
  const start = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - 2, 10)).toISOString().slice(0, 10);
  const mission = await graphql(url, token,
    `mutation($input: CreateMissionInput!) { createMission(input: $input) { id } }`,
    { input: { clientId, name: `Mission ${tag}`, startDate: start, lines: [{ serviceId, frequency: 'MONTHLY', firstDueDate: start }] } });
  await graphql(url, token, 'mutation($id: ID!) { signMission(id: $id) { id } }', { id: mission.createMission.id });
  return { email };
}

/// Decodes a quoted-printable body part.
function quotedPrintable(text) {
  return text.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
}

/// Waits for a new .eml to `to` in the mail folder and returns the portal link it carries.
async function linkFromEmail(rappelUrl, mailDir, to, seen) {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    let files = [];
    try {
      files = readdirSync(mailDir).filter((name) => name.endsWith('.eml') && !seen.has(name));
    } catch { /* the folder appears with the first message */ }
    files.sort((a, b) => statSync(join(mailDir, a)).mtimeMs - statSync(join(mailDir, b)).mtimeMs);
    for (const name of files) {
      const raw = readFileSync(join(mailDir, name), 'utf8');
      if (!raw.toLowerCase().includes(`to: `) || !raw.includes(to)) continue;
      seen.add(name);
      const decoded = quotedPrintable(raw);
      const link = decoded.match(/https?:\/\/[^\s"<>]+\/sign-in\?token=[A-Za-z0-9_-]+/);
      assert.ok(link, `a portal link in ${name}`);
      // The email names public_base_url; the server of this run listens on a random port.
      const emailed = new URL(link[0]);
      return `${rappelUrl}${emailed.pathname}${emailed.search}`;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no email to ${to} in ${mailDir}`);
}

async function askForLink(page, email) {
  await page.fill('#email', email);
  await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
  await page.getByText('Consultez votre messagerie').waitFor();
}

async function fitsThePhone(page, what) {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= PHONE.width, `${what} is ${width}px wide on a ${PHONE.width}px phone`);
}

export async function checkPortal({ label, url, staffToken, mailDir }) {
  assert.ok(mailDir, 'MAIL_DIR is required');
  const first = await clientWithRequests(url, staffToken, `a${Date.now()}`);
  const second = await clientWithRequests(url, staffToken, `b${Date.now()}`);
  const seen = new Set();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run'],
  });
  const origin = new URL(url).origin;
  const phone = async () => {
    const context = await browser.newContext({ viewport: PHONE, locale: 'fr-FR' });
    await context.route('**/*', (route) => (new URL(route.request().url()).origin === origin
      ? route.continue() : route.abort('blockedbyclient')));
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    // The 401 and 404 pages this check opens on purpose are logged as failed loads: not errors.
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) errors.push(message.text());
    });
    return { context, page, errors };
  };
  try {
    // An unknown or expired link offers a new one, which arrives by email.
    const { page, errors } = await phone();
    const expired = await page.goto(`${url}/sign-in?token=rpl_expired_or_unknown`);
    assert.equal(expired.status(), 401);
    await page.getByText('Lien expiré').waitFor();
    await fitsThePhone(page, 'the new-link page');
    await askForLink(page, first.email);
    const link = await linkFromEmail(url, mailDir, first.email, seen);

    // The link from the .eml: a button, then the portal with the request.
    const opened = await page.goto(link);
    assert.equal(opened.status(), 200);
    const headers = opened.headers();
    assert.equal(headers['cache-control'], 'no-store');
    assert.equal(headers['x-frame-options'], 'DENY');
    await fitsThePhone(page, 'the sign-in page');
    await Promise.all([page.waitForURL(`${url}/portal`), page.click('button[type=submit]')]);
    await page.getByText('En retard').first().waitFor();
    await fitsThePhone(page, 'the list of requests');
    assert.doesNotMatch(await page.content(), /rpl_/, 'no token on the page');
    const requestLink = page.locator('ul.requests a').first();
    const requestPath = await requestLink.getAttribute('href');
    await Promise.all([page.waitForURL(`${url}${requestPath}`), requestLink.click()]);
    await page.locator('#answer-form').waitFor();
    await fitsThePhone(page, 'the request page');

    // Two files, a PDF and a JPEG: each gets its progress bar, which reaches 100 % as the
    // multipart body goes up; the page then lists both with their sizes.
    const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n', 'latin1'),
      Buffer.alloc(300_000, 7)]);
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00]),
      Buffer.alloc(200_000, 9)]);
    await page.setInputFiles('#files', [
      { name: 'releve-janvier.pdf', mimeType: 'application/pdf', buffer: pdf },
      { name: 'ticket.jpg', mimeType: 'image/jpeg', buffer: jpeg },
    ]);
    assert.equal(await page.locator('#file-list progress').count(), 2, 'a progress bar per file');
    const highest = new Map();
    await page.exposeFunction('reportProgress', (values) => {
      values.forEach(([name, value]) => highest.set(name, Math.max(highest.get(name) ?? 0, value)));
    });
    await page.evaluate(() => {
      setInterval(() => {
        const bars = [...document.querySelectorAll('#file-list progress')];
        window.reportProgress(bars.map((bar) => [bar.getAttribute('aria-label'), bar.value]));
      }, 5);
    });
    await page.fill('#message', 'Voici les relevés du mois.');
    await Promise.all([
      page.waitForURL(/\?sent=1$/),
      page.click('button[name=send]'),
    ]);
    await page.getByText('Merci : votre réponse a bien été transmise').waitFor();
    await page.getByText('Voici les relevés du mois.').waitFor();
    assert.equal(highest.get('releve-janvier.pdf'), 100, `the PDF's bar: ${[...highest]}`);
    assert.equal(highest.get('ticket.jpg'), 100, `the JPEG's bar: ${[...highest]}`);
    await page.getByText('releve-janvier.pdf').waitFor();
    await page.getByText('ticket.jpg').waitFor();

    // The firm downloads both through the URLs of its view: the same bytes.
    const files = await graphql(url, staffToken,
      '{ firm { files(first: 10) { nodes { name sha256 downloadUrl } } } }');
    const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
    for (const [name, bytes] of [['releve-janvier.pdf', pdf], ['ticket.jpg', jpeg]]) {
      const file = files.firm.files.nodes.find((node) => node.name === name);
      assert.ok(file, `${name} in the firm's files`);
      assert.equal(file.sha256, sha256(bytes));
      const path = new URL(file.downloadUrl).pathname;
      const download = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${staffToken}` } });
      assert.equal(download.status, 200);
      assert.equal(sha256(Buffer.from(await download.arrayBuffer())), sha256(bytes), `${name} downloaded`);
    }
    await fitsThePhone(page, 'the confirmation');

    // The same link again, same browser: straight into the portal, no button.
    await page.goto(link);
    assert.equal(new URL(page.url()).pathname, '/portal', 'the link lands in the portal');

    // A contact of another client cannot open the first one's request.
    const other = await phone();
    await other.page.goto(`${url}/portal/new-link`);
    await askForLink(other.page, second.email);
    const otherLink = await linkFromEmail(url, mailDir, second.email, seen);
    await other.page.goto(otherLink);
    await Promise.all([other.page.waitForURL(`${url}/portal`), other.page.click('button[type=submit]')]);
    const refused = await other.page.goto(`${url}${requestPath}`);
    assert.equal(refused.status(), 404);
    await other.page.getByText('Demande introuvable').waitFor();

    assert.deepEqual([...errors, ...other.errors], [], 'no script or CSP error');
    console.log(`ok - ${label}: portal`);
  } finally {
    await browser.close();
  }
}
