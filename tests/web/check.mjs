// The outside checks against one running `rappel serve` (tests/web/run starts it): every
// caller's schema with graphql-js, the graphql-http audit, the offline playground. Each runs in
// its own process (`node check.mjs NAME`): the audit's kept-alive connections end with it, so
// they do not count against the server's per-IP connection limit during the next check.
//
//   RAPPEL_URL=... STAFF_TOKEN=... CONTACT_TOKEN=... BACKEND=sqlite node check.mjs schemas
import { checkSchemas, memberToken } from './schemas.mjs';
import { audit } from './audit.mjs';
import { checkPlayground } from './playground.mjs';
import { checkPortal } from './portal.mjs';

const url = process.env.RAPPEL_URL;
const label = process.env.BACKEND ?? 'rappel';
const staffToken = process.env.STAFF_TOKEN;
const contactToken = process.env.CONTACT_TOKEN;
if (!url || !staffToken || !contactToken) throw new Error('RAPPEL_URL, STAFF_TOKEN and CONTACT_TOKEN are required');

const checks = [
  ['schemas', async () => checkSchemas({
    label,
    tokens: { anonymous: null, contact: contactToken, member: await memberToken(staffToken), admin: staffToken },
  })],
  ['audit', () => audit({ label, url })],
  ['playground', () => checkPlayground({ label, url, staffToken })],
  ['portal', () => checkPortal({ label, url, staffToken, mailDir: process.env.MAIL_DIR })],
];
const wanted = process.argv[2];
const check = checks.find(([name]) => name === wanted);
if (!check) throw new Error(`name one check: ${checks.map(([name]) => name).join(', ')}`);
try {
  await check[1]();
} catch (error) {
  console.log(`not ok - ${label}: ${wanted}`);
  console.log(error);
  process.exitCode = 1;
}
