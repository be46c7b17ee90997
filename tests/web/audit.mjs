// The GraphQL-over-HTTP audit suite of npm `graphql-http` (the spec's reference audits) against a
// real `rappel serve`: no MUST failure and no SHOULD warning.
//
//   RAPPEL_URL=http://127.0.0.1:8080 node audit.mjs
import { auditServer } from 'graphql-http';

export async function audit({ label, url }) {
  const results = await auditServer({ url: `${url}/graphql` });
  const failures = [];
  const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
  for (const result of results) {
    counts[result.status] = (counts[result.status] ?? 0) + 1;
    if (result.status === 'ok') continue;
    const detail = result.status === 'notice' ? '' : ` ${JSON.stringify(result.response ? await result.reason : result.reason)}`;
    console.log(`   ${result.status}: ${result.id} ${result.name}${detail}`);
    if (result.status === 'error' || result.status === 'warn') failures.push(result);
  }
  console.log(`${failures.length ? 'not ok' : 'ok'} - ${label}: graphql-http audit: ${counts.ok} ok, ${counts.notice} notices (MAY), ${counts.warn} SHOULD warnings, ${counts.error} MUST failures`);
  if (failures.length) throw new Error(`${label}: the graphql-http audit found ${failures.length} MUST failures or SHOULD warnings`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await audit({ label: 'direct', url: process.env.RAPPEL_URL });
}
