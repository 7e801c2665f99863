import type { Io } from './main.js';

/**
 * `paybridge simulate`: a burst of Cambio payments with duplicates into the local stack while the
 * sandbox answers a storm of 429s, then what happened: posted, suppressed, retried, and whether
 * anything reached Cambio twice or not at all.
 */
export async function simulate(local: { apiUrl: string; apiKey: string; sandboxes: Record<string, string | undefined> }, opts: { n: number; dup: number; storm: number }, io: Io): Promise<number> {
  const sandbox = local.sandboxes.cambio as string;
  const headers = { 'x-api-key': local.apiKey, 'content-type': 'application/json' };
  const stats = async () => (await (await fetch(`${sandbox}/__sandbox/stats`, { signal: AbortSignal.timeout(5_000) })).json()) as { noticeRequests: number; rateLimited: number; applied: Record<string, number> };
  const before = await stats();
  await fetch(`${sandbox}/__sandbox/faults`, { method: 'POST', body: JSON.stringify({ faults: Array.from({ length: opts.storm }, () => '429') }), signal: AbortSignal.timeout(5_000) });

  const run = io.clock().toString(36);
  const ids = Array.from({ length: opts.n }, (_, i) => `sim-${run}-${i}`);
  const deliveries = [...ids, ...ids.filter(() => Math.random() < opts.dup)];
  io.out(`sending ${deliveries.length} deliveries of ${ids.length} payments, with a storm of ${opts.storm} 429s queued in the Cambio sandbox`);
  const replies: Record<number, number> = {};
  await Promise.all(
    deliveries.map(async (contactId) => {
      const res = await fetch(`${local.apiUrl}/v1/cambio/payment-notices`, { method: 'POST', headers, body: JSON.stringify({ status: 'PAID', contactId, paymentType: 'CARD' }), signal: AbortSignal.timeout(30_000) });
      await res.text();
      replies[res.status] = (replies[res.status] ?? 0) + 1;
    }),
  );

  const deadline = io.clock() + 120_000;
  let records: { status: string; attempts: number }[] = [];
  while (io.clock() < deadline) {
    records = await Promise.all(
      ids.map(async (id) => (await (await fetch(`${local.apiUrl}/v1/payments/cambio/${id}`, { headers, signal: AbortSignal.timeout(5_000) })).json()) as { status: string; attempts: number }),
    );
    if (records.every((r) => r.status === 'posted' || r.status === 'failed' || r.status === 'held')) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const after = await stats();
  const reached = ids.filter((id) => (after.applied[id] ?? 0) > 0).length;
  const twice = ids.filter((id) => (after.applied[id] ?? 0) > 1).length;
  const lines = [
    `replies            ${Object.entries(replies).map(([s, c]) => `${s}×${c}`).join(' ')}`,
    `posted             ${records.filter((r) => r.status === 'posted').length} of ${ids.length}`,
    `suppressed         ${deliveries.length - ids.length} duplicate deliveries (nothing sent for them)`,
    `retried            ${records.filter((r) => r.attempts > 1).length} payments needed more than one attempt`,
    `429s from Cambio   ${after.rateLimited - before.rateLimited}`,
    `reached Cambio     ${reached} once, ${twice} more than once, ${ids.length - reached} never`,
  ];
  for (const l of lines) io.out(l);
  return twice === 0 && reached === ids.length ? 0 : 1;
}
