import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../shared/local/stack.js';
import { recordPk } from '../../shared/core/types.js';
import { WORKER_BATCH } from '../../shared/queue/port.js';
import { call, eventually, testStack, waitForStatus } from '../helpers/stack.js';

/**
 * Issue 11: a small backlog drained through the whole local stack against the strict rolling window
 * (Azure API Management's `rate-limit`), by two workers that share the limiter through DynamoDB. The
 * full figures (N = 200 and 600, 1 and 4 workers) are `npm run bench`'s; this keeps the behaviour in
 * `npm test`, with bounds loose enough for a busy CI machine.
 */

const R = 10;
const N = 30;

describe('issue 11: a backlog drains at the limit against the strict window', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await testStack({
      env: { CAMBIO_MAX_RPS: String(R) },
      cambio: { ratePerSecond: R, limiter: 'rolling' },
      workers: 2,
      // Batches gathered as the deployed event source mapping gathers them (the bench's setting too).
      queue: { concurrency: 1, batchingWindowMs: WORKER_BATCH.windowSeconds * 1000 },
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it(`${N} payments at R = ${R}/s: each posted once, (almost) no 429s, in close to N/R`, async () => {
    const sandbox = stack.cambio!;
    // A running service: one payment first (token, connections, compiled code), then a quiet window.
    // A busy machine may queue it (202): its outcome is waited for, not asserted from the reply.
    expect([201, 202]).toContain((await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'drain-warm', paymentType: 'CARD' })).status);
    await waitForStatus(stack, 'cambio', 'drain-warm', ['posted'], 10_000);
    await new Promise((r) => setTimeout(r, 1_100));
    const before = { rateLimited: sandbox.stats.rateLimited };
    const ids = Array.from({ length: N }, (_, i) => `drain-${i}`);
    const t0 = Date.now();
    const replies = await Promise.all(ids.map((contactId) => call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId, paymentType: 'CARD' })));
    expect(replies.map((r) => r.status).every((s) => s === 201 || s === 202)).toBe(true);

    const idealMs = (N / R) * 1000;
    await eventually(async () => ids.every((id) => (sandbox.stats.applied[id] ?? 0) > 0), idealMs * 4, 50);
    const drainMs = sandbox.stats.lastAppliedAt - t0;
    const records = await eventually(async () => {
      const got = await stack.deps.store.getMany(ids.map((id) => recordPk('cambio', 'default', id)));
      return [...got.values()].filter((r) => r.status === 'posted').length === N ? got : undefined;
    }, 10_000);
    expect(records.size).toBe(N);

    // Exactly once: every payment applied once, and nothing is left to send it again.
    expect(await stack.queue.idle(5_000)).toBe(true);
    for (const id of ids) expect(sandbox.stats.applied[id], id).toBe(1);
    // The window was never asked for more than it holds: at most one refusal in the run (a CI
    // machine can stall a send past its margin; the bench measures the share: 0.00 % on a quiet one).
    expect(sandbox.stats.maxInAnyWindow).toBeLessThanOrEqual(R);
    expect(sandbox.stats.rateLimited - before.rateLimited).toBeLessThanOrEqual(1);
    console.log(`drained ${N} in ${drainMs} ms (ideal ${idealMs}), ${sandbox.stats.rateLimited - before.rateLimited} answered 429`);
    // Close to the ideal N/R (the bench's aim is 1.05x at N = 200; a small N pays the first second whole).
    expect(drainMs).toBeLessThanOrEqual(idealMs * 1.6);
  }, 30_000);
});
