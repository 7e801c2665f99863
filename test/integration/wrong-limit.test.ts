import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordPk } from '../../shared/core/types.js';
import type { Stack } from '../../shared/local/stack.js';
import { call, eventually, testStack, waitForStatus } from '../helpers/stack.js';

/**
 * A running service (one payment first: token, connections, compiled code), a quiet window, then `n`
 * Cambio payments at once, waited for until every one is posted. The replies' statuses, and the 429s the
 * sandbox answered during the burst.
 */
async function burst(stack: Stack, prefix: string, n: number, timeoutMs: number): Promise<{ ids: string[]; statuses: number[]; limited: number }> {
  const sandbox = stack.cambio!;
  await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: `${prefix}-warm`, paymentType: 'CARD' });
  await waitForStatus(stack, 'cambio', `${prefix}-warm`, ['posted'], 10_000);
  await new Promise((r) => setTimeout(r, 1_100));
  const before = sandbox.stats.rateLimited;
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  const replies = await Promise.all(ids.map((contactId) => call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId, paymentType: 'CARD' })));
  await eventually(async () => {
    const got = await stack.deps.store.getMany(ids.map((id) => recordPk('cambio', 'default', id)));
    return [...got.values()].filter((r) => r.status === 'posted').length === ids.length || undefined;
  }, timeoutMs);
  return { ids, statuses: replies.map((r) => r.status), limited: sandbox.stats.rateLimited - before };
}

/**
 * Issue 23, a limit nobody told us: configured 25/s, Cambio really allows 10 in any rolling second. The
 * first 429 states a pause; every send whose permit was handed out before it and falls in that pause must
 * take a new one, the intake's in-process sends as much as the queue's worker's. On main the intake sent
 * on its permit regardless: after the first 429, every permit of the burst already handed out met the limit
 * as one more 429 (11 in a row in `npm run bench:limit`'s wrong scenario, 5.2 % of its calls).
 */
describe('a configured rate above the real limit', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await testStack({
      env: { CAMBIO_MAX_RPS: '25' },
      cambio: { ratePerSecond: 10, limiter: 'rolling' },
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("meets the limit once: sends already given a permit wait out the 429's pause instead of meeting it", async () => {
    const { ids, statuses, limited } = await burst(stack, 'wrong', 30, 20_000);
    expect(statuses.filter((s) => s !== 201 && s !== 202)).toEqual([]);
    expect(ids.filter((id) => stack.cambio!.stats.applied[id] !== 1)).toEqual([]);
    // The first 429 (and one more whose request was already on its way when the first came back) at most.
    expect(limited).toBeLessThanOrEqual(2);
  });
});

/**
 * The same limit met by the queue's worker in a drain: it books a batch's slots at the configured pace, seconds
 * ahead. The first 429 measures the limit (10), and the first sender to wake in its pause takes every stale
 * slot again in one write (Pacer.rebook), giving the old ones back. On main the senders whose old slots lay
 * beyond the pause then sent on them at the old pace all the same (no longer booked, so no longer "stale"):
 * 3 429s in every run, where the first alone is allowed.
 */
describe('a configured rate above the real limit, met by a drain', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await testStack({
      env: { CAMBIO_MAX_RPS: '25' },
      cambio: { ratePerSecond: 10, limiter: 'rolling' },
      // Every payment queued (no in-process send), and the worker's batches gathered for half a second.
      settings: { inlineWaitMs: -1 },
      queue: { batchingWindowMs: 500 },
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('meets the limit once: slots booked ahead at the old pace are taken again, none sent on', async () => {
    const { ids, statuses, limited } = await burst(stack, 'drain', 120, 40_000);
    expect(statuses.filter((s) => s !== 202)).toEqual([]);
    expect(ids.filter((id) => stack.cambio!.stats.applied[id] !== 1)).toEqual([]);
    expect(limited).toBeLessThanOrEqual(2);
  }, 60_000);
});
