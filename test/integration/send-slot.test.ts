import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordPk } from '../../shared/core/types.js';
import type { Stack } from '../../shared/local/stack.js';
import type { SystemModule } from '../../shared/systems/types.js';
import { call, testStack, waitForStatus } from '../helpers/stack.js';

/**
 * Issue 23: a send held up after the engine checked its slot (a busy event loop) is stopped on its socket,
 * unwritten, and the payment goes back to the queue for a new slot: posted once, the downstream asked once,
 * nothing counted against the payment or the limiter (no failure, no outage, no 429 to learn from).
 */
/** A stack whose Cambio module holds up the calls of a contactId (each by 120 ms) as often as `holdUp` says. */
function slowedStack(holdUp: Map<string, number>, pacing?: { laneMs: number }): Promise<Stack> {
  return testStack({
    env: { CAMBIO_MAX_RPS: '10' },
    cambio: { ratePerSecond: 10, limiter: 'rolling' },
    ...(pacing ? { pacing } : {}),
    modules: (built) => {
      const cambio = built.get('cambio') as SystemModule;
      return [
        {
          ...cambio,
          // Between the engine's check of its slot and the socket: the event loop busy for 120 ms, once.
          post: async (request, ctx) => {
            const contactId = String((request as { contactId?: unknown }).contactId);
            const left = holdUp.get(contactId) ?? 0;
            if (left > 0) {
              holdUp.set(contactId, left - 1);
              await new Promise((r) => setTimeout(r, 120));
            }
            return cambio.post(request, ctx);
          },
        },
      ];
    },
  });
}

describe('a send that meets its socket after its slot of the shared schedule', () => {
  let stack: Stack;
  /** Calls of a contactId still to hold up, each by 120 ms. */
  const holdUp = new Map<string, number>();

  beforeAll(async () => {
    // No intake lanes: every send goes on a slot of the shared schedule, which is never moved.
    stack = await slowedStack(holdUp, { laneMs: 0 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('is not sent late: queued for a new slot, then posted once, with no failure counted', async () => {
    const sandbox = stack.cambio!;
    holdUp.set('late-1', 1);
    const r = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'late-1', paymentType: 'CARD' });
    expect([201, 202]).toContain(r.status);
    const rec = await waitForStatus(stack, 'cambio', 'late-1', ['posted'], 10_000);
    expect(sandbox.stats.applied['late-1']).toBe(1);
    expect(sandbox.stats.noticeRequests).toBe(1);
    const events = rec.history.map((h: { event: string; detail?: string }) => `${h.event}${h.detail ? `: ${h.detail}` : ''}`);
    expect(events.some((e: string) => e.startsWith('not_sent') && /socket/.test(e))).toBe(true);
    expect((await stack.deps.store.get(recordPk('cambio', 'default', 'late-1')))?.failures).toBe(0);
    // Nothing for the limiter: no outage begun by a call that never left.
    expect(stack.deps.pacer.seen('cambio').failingSince).toBeUndefined();
  });

  it('one held up every time is stopped three times, then sent anyway (a machine that busy risks one 429, not a payment going round the queue)', async () => {
    const sandbox = stack.cambio!;
    const before = sandbox.stats.noticeRequests;
    holdUp.set('late-2', 100);
    expect([201, 202]).toContain((await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'late-2', paymentType: 'CARD' })).status);
    const rec = await waitForStatus(stack, 'cambio', 'late-2', ['posted'], 15_000);
    expect(rec.history.filter((h: { event: string }) => h.event === 'not_sent')).toHaveLength(3);
    expect(sandbox.stats.applied['late-2']).toBe(1);
    expect(sandbox.stats.noticeRequests - before).toBe(1);
  });
});

describe('a send that meets its socket after its permit of the intake lane', () => {
  let stack: Stack;
  const holdUp = new Map<string, number>();

  beforeAll(async () => {
    stack = await slowedStack(holdUp);
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('goes at once when its lane has room then (nothing booked after it crowds the window): no trip through the queue', async () => {
    const sandbox = stack.cambio!;
    const before = sandbox.stats.noticeRequests;
    holdUp.set('late-lane', 1);
    const r = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'late-lane', paymentType: 'CARD' });
    expect([201, 202]).toContain(r.status);
    const rec = await waitForStatus(stack, 'cambio', 'late-lane', ['posted'], 10_000);
    // On main it was stopped on its socket and queued (a not_sent entry, the queue's batching window after it).
    expect(rec.history.filter((h: { event: string }) => h.event === 'not_sent' || h.event === 'queued')).toEqual([]);
    expect(sandbox.stats.applied['late-lane']).toBe(1);
    expect(sandbox.stats.noticeRequests - before).toBe(1);
  });
});
