import { bar } from './format.js';
import { UsageError, type Io } from './io.js';
import type { Run } from './args.js';

interface Local {
  apiUrl: string;
  apiKey: string;
  sandboxes: Record<string, string | undefined>;
}

export interface SimulateReport {
  deliveries: number;
  payments: number;
  replies: Record<string, number>;
  posted: number;
  suppressed: number;
  retried: number;
  rateLimited: number;
  reachedOnce: number;
  reachedTwice: number;
  neverReached: number;
  /** True when every payment settled before the wait ran out. */
  settled: boolean;
}

const SETTLED = new Set(['posted', 'failed', 'held', 'unknown']);

/** How the statuses stand, for the live line: "31 posted · 9 retrying". */
function tally(statuses: string[]): string {
  const counts = new Map<string, number>();
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).map(([s, n]) => `${n} ${s}`).join(' · ');
}

/**
 * `paybridge simulate`: a burst of Cambio payments with duplicates into the local stack while the
 * sandbox answers a storm of 429s, then what happened: posted, suppressed, retried, and whether
 * anything reached Cambio twice or not at all. It takes several seconds (the storm's Retry-After
 * waits): a live line says how far it is.
 */
export async function simulate(local: Local, opts: { n: number; dup: number; storm: number; waitMs?: number }, io: Io): Promise<SimulateReport> {
  const sandbox = local.sandboxes.cambio as string;
  const headers = { 'x-api-key': local.apiKey, 'content-type': 'application/json' };
  const stats = async () => (await (await fetch(`${sandbox}/__sandbox/stats`, { signal: AbortSignal.timeout(5_000) })).json()) as { noticeRequests: number; rateLimited: number; applied: Record<string, number> };
  const before = await stats();
  await fetch(`${sandbox}/__sandbox/faults`, { method: 'POST', body: JSON.stringify({ faults: Array.from({ length: opts.storm }, () => '429') }), signal: AbortSignal.timeout(5_000) });

  const start = io.clock();
  const elapsed = () => `${Math.round((io.clock() - start) / 1000)} s`;
  const run = start.toString(36);
  const ids = Array.from({ length: opts.n }, (_, i) => `sim-${run}-${i}`);
  const deliveries = [...ids, ...ids.filter(() => Math.random() < opts.dup)];
  io.out(`sending ${deliveries.length} deliveries of ${ids.length} payments, with a storm of ${opts.storm} 429s queued in the Cambio sandbox`);
  const replies: Record<string, number> = {};
  let answered = 0;
  io.progress(`sending   ${bar(0, deliveries.length)}`);
  await Promise.all(
    deliveries.map(async (contactId) => {
      const res = await fetch(`${local.apiUrl}/v1/cambio/payment-notices`, { method: 'POST', headers, body: JSON.stringify({ status: 'PAID', contactId, paymentType: 'CARD' }), signal: AbortSignal.timeout(30_000) });
      await res.text();
      replies[res.status] = (replies[res.status] ?? 0) + 1;
      io.progress(`sending   ${bar(++answered, deliveries.length)}  ${elapsed()}`);
    }),
  );
  io.progressEnd();

  const deadline = io.clock() + (opts.waitMs ?? 120_000);
  let records: { status: string; attempts: number }[] = [];
  let settled = false;
  // Bounded by the deadline: polls the status route twice a second until every payment has settled.
  while (io.clock() < deadline) {
    records = await Promise.all(
      ids.map(async (id) => (await (await fetch(`${local.apiUrl}/v1/payments/cambio/${id}`, { headers, signal: AbortSignal.timeout(5_000) })).json()) as { status: string; attempts: number }),
    );
    const done = records.filter((r) => SETTLED.has(r.status)).length;
    io.progress(`settling  ${bar(done, ids.length)}  ${tally(records.map((r) => r.status))}  ${elapsed()}`);
    if (done === ids.length) {
      settled = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  io.progressEnd();
  const after = await stats();
  const reachedOnce = ids.filter((id) => (after.applied[id] ?? 0) === 1).length;
  const reachedTwice = ids.filter((id) => (after.applied[id] ?? 0) > 1).length;
  return {
    deliveries: deliveries.length,
    payments: ids.length,
    replies,
    posted: records.filter((r) => r.status === 'posted').length,
    suppressed: deliveries.length - ids.length,
    retried: records.filter((r) => r.attempts > 1).length,
    rateLimited: after.rateLimited - before.rateLimited,
    reachedOnce,
    reachedTwice,
    neverReached: ids.length - reachedOnce - reachedTwice,
    settled,
  };
}

function number(text: string | undefined, fallback: number, name: string, min: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number from ${min} to ${max}, not "${text}"`);
  return n;
}

export async function simulateCommand(run: Run): Promise<number> {
  const { values, io } = run;
  const opts = {
    n: Math.round(number(values.n, 40, 'n', 1, 1_000)),
    dup: number(values.dup, 0.25, 'dup', 0, 1),
    storm: Math.round(number(values.storm, 15, 'storm', 0, 1_000)),
  };
  const c = await run.ctx();
  if (!c.local?.sandboxes.cambio) throw new UsageError('simulate runs against the local stack with its Cambio sandbox (npm start without CAMBIO_BASE_URL)');
  const r = await simulate(c.local, opts, io);
  if (values.json) {
    io.out(JSON.stringify(r, null, 2));
  } else {
    const lines = [
      `replies            ${Object.entries(r.replies).map(([s, n]) => `${s}×${n}`).join(' ')}`,
      `posted             ${r.posted} of ${r.payments}${r.settled ? '' : ' (gave up waiting for the rest)'}`,
      `suppressed         ${r.suppressed} duplicate deliveries (nothing sent for them)`,
      `retried            ${r.retried} payments needed more than one attempt`,
      `429s from Cambio   ${r.rateLimited}`,
      `reached Cambio     ${r.reachedOnce} once, ${r.reachedTwice} more than once, ${r.neverReached} never`,
    ];
    for (const l of lines) io.out(l);
  }
  return r.reachedTwice === 0 && r.neverReached === 0 ? 0 : 1;
}
