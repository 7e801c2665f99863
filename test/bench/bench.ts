/**
 * `npm run bench`: N payments (default 600) into the Cambio sandbox limited to R requests/s
 * (default 10), through the whole local stack over loopback, with a share of them delivered twice.
 * Prints drain time ÷ (N/R), the share of downstream calls answered 429, duplicates and lost.
 *
 *   npm run bench -- --n 600 --rate 10 --dup 0.1
 */
import { parseArgs } from 'node:util';
import { DEV_API_KEY, startStack } from '../../shared/local/stack.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '600' },
    rate: { type: 'string', default: '10' },
    dup: { type: 'string', default: '0.1' },
    concurrency: { type: 'string', default: '200' },
  },
});
const N = Number(values.n);
const R = Number(values.rate);
const DUP = Number(values.dup);
const CONCURRENCY = Number(values.concurrency);

async function main() {
  const stack = await startStack({
    port: 0,
    sweepIntervalMs: 60_000,
    env: { LOG_LEVEL: 'silent', API_KEYS: DEV_API_KEY, CAMBIO_MAX_RPS: String(R) },
    cambio: { ratePerSecond: R },
  });
  const sandbox = stack.cambio!;
  const runId = Date.now().toString(36);
  const ids = Array.from({ length: N }, (_, i) => `bench-${runId}-${i}`);
  // Each payment once, plus a share delivered again (a terminal retrying its webhook).
  const deliveries = [...ids, ...ids.filter((_, i) => i % Math.max(1, Math.round(1 / DUP)) === 0 && DUP > 0)];
  const replies: Record<string, number> = {};

  const t0 = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, deliveries.length) }, async () => {
      while (next < deliveries.length) {
        const contactId = deliveries[next++] as string;
        const res = await fetch(`${stack.url}/v1/cambio/payment-notices`, {
          method: 'POST',
          headers: { 'x-api-key': DEV_API_KEY, 'content-type': 'application/json' },
          body: JSON.stringify({ status: 'PAID', contactId, paymentType: 'CARD' }),
          signal: AbortSignal.timeout(30_000),
        });
        await res.text();
        replies[res.status] = (replies[res.status] ?? 0) + 1;
      }
    }),
  );
  const acceptedAt = Date.now();

  const ideal = (N / R) * 1000;
  const deadline = t0 + ideal * 3 + 60_000;
  const posted = () => ids.filter((id) => (sandbox.stats.applied[id] ?? 0) > 0).length;
  while (posted() < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  // Let anything still queued show itself as a duplicate before counting.
  await new Promise((r) => setTimeout(r, 2_000));

  const drainMs = sandbox.stats.lastAppliedAt - t0;
  const duplicates = Object.values(sandbox.stats.applied).reduce((sum, c) => sum + Math.max(0, c - 1), 0);
  const lost = N - posted();
  const calls = sandbox.stats.noticeRequests;
  const share429 = calls === 0 ? 0 : sandbox.stats.rateLimited / calls;
  const ratio = drainMs / ideal;

  const rows: [string, string][] = [
    ['payments (N)', String(N)],
    ['deliveries incl. redeliveries', String(deliveries.length)],
    ['downstream limit (R)', `${R} req/s`],
    ['replies', Object.entries(replies).map(([s, c]) => `${s}×${c}`).join(' ')],
    ['all accepted after', `${((acceptedAt - t0) / 1000).toFixed(1)} s`],
    ['drain time', `${(drainMs / 1000).toFixed(1)} s (ideal N/R = ${(ideal / 1000).toFixed(1)} s)`],
    ['drain ÷ (N/R)', `${ratio.toFixed(3)}  (aim ≤ 1.1)`],
    ['downstream calls', String(calls)],
    ['answered 429', `${sandbox.stats.rateLimited} (${(share429 * 100).toFixed(2)}%, aim ≤ 5%)`],
    ['duplicates', `${duplicates}  (aim 0)`],
    ['lost', `${lost}  (aim 0)`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`\npaybridge bench: Cambio sandbox through the local stack\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n`);
  await stack.close();
  const ok = ratio <= 1.1 && share429 <= 0.05 && duplicates === 0 && lost === 0;
  process.stdout.write(`  verdict${' '.repeat(width - 7)}  ${ok ? 'all aims met' : 'AIMS MISSED'}\n`);
  process.exitCode = ok ? 0 : 1;
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack}\n`);
  process.exit(2);
});
