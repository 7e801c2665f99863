/**
 * The load generator of `npm run load` (test/bench/load.ts), in a process of its own so that making
 * requests does not take the stack's event loop: it sends Cambio payment notices at a fixed rate (open
 * loop: a slow reply does not slow the next send, as with real terminals), a share of them twice, and
 * reports every reply's status and latency.
 */

export interface StepOrder {
  type: 'step';
  url: string;
  apiKey: string;
  /** Payments per second (first deliveries; duplicates come on top). */
  rate: number;
  durationMs: number;
  /** Share of payments delivered a second time: half at once (racing the first), half 500 ms later. */
  dup: number;
  /** Keys are `<prefix>-<n>`, so each step's payments are its own. */
  prefix: string;
  /** Requests in flight at most; a payment due while this many are waiting is not sent and counted as skipped. */
  maxInFlight: number;
}

export interface StepReport {
  type: 'report';
  rate: number;
  durationMs: number;
  /** First deliveries due in the step, and how many of them were sent. */
  due: number;
  skipped: number;
  /** Every request sent (first deliveries and duplicates) and its reply. */
  requests: number;
  byStatus: Record<string, number>;
  /** Latency of every answered request, request sent to body read (ms). */
  latencies: number[];
  /** Keys whose first or second delivery got a 2xx. */
  accepted: string[];
  /** Keys delivered twice. */
  doubled: string[];
  maxInFlight: number;
  /** When the last reply came, from the step's start (ms). */
  lastReplyMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runStep(order: StepOrder): Promise<StepReport> {
  const t0 = performance.now();
  const byStatus: Record<string, number> = {};
  const latencies: number[] = [];
  const accepted = new Set<string>();
  const doubled: string[] = [];
  const pending = new Set<Promise<void>>();
  let inFlight = 0;
  let maxInFlight = 0;
  let issued = 0;
  let skipped = 0;
  let requests = 0;
  let lastReplyMs = 0;
  const every = order.dup > 0 ? Math.max(1, Math.round(1 / order.dup)) : 0;

  const deliver = (key: string) => {
    requests++;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const started = performance.now();
    const p = (async () => {
      let status: string;
      try {
        const res = await fetch(`${order.url}/v1/cambio/payment-notices`, {
          method: 'POST',
          headers: { 'x-api-key': order.apiKey, 'content-type': 'application/json' },
          body: JSON.stringify({ status: 'PAID', contactId: key, paymentType: 'CARD' }),
          signal: AbortSignal.timeout(30_000),
        });
        await res.text();
        status = String(res.status);
        latencies.push(performance.now() - started);
        if (res.status >= 200 && res.status < 300) accepted.add(key);
      } catch (err) {
        // fetch's TypeError says only "fetch failed": what failed is its cause (a reset, a closed socket, a timeout).
        const cause = (err as Error & { cause?: { code?: string; name?: string } }).cause;
        status = `no reply: ${(err as Error).name}${cause ? ` (${cause.code ?? cause.name})` : ''}`;
      }
      byStatus[status] = (byStatus[status] ?? 0) + 1;
      inFlight--;
      lastReplyMs = performance.now() - t0;
    })();
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };

  // Bounded: the loop ends with the step, and every request carries a 30 s timeout.
  while (performance.now() - t0 < order.durationMs) {
    const due = Math.min(Math.floor(((performance.now() - t0) / 1000) * order.rate), Math.floor((order.durationMs / 1000) * order.rate));
    while (issued < due) {
      const n = issued++;
      if (inFlight >= order.maxInFlight) {
        skipped++;
        continue;
      }
      const key = `${order.prefix}-${n}`;
      deliver(key);
      if (every > 0 && n % every === 0) {
        doubled.push(key);
        if (doubled.length % 2 === 0) deliver(key);
        else {
          const later = sleep(500).then(() => deliver(key));
          pending.add(later);
          void later.finally(() => pending.delete(later));
        }
      }
    }
    await sleep(2);
  }
  for (let round = 0; round < 100 && pending.size > 0; round++) await Promise.allSettled([...pending]);
  return { type: 'report', rate: order.rate, durationMs: order.durationMs, due: issued, skipped, requests, byStatus, latencies, accepted: [...accepted], doubled, maxInFlight, lastReplyMs };
}

process.on('message', (message: StepOrder | { type: 'stop' }) => {
  if (message.type === 'stop') process.exit(0);
  runStep(message).then(
    (report) => process.send?.(report),
    (err: Error) => {
      process.stderr.write(`load client failed: ${err.stack}\n`);
      process.exit(1);
    },
  );
});
