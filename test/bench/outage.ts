/**
 * Issue 10's outage run: the local stack as `npm start` configures it (default engine settings, the
 * sweep every minute) with NIF first generation and Cambio answering 503 to everything for five
 * minutes, then healthy. Payments arrive through the HTTP routes during the first minute of the
 * outage. Prints, per system, when the last one was posted after the recovery, every status, how many
 * failed, and duplicates as each downstream saw them.
 *
 *   npm run bench:outage                            (defaults: 5 minutes, 30 payments per system)
 *   npm run bench:outage -- --outage 300 --n 30
 */
import { parseArgs } from 'node:util';
import { recordPk } from '../../shared/core/types.js';
import { DEV_API_KEY, startStack } from '../../shared/local/stack.js';

const { values } = parseArgs({
  options: {
    outage: { type: 'string', default: '300' },
    n: { type: 'string', default: '30' },
    'settle-limit': { type: 'string', default: '300' },
  },
});
const OUTAGE_MS = Number(values.outage) * 1000;
const N = Number(values.n);
const SETTLE_LIMIT_MS = Number(values['settle-limit']) * 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CLUB = '4568';

const stack = await startStack({ port: 0, kontantanalysSyncIntervalMs: false, env: { LOG_LEVEL: 'silent', API_KEYS: DEV_API_KEY } });
const cambio = stack.cambio!;
const nif = stack.nif!;
const run = Math.random().toString(36).slice(2, 8);
const cambioIds = Array.from({ length: N }, (_, i) => `out-${run}-c${i}`);
const nifIds = Array.from({ length: N }, (_, i) => `out-${run}-n${i}`);

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`${stack.url}${path}`, {
    method: 'POST',
    headers: { 'x-api-key': DEV_API_KEY, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  await res.text();
  return res.status;
}

const membership = (externalId: string) => ({
  amount: '450', externalId, isPaid: 'true', orgId: '7896', paidDate: '2015-05-08', paidToOrgId: CLUB,
  paymentCategory: 'Club membership', paymentTypeId: 0, periodFrom: '2015-05-08', periodTo: '2015-06-08', personId: '8675682',
});

try {
  const t0 = Date.now();
  cambio.faults.setRates({ '503': 1 });
  nif.faults.setRates({ '503': 1 });
  process.stdout.write(`outage: Cambio and NIF answer 503 to everything for ${OUTAGE_MS / 1000} s; ${N} payments each arrive over its first minute\n`);

  const replies: Record<number, number> = {};
  const gap = Math.min(60_000, OUTAGE_MS / 2) / N;
  for (let i = 0; i < N; i++) {
    const [a, b] = await Promise.all([
      post('/v1/cambio/payment-notices', { status: 'PAID', contactId: cambioIds[i], paymentType: 'CARD' }),
      post('/v1/nif/membership/payments', membership(nifIds[i] as string), { ClubId: CLUB }),
    ]);
    for (const s of [a, b]) replies[s] = (replies[s] ?? 0) + 1;
    await sleep(gap);
  }
  const refusedDuringOutage = () => (cambio.stats.byStatus['503'] ?? 0) + (nif.stats.byStatus['503'] ?? 0);
  process.stdout.write(`intake answered ${JSON.stringify(replies)}\n`);

  // Progress once a minute while the outage lasts.
  while (Date.now() - t0 < OUTAGE_MS) {
    await sleep(Math.min(60_000, OUTAGE_MS - (Date.now() - t0)));
    const recs = [...(await stack.deps.store.getMany([...cambioIds.map((id) => recordPk('cambio', 'default', id)), ...nifIds.map((id) => recordPk('nif-membership', CLUB, `${CLUB}:${id}`))])).values()];
    const byStatus = recs.reduce<Record<string, number>>((acc, r) => ((acc[r.status] = (acc[r.status] ?? 0) + 1), acc), {});
    process.stdout.write(`  ${((Date.now() - t0) / 1000).toFixed(0)} s into the outage: ${JSON.stringify(byStatus)}; 503s answered so far ${refusedDuringOutage()}\n`);
  }
  cambio.faults.setRates({});
  nif.faults.setRates({});
  const recoveredAt = Date.now();
  process.stdout.write('recovered: both answer normally again\n');

  const pks = { cambio: cambioIds.map((id) => recordPk('cambio', 'default', id)), nif: nifIds.map((id) => recordPk('nif-membership', CLUB, `${CLUB}:${id}`)) };
  const lastPosted: Record<string, number | undefined> = { cambio: undefined, nif: undefined };
  let statuses: Record<string, Record<string, number>> = {};
  while (Date.now() - recoveredAt < SETTLE_LIMIT_MS) {
    statuses = {};
    let open = 0;
    for (const [system, keys] of Object.entries(pks)) {
      const recs = [...(await stack.deps.store.getMany(keys)).values()];
      statuses[system] = recs.reduce<Record<string, number>>((acc, r) => ((acc[r.status] = (acc[r.status] ?? 0) + 1), acc), {});
      const posted = recs.filter((r) => r.status === 'posted');
      if (posted.length === keys.length && lastPosted[system] === undefined) lastPosted[system] = Math.max(...posted.map((r) => Date.parse(r.updatedAt)));
      open += keys.length - posted.length - recs.filter((r) => r.status === 'failed' || r.status === 'unknown' || r.status === 'held').length;
    }
    if (open === 0) break;
    await sleep(500);
  }
  await sleep(3_000);

  const cambioDup = cambioIds.reduce((sum, id) => sum + Math.max(0, (cambio.stats.applied[id] ?? 0) - 1), 0);
  const nifDup = nifIds.reduce((sum, id) => sum + Math.max(0, nif.count(id) - 1), 0);
  const after = (t: number | undefined) => (t === undefined ? `NOT all posted within ${SETTLE_LIMIT_MS / 1000} s` : `last posted ${((t - recoveredAt) / 1000).toFixed(1)} s after recovery`);
  process.stdout.write(
    [
      `Cambio: ${after(lastPosted.cambio)}; statuses ${JSON.stringify(statuses.cambio)}; duplicates ${cambioDup}`,
      `NIF first generation: ${after(lastPosted.nif)}; statuses ${JSON.stringify(statuses.nif)}; duplicates ${nifDup}; reads (reconciliation) ${nif.stats.readRequests}`,
      `503s answered during the outage: ${refusedDuringOutage()}`,
    ].join('\n') + '\n',
  );
  const failed = (statuses.cambio?.failed ?? 0) + (statuses.nif?.failed ?? 0);
  process.exitCode = lastPosted.cambio !== undefined && lastPosted.nif !== undefined && failed === 0 && cambioDup + nifDup === 0 ? 0 : 1;
} finally {
  await stack.close();
}
